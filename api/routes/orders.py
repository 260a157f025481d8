"""Orders: place (with Idempotency-Key), read, list, cancel. Thin: validate, start/update/query."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

import structlog
from pydantic import Field
from fastapi import APIRouter, Header, Query
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from adapters.catalog import CatalogRepo
from adapters.delivery import DeliveryRepo
from adapters.ledger import Ledger
from adapters.orders_repo import phone_hash, snapshot_to_json
from adapters.returns_repo import ReturnsRepo
from api.deps import CatalogDep, IdempotencyDep, LedgerDep, OrdersDep, SettingsDep, TemporalDep
from api.errors import ApiError, update_refused
from api.idempotency import idempotent
from api.routes.delivery import priced_delivery
from api.schemas import AddressIn, CancelIn, Strict, LineIn, OrderCreated, OrderIn, Page, TotalsOut
from models.order import (
    Address,
    AddressChange,
    CancelRequest,
    CatalogLine,
    Customer,
    Delivery,
    DeliveryMethod,
    OrderInput,
    OrderStatus,
    Placement,
    order_workflow_id,
)
from models.edits import EditOutcome, LineEdit, OrderEdit
from models.steps import ErrorType
from models.stock import LocationInfo
from settings import Settings
from workflows import search
from workflows.human import INVALID_DECISION
from workflows.order import OrderWorkflow

router = APIRouter(prefix="/v1/orders", tags=["orders"])
log = structlog.get_logger("api.orders")

IDEMPOTENCY_NS = uuid.UUID("6f1c3a52-8a1e-4c39-9a51-0e0c2b7d4f10")


def new_order_id(idempotency_key: str | None) -> str:
    """12 hex digits; derived from the Idempotency-Key when there is one, so two concurrent
    requests with one key collide on the workflow id as well as on the key row."""
    raw = uuid.uuid5(IDEMPOTENCY_NS, idempotency_key) if idempotency_key else uuid.uuid4()
    return raw.hex[:12].upper()


@router.post("", status_code=201, response_model=OrderCreated,
             responses={409: {"description": "out of stock, or the same key is in flight"},
                        422: {"description": "invalid input; the message names the field"}})
async def place_order(
    body: OrderIn, temporal: TemporalDep, catalog: CatalogDep, ledger: LedgerDep, idem: IdempotencyDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Any:
    return await idempotent(idem, scope="orders.create", key=idempotency_key, payload=body.model_dump(mode="json"),
                            run=lambda: _place(body, temporal, catalog, ledger, settings, idempotency_key))


async def _place(body: OrderIn, temporal: Any, catalog: CatalogRepo, ledger: Ledger, settings: Settings,
                 idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
    lines = await catalog_lines(body.lines, catalog)
    await _check_pickup_store(body, ledger)
    order_id = new_order_id(idempotency_key)
    placed_at = datetime.now(timezone.utc)
    delivery = await priced_delivery(  # the chosen option's price and promise, from the carrier rules
        Delivery(method=body.delivery.method,
                 address=Address(**body.delivery.address.model_dump()) if body.delivery.address else None,
                 store_id=body.delivery.store_id, carrier=body.delivery.carrier),
        [(l.pos_id, l.sku, l.qty) for l in lines], ledger=ledger, repo=DeliveryRepo(ledger.engine), now=placed_at,
        assembly_minutes=settings.assembly_sla_ship_minutes)
    inp = OrderInput(
        order_id=order_id, channel=body.channel,
        customer=Customer(phone=_normal_phone(body.customer.phone), name=body.customer.name, email=body.customer.email),
        lines=lines,
        delivery=delivery,
        payment_method=body.payment.method, bonus_to_spend=body.bonus_to_spend, promo_code=body.promo_code,
        currency=settings.currency,
        placed_at=placed_at,
        payment_window_minutes=settings.payment_window_minutes, payment_poll_minutes=settings.payment_poll_minutes,
        post_poll_minutes=settings.post_poll_minutes or 240,
        assembly_sla_minutes=(settings.assembly_sla_pickup_minutes if body.delivery.method == DeliveryMethod.pickup
                              else settings.assembly_sla_ship_minutes),
        return_window_days=settings.return_window_days,
    )
    wf_id = order_workflow_id(order_id)
    attrs = search.initial(order_id, phone_hash(inp.customer.phone, settings.support_phone_salt), inp.channel.value,
                           store_id=inp.delivery.store_id)
    try:
        try:
            handle = await temporal.start_workflow(OrderWorkflow.run, inp, id=wf_id, task_queue=settings.task_queue,
                                                   id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                                                   search_attributes=attrs)
        except RPCError as err:  # the namespace lacks them: sell anyway, without UI search (`orkestr search-attributes`)
            if err.status != RPCStatusCode.INVALID_ARGUMENT or "search attribute" not in err.message.lower():
                raise
            log.error("search_attributes.missing", error=err.message, fix="orkestr search-attributes")
            handle = await temporal.start_workflow(OrderWorkflow.run, inp, id=wf_id, task_queue=settings.task_queue,
                                                   id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:
        handle = temporal.get_workflow_handle(wf_id)  # the same key raced us: answer with that order
    except RPCError as err:
        raise ApiError(503, "temporal_unavailable", f"cannot start the order now: {err.message}") from err
    placement: Placement = await handle.execute_update(OrderWorkflow.placement)
    return _placement_response(placement)


def _placement_response(p: Placement) -> tuple[int, dict[str, Any]]:
    if p.status == OrderStatus.rejected:
        if p.error_code == ErrorType.OUT_OF_STOCK:
            raise ApiError(409, "out_of_stock", f"lines: {p.error_message}", field="lines", order_id=p.order_id)
        raise ApiError(422, (p.error_code or "refused").lower(), p.error_message or "the order was refused",
                       order_id=p.order_id)
    body = OrderCreated(
        order_id=p.order_id, status=p.status.value,
        totals=TotalsOut(**dataclasses.asdict(p.totals)) if p.totals else None,
        payment_url=p.payment_url, links={"self": f"/v1/orders/{p.order_id}"},
    )
    return 201, body.model_dump(mode="json")


async def catalog_lines(lines: list[LineIn], catalog: CatalogRepo) -> list[CatalogLine]:
    """The requested lines priced from the catalog; 422 naming the line when a SKU is unknown or unsold."""
    seen: dict[str, int] = {}
    for i, line in enumerate(lines):
        if line.sku in seen:
            raise ApiError(422, "duplicate_line", f"lines[{i}].sku: {line.sku} is already in lines[{seen[line.sku]}]; "
                                                  "send one line with the total quantity", field=f"lines[{i}].sku")
        seen[line.sku] = i
    known = await catalog.skus([l.sku for l in lines])
    out = []
    for i, line in enumerate(lines):
        info = known.get(line.sku)
        if info is None:
            raise ApiError(422, "unknown_sku", f"lines[{i}].sku: unknown SKU {line.sku!r}", field=f"lines[{i}].sku")
        if info.price <= 0:
            raise ApiError(422, "not_for_sale", f"lines[{i}].sku: {line.sku} has no price and is not for sale",
                           field=f"lines[{i}].sku")
        out.append(CatalogLine(pos_id=i + 1, sku=line.sku, name=info.name, qty=line.qty, unit_price=info.price))
    return out


async def _check_pickup_store(body: OrderIn, ledger: Ledger) -> None:
    if body.delivery.method != DeliveryMethod.pickup:
        return
    await pickup_store(ledger, body.delivery.store_id or "", field="delivery.store_id")


async def pickup_store(ledger: Ledger, store_id: str, *, field: str) -> LocationInfo:
    """The store a customer collects from; 422 naming ``field`` if unknown or not handing out orders."""
    store = next((l for l in await ledger.locations() if l.id == store_id), None)
    if store is None:
        raise ApiError(422, "unknown_store", f"{field}: unknown store {store_id!r}", field=field)
    if not store.pickup:
        raise ApiError(422, "no_pickup", f"{field}: store {store.id} does not hand out orders", field=field)
    return store


def _normal_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return f"+{digits}"


@router.get("/{order_id}")
async def get_order(order_id: str, orders: OrdersDep, temporal: TemporalDep) -> dict[str, Any]:
    snapshot = await orders.get(order_id)
    if snapshot is None:
        raise ApiError(404, "not_found", f"order_id: no order {order_id}", field="order_id")
    from api.routes.returns import order_returns  # returns live in their own table (the order may be closed)

    body = snapshot_to_json(snapshot)
    extra = await order_returns(ReturnsRepo(orders.engine), order_id)
    body.update(extra)
    if extra["refunded"]["money"]:
        body["payment"]["refunded"] = extra["refunded"]["money"]
        body["payment"]["state"] = ("refunded" if extra["refunded"]["money"] >= snapshot.payment.captured
                                    else "partially_refunded")
    return body


@router.get("", response_model=Page)
async def list_orders(
    orders: OrdersDep,
    status: Annotated[OrderStatus | None, Query()] = None,
    phone: Annotated[str | None, Query(pattern=r"^\+?[0-9]{10,15}$")] = None,
    store_id: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page:
    items, total = await orders.list(status=status.value if status else None, phone=phone, store_id=store_id,
                                     limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)


async def _order_update(temporal: Any, order_id: str, update: Any, arg: Any, refused: str) -> Any:
    """Execute an Update on the running order: 409 ``refused`` when its validator says no, 404 when no order runs."""
    handle = temporal.get_workflow_handle(order_workflow_id(order_id))
    try:
        return await handle.execute_update(update, arg)
    except WorkflowUpdateFailedError as err:
        raise update_refused(err, refused, order_id=order_id) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, "not_found", f"order_id: no running order {order_id}", field="order_id") from err
        raise


class AddressChangeIn(Strict):
    address: AddressIn
    by: str = Field(min_length=1, max_length=100, description="the operator (kept in the timeline)")


@router.post("/{order_id}/address", responses={409: {"description": "already booked with the courier, or final"}})
async def change_address(order_id: str, body: AddressChangeIn, temporal: TemporalDep) -> dict[str, Any]:
    """An operator changes the delivery address before the parcel is booked (a validated Update)."""
    change = AddressChange(address=Address(**body.address.model_dump()), by=body.by)
    delivery = await _order_update(temporal, order_id, OrderWorkflow.change_address, change, "cannot_change_address")
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
async def edit_lines(order_id: str, body: OrderEditIn, temporal: TemporalDep, catalog: CatalogDep) -> dict[str, Any]:
    """An operator changes lines before assembly starts (a validated Update): quantities, removals,
    additions. The order is re-priced and re-held; an unpaid order gets a new payment link; a paid
    order made dearer gets a link for the difference (``pending_payment``) and changes once it is paid."""
    known = await catalog.skus([l.sku for l in body.lines])
    edit = OrderEdit(by=body.by, reason=body.reason, lines=[
        LineEdit(sku=l.sku, qty=l.qty, name=known[l.sku].name if l.sku in known else None,
                 unit_price=known[l.sku].price if l.sku in known else None) for l in body.lines])
    handle = temporal.get_workflow_handle(order_workflow_id(order_id))
    try:
        out: EditOutcome = await handle.execute_update(OrderWorkflow.edit_lines, edit)
    except WorkflowUpdateFailedError as err:
        raise _edit_refused(err, order_id) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, "not_found", f"order_id: no running order {order_id}", field="order_id") from err
        raise
    log.info("order.edited", order_id=order_id, edit=out.n, by=body.by, total=out.totals.total)
    return {"order_id": order_id, "edit": out.n, "changes": out.changes, "message": out.message,
            "lines": [dataclasses.asdict(l) for l in out.lines], "totals": dataclasses.asdict(out.totals),
            "payment_url": out.payment_url, "pending_payment": out.pending_payment}


def _edit_refused(err: WorkflowUpdateFailedError, order_id: str) -> ApiError:
    """Invalid input → 422 naming the field; stock → 409 ``out_of_stock``; the order's state → 409."""
    cause = err.cause
    if not isinstance(cause, ApplicationError):
        return update_refused(err, "cannot_edit", order_id=order_id)
    field = str(cause.details[0]) if cause.details else None
    if cause.type == INVALID_DECISION:
        return ApiError(422, "invalid_edit", cause.message, field=field, order_id=order_id)
    code = "out_of_stock" if cause.type == ErrorType.OUT_OF_STOCK else "cannot_edit"
    return ApiError(409, code, cause.message, field=field, order_id=order_id)


@router.post("/{order_id}/cancel")
async def cancel_order(order_id: str, body: CancelIn, temporal: TemporalDep) -> dict[str, Any]:
    status = await _order_update(temporal, order_id, OrderWorkflow.cancel,
                                 CancelRequest(reason=body.reason, by=body.by), "cannot_cancel")
    return {"order_id": order_id, "status": OrderStatus(status).value}
