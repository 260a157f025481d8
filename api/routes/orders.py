"""Orders: place (with Idempotency-Key), read, list, cancel, change the address or the lines.

HTTP in and out only: the request's shape is checked here (pydantic), everything else is
``services.orders``; its refusals become 4xx naming the field (``api.errors``).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from pydantic import Field

from adapters.orders_repo import snapshot_to_json
from api.deps import IdempotencyDep, OrderServiceDep, ReturnServiceDep
from api.idempotency import idempotent
from api.schemas import AddressIn, CancelIn, OrderCreated, OrderIn, Page, Strict, TotalsOut
from contracts.order import Address, AddressChange, CancelRequest, Customer, Delivery, LineRequest, OrderStatus
from contracts.returns import ReturnSnapshot
from services.orders import NewOrder

router = APIRouter(prefix="/v1/orders", tags=["orders"])


@router.post("", status_code=201, response_model=OrderCreated,
             responses={409: {"description": "out of stock, or the same key is in flight"},
                        422: {"description": "invalid input; the message names the field"}})
async def place_order(
    body: OrderIn, orders: OrderServiceDep, idem: IdempotencyDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Any:
    async def place() -> tuple[int, dict[str, Any]]:
        d = body.delivery
        placement = await orders.place(NewOrder(
            channel=body.channel, customer=Customer(phone=body.customer.phone, name=body.customer.name,
                                                    email=body.customer.email),
            lines=[LineRequest(sku=line.sku, qty=line.qty) for line in body.lines],
            delivery=Delivery(method=d.method, address=Address(**d.address.model_dump()) if d.address else None,
                              store_id=d.store_id, carrier=d.carrier),
            payment_method=body.payment.method, bonus_to_spend=body.bonus_to_spend, promo_code=body.promo_code,
        ), idempotency_key)
        created = OrderCreated(
            order_id=placement.order_id, status=placement.status.value,
            totals=TotalsOut(**dataclasses.asdict(placement.totals)) if placement.totals else None,
            payment_url=placement.payment_url, links={"self": f"/v1/orders/{placement.order_id}"})
        return 201, created.model_dump(mode="json")

    return await idempotent(idem, scope="orders.create", key=idempotency_key, payload=body.model_dump(mode="json"),
                            run=place)


@router.get("/{order_id}")
async def get_order(order_id: str, orders: OrderServiceDep, returns: ReturnServiceDep) -> dict[str, Any]:
    snapshot = await orders.get(order_id)
    body = snapshot_to_json(snapshot)
    extra = returns_view(await returns.of_order(order_id))  # returns live in their own table (the order may be closed)
    body.update(extra)
    if extra["refunded"]["money"]:
        body["payment"]["refunded"] = extra["refunded"]["money"]
        body["payment"]["state"] = ("refunded" if extra["refunded"]["money"] >= snapshot.payment.captured
                                    else "partially_refunded")
    return body


def returns_view(returns: list[ReturnSnapshot]) -> dict[str, Any]:
    """What the order's view adds: its returns and what was refunded (money to the card, bonus)."""
    done = [r.refund for r in returns if r.refunded and r.refund is not None]
    return {
        "returns": [
            {"return_id": r.return_id, "status": r.status.value, "method": r.method.value,
             "location_id": r.location_id, "created_at": r.created_at.isoformat(),
             "lines": [{"pos_id": x.pos_id, "sku": x.sku, "qty": x.qty, "accepted": x.accepted,
                        "rejected": x.rejected} for x in r.lines],
             "refund": {"money": r.refund.money, "delivery": r.refund.delivery, "total": r.refund.total,
                        "bonus": r.bonus_returned} if r.refunded and r.refund else None,
             "links": {"self": f"/v1/returns/{r.return_id}"}}
            for r in returns
        ],
        "refunded": {"money": sum(r.total for r in done), "bonus": sum(r.bonus_returned for r in returns)},
    }


@router.get("", response_model=Page)
async def list_orders(
    orders: OrderServiceDep,
    status: Annotated[OrderStatus | None, Query()] = None,
    phone: Annotated[str | None, Query(pattern=r"^\+?[0-9]{10,15}$")] = None,
    store_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page:
    items, total = await orders.find(status=status, phone=phone, store_id=store_id, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


class AddressChangeIn(Strict):
    address: AddressIn
    by: str = Field(min_length=1, max_length=100, description="the operator (kept in the timeline)")


@router.post("/{order_id}/address", responses={409: {"description": "already booked with the courier, or final"}})
async def change_address(order_id: str, body: AddressChangeIn, orders: OrderServiceDep) -> dict[str, Any]:
    """An operator changes the delivery address before the parcel is booked (a validated Update)."""
    delivery = await orders.change_address(order_id, AddressChange(address=Address(**body.address.model_dump()),
                                                                   by=body.by))
    return {"order_id": order_id, "delivery": dataclasses.asdict(delivery)}


class LineEditIn(Strict):
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=0, le=99, description="the new quantity; 0 removes the line; a SKU not in the order is added")


class OrderEditIn(Strict):
    lines: list[LineEditIn] = Field(min_length=1, max_length=50)
    by: str = Field(min_length=1, max_length=100, description="the operator (kept in the timeline)")
    reason: str = Field(default="", max_length=500)


@router.post("/{order_id}/lines", responses={
    409: {"description": "assembly has started, the order is final, another edit is in progress, or out of stock"},
    422: {"description": "invalid edit; the message names the field"}})
async def edit_lines(order_id: str, body: OrderEditIn, orders: OrderServiceDep) -> dict[str, Any]:
    """An operator changes lines before assembly starts (a validated Update): quantities, removals,
    additions. The order is re-priced and re-held; an unpaid order gets a new payment link; a paid
    order made dearer gets a link for the difference (``pending_payment``) and changes once it is paid."""
    out = await orders.edit_lines(order_id, [LineRequest(sku=line.sku, qty=line.qty) for line in body.lines],
                                  by=body.by, reason=body.reason)
    return {"order_id": order_id, "edit": out.n, "changes": out.changes, "message": out.message,
            "lines": [dataclasses.asdict(line) for line in out.lines], "totals": dataclasses.asdict(out.totals),
            "payment_url": out.payment_url, "pending_payment": out.pending_payment}


@router.post("/{order_id}/cancel")
async def cancel_order(order_id: str, body: CancelIn, orders: OrderServiceDep) -> dict[str, Any]:
    status = await orders.cancel(order_id, CancelRequest(reason=body.reason, by=body.by))
    return {"order_id": order_id, "status": status.value}
