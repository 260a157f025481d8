"""Delivery rules (PostgreSQL): what each carrier charges and promises per destination region."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from adapters.delivery import DeliveryRepo
from contracts.steps import CarrierRuleRow, CarrierRulesRequest


@dataclass
class DeliveryActivities:
    repo: DeliveryRepo

    @activity.defn
    async def load_carrier_rules(self, req: CarrierRulesRequest) -> list[CarrierRuleRow]:
        """The active rules of the region (none: the default per-method price applies, no promise)."""
        return [CarrierRuleRow(carrier=r.carrier, method=r.method.value, region=r.region, price=r.price,
                               days_min=r.days_min, days_max=r.days_max, cutoff=r.cutoff.strftime("%H:%M"),
                               from_location_ids=sorted(r.from_location_ids) if r.from_location_ids else None,
                               currency=r.currency)
                for r in await self.repo.rules(req.region)]
