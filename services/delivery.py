"""Delivery options for a cart and an address: a quote (carriers, methods, prices, promised dates).

The quote sources the cart over the network's stock exactly as an order's placement would
(``domain.planning`` → ``domain.sourcing``) and applies the region's carrier rules to each shipment
(``domain.delivery``). It holds nothing and is not the order: placing the order sources it again
in its workflow, from the stock as it is then, and that plan is the one the order ships by.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.catalog import CatalogRepo
from adapters.delivery import DeliveryRepo
from adapters.ledger import Ledger
from contracts.order import Address, Delivery, DeliveryMethod, LineRequest
from domain.delivery import DeliveryOption, delivery_options
from domain.planning import destination, source_location
from domain.sourcing import SourcingLine, SourcingPlan, SourcingRequest, source
from services.errors import Conflict, Invalid


@dataclass(frozen=True)
class Quote:
    plan: SourcingPlan
    options: list[DeliveryOption]  # best first


class DeliveryService:
    def __init__(self, engine: AsyncEngine) -> None:
        self.catalog, self.ledger, self.rules = CatalogRepo(engine), Ledger(engine), DeliveryRepo(engine)

    async def quote(self, lines: list[LineRequest], address: Address, *, method: DeliveryMethod | None,
                    now: datetime, assembly_minutes: int) -> Quote:
        """Every option that serves the cart at ``address``; ``Invalid`` naming a line with an unknown
        SKU, ``Conflict`` when nothing can be shipped (out of stock, no carrier for the region or method)."""
        await self._check(lines)
        locations = await self.ledger.locations()
        skus = sorted({line.sku for line in lines})
        available = {(a.sku, a.location_id): a.available for a in await self.ledger.availability(skus)
                     if a.available > 0}
        plan = source(SourcingRequest(
            lines=[SourcingLine(pos_id=i + 1, sku=line.sku, qty=line.qty) for i, line in enumerate(lines)],
            locations=[source_location(loc) for loc in locations], available=available,
            destination=destination(Delivery(method=DeliveryMethod.courier, address=address), locations), now=now))
        if plan.unfulfilled:
            missing = ", ".join(f"{line.sku} × {line.qty}" for line in plan.unfulfilled)
            raise Conflict("out_of_stock", f"lines: not enough stock to ship: {missing}", field="lines")
        rules = await self.rules.rules(address.region)
        if not rules:
            raise Conflict("region_not_served", f"address.region: no carrier delivers to {address.region}",
                           field="address.region")
        options = [o for o in delivery_options(plan.shipments, {loc.id: loc for loc in locations}, rules,
                                               region=address.region, now=now, assembly_minutes=assembly_minutes)
                   if method is None or o.method.value == method.value]
        if not options:
            what = f"{method.value} delivery" if method else "delivery"
            raise Conflict("no_delivery_option", f"address.region: no {what} to {address.region} from where the "
                                                 "goods are", field="method" if method else "address.region")
        return Quote(plan=plan, options=options)

    async def _check(self, lines: list[LineRequest]) -> None:
        seen: dict[str, int] = {}
        for i, line in enumerate(lines):
            if line.sku in seen:
                raise Invalid("duplicate_line", f"lines[{i}].sku: {line.sku} is already in lines[{seen[line.sku]}]",
                              field=f"lines[{i}].sku")
            seen[line.sku] = i
        known = await self.catalog.skus(list(seen))
        for i, line in enumerate(lines):
            if line.sku not in known:
                raise Invalid("unknown_sku", f"lines[{i}].sku: unknown SKU {line.sku!r}", field=f"lines[{i}].sku")
