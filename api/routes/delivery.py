"""Delivery options for a cart and an address: carrier, method, price and promised dates.

``POST /v1/delivery-options`` sources the cart over the network's stock exactly as the order
workflow would (``domain.sourcing`` via ``domain.planning``), then applies the per-region
carrier rules (table ``carrier_rule``) to each shipment (``domain.delivery``). Placement uses the
same computation (``quote_cart``) to price the chosen option and store its promise on the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field, field_validator

from adapters.catalog import CatalogRepo
from adapters.delivery import DeliveryRepo
from adapters.ledger import Ledger
from api.deps import CatalogDep, LedgerDep, SettingsDep
from api.errors import ApiError
from api.schemas import AddressIn, LineIn, Strict
from domain.delivery import DeliveryOption, delivery_options
from contracts.order import Address, Delivery, DeliveryMethod
from domain.planning import destination, source_location
from domain.sourcing import SourcingLine, SourcingPlan, SourcingRequest, source
from contracts.stock import LocationInfo

router = APIRouter(prefix="/v1", tags=["delivery"])

SHIPPED = (DeliveryMethod.courier, DeliveryMethod.pickup_point, DeliveryMethod.post)


def _delivery_repo(request: Request) -> DeliveryRepo:
    return DeliveryRepo(request.app.state.engine)


DeliveryRepoDep = Annotated[DeliveryRepo, Depends(_delivery_repo)]


class DeliveryOptionsIn(Strict):
    lines: list[LineIn] = Field(min_length=1, max_length=50)
    address: AddressIn
    method: DeliveryMethod | None = Field(default=None, description="only this method: courier | pickup_point | post")
    at: datetime | None = Field(default=None, description="quote as of this moment (ISO 8601 with offset); "
                                                          "default now — for previews and support")

    @field_validator("method")
    @classmethod
    def _shipped(cls, v: DeliveryMethod | None) -> DeliveryMethod | None:
        if v == DeliveryMethod.pickup:
            raise ValueError("pickup in a store has no carrier: ask for courier, pickup_point or post")
        return v

    @field_validator("at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.utcoffset() is None:
            raise ValueError("give a time zone offset, e.g. 2026-11-23T10:00:00+03:00")
        return v


@dataclass(frozen=True)
class CartQuote:
    plan: SourcingPlan
    options: list[DeliveryOption]
    region_served: bool  # some active rule delivers to the region


async def quote_cart(lines: list[tuple[int, str, int]], address: Address, *, ledger: Ledger, repo: DeliveryRepo,
                     now: datetime, assembly_minutes: int) -> CartQuote:
    """Source ``(pos_id, sku, qty)`` lines for ``address`` and price every option that serves it."""
    skus = sorted({sku for _, sku, _ in lines})
    locations: list[LocationInfo] = await ledger.locations()
    available = {(a.sku, a.location_id): a.available for a in await ledger.availability(skus) if a.available > 0}
    plan = source(SourcingRequest(
        lines=[SourcingLine(pos_id=p, sku=s, qty=q) for p, s, q in lines],
        locations=[source_location(l) for l in locations],
        available=available,
        destination=destination(Delivery(method=DeliveryMethod.courier, address=address), locations),
        now=now,
    ))
    rules = await repo.rules(address.region)
    if plan.unfulfilled or not rules:
        return CartQuote(plan=plan, options=[], region_served=bool(rules))
    options = delivery_options(plan.shipments, {l.id: l for l in locations}, rules, region=address.region,
                               now=now, assembly_minutes=assembly_minutes)
    return CartQuote(plan=plan, options=options, region_served=True)


def option_json(o: DeliveryOption) -> dict[str, Any]:
    return {
        "option_id": o.option_id, "carrier": o.carrier, "method": o.method.value, "price": o.price,
        "currency": o.currency, "date_from": o.date_from.isoformat(), "date_to": o.date_to.isoformat(),
        "shipments": [{"location_id": s.location_id, "ready_at": s.ready_at.isoformat(),
                       "cutoff": s.cutoff.strftime("%H:%M"), "date_from": s.date_from.isoformat(),
                       "date_to": s.date_to.isoformat()} for s in o.shipments],
    }


async def _check_lines(lines: list[LineIn], catalog: CatalogRepo) -> None:
    seen: dict[str, int] = {}
    for i, line in enumerate(lines):
        if line.sku in seen:
            raise ApiError(422, "duplicate_line", f"lines[{i}].sku: {line.sku} is already in lines[{seen[line.sku]}]",
                           field=f"lines[{i}].sku")
        seen[line.sku] = i
    known = await catalog.skus(list(seen))
    for i, line in enumerate(lines):
        if line.sku not in known:
            raise ApiError(422, "unknown_sku", f"lines[{i}].sku: unknown SKU {line.sku!r}", field=f"lines[{i}].sku")


@router.post("/delivery-options",
             responses={409: {"description": "nothing can be shipped: out of stock, or no carrier serves the region"},
                        422: {"description": "invalid input; the message names the field"}})
async def post_delivery_options(body: DeliveryOptionsIn, catalog: CatalogDep, ledger: LedgerDep,
                                repo: DeliveryRepoDep, settings: SettingsDep) -> dict[str, Any]:
    await _check_lines(body.lines, catalog)
    now = body.at or datetime.now(timezone.utc)
    address = Address(**body.address.model_dump())
    q = await quote_cart([(i + 1, l.sku, l.qty) for i, l in enumerate(body.lines)], address, ledger=ledger,
                         repo=repo, now=now, assembly_minutes=settings.assembly_sla_ship_minutes)
    if q.plan.unfulfilled:
        missing = ", ".join(f"{l.sku} × {l.qty}" for l in q.plan.unfulfilled)
        raise ApiError(409, "out_of_stock", f"lines: not enough stock to ship: {missing}", field="lines")
    if not q.region_served:
        raise ApiError(409, "region_not_served", f"address.region: no carrier delivers to {address.region}",
                       field="address.region")
    options = [o for o in q.options if body.method is None or o.method.value == body.method.value]
    if not options:
        what = f"{body.method.value} delivery" if body.method else "delivery"
        raise ApiError(409, "no_delivery_option", f"address.region: no {what} to {address.region} from where the "
                                                  "goods are", field="method" if body.method else "address.region")
    return {
        "quoted_at": now.isoformat(),
        "region": address.region,
        "options": [option_json(o) for o in options],
        "shipments": [{"location_id": s.location_id, "reason": s.reason,
                       "lines": [{"sku": l.sku, "qty": l.qty} for l in s.lines]} for s in q.plan.shipments],
    }


async def priced_delivery(delivery: Delivery, lines: list[tuple[int, str, int]], *, ledger: Ledger,
                          repo: DeliveryRepo, now: datetime, assembly_minutes: int) -> Delivery:
    """The order's delivery with the chosen option's price and promise, when rules serve the region.

    Unchanged for pickup in a store, for a region without rules (the default price applies) and
    when the cart cannot be sourced now (the workflow refuses it with a clear answer). A method or
    carrier that no rule offers for this cart is a 422 naming ``delivery.method`` / ``delivery.carrier``.
    """
    if delivery.method not in SHIPPED or delivery.address is None:
        return delivery
    q = await quote_cart(lines, delivery.address, ledger=ledger, repo=repo, now=now, assembly_minutes=assembly_minutes)
    if q.plan.unfulfilled or not q.region_served:
        return delivery
    same_method = [o for o in q.options if o.method.value == delivery.method.value]
    if not same_method:
        offered = ", ".join(sorted({o.method.value for o in q.options})) or "nothing"
        raise ApiError(422, "method_not_offered", f"delivery.method: no {delivery.method.value} delivery to "
                       f"{delivery.address.region} for this cart; offered: {offered}", field="delivery.method")
    chosen = [o for o in same_method if delivery.carrier is None or o.carrier == delivery.carrier]
    if not chosen:
        raise ApiError(422, "carrier_not_offered", f"delivery.carrier: {delivery.carrier} does not offer "
                       f"{delivery.method.value} delivery to {delivery.address.region}; offered: "
                       f"{', '.join(sorted({o.carrier for o in same_method}))}", field="delivery.carrier")
    best = chosen[0]  # options come best first
    return Delivery(method=delivery.method, address=delivery.address, store_id=delivery.store_id,
                    carrier=best.carrier, price=best.price, promised_from=best.date_from.isoformat(),
                    promised_to=best.date_to.isoformat())
