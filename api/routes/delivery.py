"""Delivery options for a cart and an address: carrier, method, price and promised dates.

``POST /v1/delivery-options`` is a quote (``services.delivery``): the cart sourced over the
network's stock as an order's placement would, the region's carrier rules applied to each shipment.
Placing the order prices the chosen option again in its workflow, from the plan that holds the stock.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter
from pydantic import Field, field_validator

from api.deps import DeliveryServiceDep, SettingsDep
from api.schemas import AddressIn, LineIn, Strict
from contracts.order import Address, DeliveryMethod, LineRequest
from domain.delivery import DeliveryOption

router = APIRouter(prefix="/v1", tags=["delivery"])


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


def option_json(o: DeliveryOption) -> dict[str, Any]:
    return {
        "option_id": o.option_id, "carrier": o.carrier, "method": o.method.value, "price": o.price,
        "currency": o.currency, "date_from": o.date_from.isoformat(), "date_to": o.date_to.isoformat(),
        "shipments": [{"location_id": s.location_id, "ready_at": s.ready_at.isoformat(),
                       "cutoff": s.cutoff.strftime("%H:%M"), "date_from": s.date_from.isoformat(),
                       "date_to": s.date_to.isoformat()} for s in o.shipments],
    }


@router.post("/delivery-options",
             responses={409: {"description": "nothing can be shipped: out of stock, or no carrier serves the region"},
                        422: {"description": "invalid input; the message names the field"}})
async def post_delivery_options(body: DeliveryOptionsIn, delivery: DeliveryServiceDep,
                                settings: SettingsDep) -> dict[str, Any]:
    now = body.at or datetime.now(timezone.utc)
    address = Address(**body.address.model_dump())
    q = await delivery.quote([LineRequest(sku=line.sku, qty=line.qty) for line in body.lines], address,
                             method=body.method, now=now, assembly_minutes=settings.assembly_sla_ship_minutes)
    return {
        "quoted_at": now.isoformat(),
        "region": address.region,
        "options": [option_json(o) for o in q.options],
        "shipments": [{"location_id": s.location_id, "reason": s.reason,
                       "lines": [{"sku": line.sku, "qty": line.qty} for line in s.lines]} for s in q.plan.shipments],
    }
