"""After a carrier hands a parcel over: what the recipient kept and paid (try-on, partial
buyout, cash on delivery), and the carrier's COD registry that settles the cash. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from temporalio import activity

from activities.common import refusals_as
from adapters.cdek import CdekClient
from contracts.carrier_payments import CodRegistry, DeliveryOutcome

CARRIER_REFUSED = "CarrierRefused"


@dataclass
class CarrierPaymentActivities:
    cdek: CdekClient

    @activity.defn
    async def delivery_outcome(self, external_id: str) -> DeliveryOutcome:
        with refusals_as(CARRIER_REFUSED):
            return await self.cdek.delivery_outcome(external_id)

    @activity.defn
    async def cod_registries(self, day: str) -> list[CodRegistry]:
        """The registries of ``day`` (YYYY-MM-DD) for reconciliation."""
        with refusals_as(CARRIER_REFUSED):
            return await self.cdek.cod_registries(date.fromisoformat(day))
