"""Orders: place one, read it, change it (cancel, address, lines).

Placement is one round trip to Temporal (update-with-start): the order workflow starts (or, for a
retried request, the running one is found by its id) and answers its ``placement`` update with
the totals and the payment link, or why it refused. The workflow sources, prices and holds the
order; this service only checks what the catalog and the stores say about the request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from adapters.catalog import CatalogRepo
from adapters.ledger import Ledger
from adapters.orders_repo import OrdersRepo, phone_hash
from contracts.edits import EditOutcome, LineEdit, OrderEdit
from contracts.order import (
    AddressChange,
    CancelRequest,
    CatalogLine,
    Channel,
    Customer,
    Delivery,
    DeliveryMethod,
    LineRequest,
    OrderInput,
    OrderSnapshot,
    OrderStatus,
    PaymentMethod,
    Placement,
    order_workflow_id,
)
from contracts.steps import ErrorType
from contracts.stock import LocationInfo
from services.errors import Conflict, Invalid, NotFound, Unavailable
from services.temporal import refusal, run_update
from settings import Settings
from workflows import search
from workflows.order import OrderWorkflow

log = structlog.get_logger("services.orders")

IDEMPOTENCY_NS = uuid.UUID("6f1c3a52-8a1e-4c39-9a51-0e0c2b7d4f10")


def new_order_id(idempotency_key: str | None) -> str:
    """12 hex digits; derived from the Idempotency-Key when there is one, so two concurrent
    requests with one key collide on the workflow id as well as on the key row."""
    raw = uuid.uuid5(IDEMPOTENCY_NS, idempotency_key) if idempotency_key else uuid.uuid4()
    return raw.hex[:12].upper()


def normal_phone(phone: str) -> str:
    return "+" + "".join(ch for ch in phone if ch.isdigit())


@dataclass(frozen=True)
class NewOrder:
    """What a storefront asks for (shape already validated by the caller)."""

    channel: Channel
    customer: Customer
    lines: list[LineRequest]
    delivery: Delivery  # method, address or store, the carrier chosen (if any)
    payment_method: PaymentMethod = PaymentMethod.card
    bonus_to_spend: int = 0
    promo_code: str | None = None


class OrderService:
    def __init__(self, temporal: Client, engine: AsyncEngine, settings: Settings) -> None:
        self.temporal, self.settings = temporal, settings
        self.catalog, self.ledger = CatalogRepo(engine), Ledger(engine)
        self.orders = OrdersRepo(engine, settings.support_phone_salt)

    # ------------------------------------------------------------------ placing
    async def place(self, order: NewOrder, idempotency_key: str | None) -> Placement:
        """Start the order and return its placement answer. ``Invalid`` names the request field
        (unknown SKU, store, a delivery no carrier offers); ``Conflict`` when out of stock."""
        s = self.settings
        lines = await self.catalog_lines(order.lines)
        if order.delivery.method == DeliveryMethod.pickup:
            await self.pickup_store(order.delivery.store_id or "", field="delivery.store_id")
        order_id = new_order_id(idempotency_key)
        customer = Customer(phone=normal_phone(order.customer.phone), name=order.customer.name,
                            email=order.customer.email)
        inp = OrderInput(
            order_id=order_id, channel=order.channel, customer=customer, lines=lines, delivery=order.delivery,
            payment_method=order.payment_method, bonus_to_spend=order.bonus_to_spend, promo_code=order.promo_code,
            currency=s.currency, placed_at=datetime.now(timezone.utc),
            payment_window_minutes=s.payment_window_minutes, payment_poll_minutes=s.payment_poll_minutes,
            post_poll_minutes=s.post_poll_minutes or 240,
            assembly_sla_minutes=(s.assembly_sla_pickup_minutes if order.delivery.method == DeliveryMethod.pickup
                                  else s.assembly_sla_ship_minutes),
            return_window_days=s.return_window_days)
        attrs = search.initial(order_id, phone_hash(customer.phone, s.support_phone_salt), order.channel.value,
                               store_id=order.delivery.store_id)
        try:
            placement = await self._start(inp, attrs)
        except RPCError as err:  # the namespace lacks them: sell anyway, without UI search (`orkestr search-attributes`)
            if err.status != RPCStatusCode.INVALID_ARGUMENT or "search attribute" not in err.message.lower():
                raise Unavailable("temporal_unavailable", f"cannot start the order now: {err.message}") from err
            log.error("search_attributes.missing", error=err.message, fix="orkestr search-attributes")
            try:
                placement = await self._start(inp, None)
            except RPCError as again:
                raise Unavailable("temporal_unavailable", f"cannot start the order now: {again.message}") from again
        if placement.status == OrderStatus.rejected:
            if placement.error_code == ErrorType.OUT_OF_STOCK:
                raise Conflict("out_of_stock", f"lines: {placement.error_message}", field="lines",
                               order_id=placement.order_id)
            raise Invalid((placement.error_code or "refused").lower(), placement.error_message or "the order was refused",
                          field=placement.error_field, order_id=placement.order_id)
        return placement

    async def _start(self, inp: OrderInput, attrs: TypedSearchAttributes | None) -> Placement:
        """Update-with-start: a retried request finds the order its first attempt started."""
        start = WithStartWorkflowOperation(
            OrderWorkflow.run, inp, id=order_workflow_id(inp.order_id), task_queue=self.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, search_attributes=attrs)
        try:
            return await self.temporal.execute_update_with_start_workflow(OrderWorkflow.placement,
                                                                          start_workflow_operation=start)
        except WorkflowUpdateFailedError as err:
            raise refusal(err, "refused") from err

    async def catalog_lines(self, lines: list[LineRequest]) -> list[CatalogLine]:
        """The requested lines priced from the catalog; ``Invalid`` naming the line when a SKU is
        unknown, unsold or named twice."""
        seen: dict[str, int] = {}
        for i, line in enumerate(lines):
            if line.sku in seen:
                raise Invalid("duplicate_line", f"lines[{i}].sku: {line.sku} is already in lines[{seen[line.sku]}]; "
                                                "send one line with the total quantity", field=f"lines[{i}].sku")
            seen[line.sku] = i
        known = await self.catalog.skus([line.sku for line in lines])
        out = []
        for i, line in enumerate(lines):
            info = known.get(line.sku)
            if info is None:
                raise Invalid("unknown_sku", f"lines[{i}].sku: unknown SKU {line.sku!r}", field=f"lines[{i}].sku")
            if info.price <= 0:
                raise Invalid("not_for_sale", f"lines[{i}].sku: {line.sku} has no price and is not for sale",
                              field=f"lines[{i}].sku")
            out.append(CatalogLine(pos_id=i + 1, sku=line.sku, name=info.name, qty=line.qty, unit_price=info.price))
        return out

    async def pickup_store(self, store_id: str, *, field: str) -> LocationInfo:
        """The store a customer collects from; ``Invalid`` naming ``field`` if unknown or not handing out."""
        store = next((loc for loc in await self.ledger.locations() if loc.id == store_id), None)
        if store is None:
            raise Invalid("unknown_store", f"{field}: unknown store {store_id!r}", field=field)
        if not store.pickup:
            raise Invalid("no_pickup", f"{field}: store {store.id} does not hand out orders", field=field)
        return store

    # ------------------------------------------------------------------ reading
    async def get(self, order_id: str) -> OrderSnapshot:
        snapshot = await self.orders.get(order_id)
        if snapshot is None:
            raise NotFound("not_found", f"order_id: no order {order_id}", field="order_id")
        return snapshot

    async def find(self, *, status: OrderStatus | None, phone: str | None, store_id: str | None, limit: int,
                   offset: int) -> tuple[list[dict[str, Any]], int]:
        return await self.orders.list(status=status.value if status else None, phone=phone, store_id=store_id,
                                      limit=limit, offset=offset)

    # ------------------------------------------------------------------ changing
    def _missing(self, order_id: str) -> NotFound:
        return NotFound("not_found", f"order_id: no running order {order_id}", field="order_id")

    async def cancel(self, order_id: str, req: CancelRequest) -> OrderStatus:
        handle = self.temporal.get_workflow_handle_for(OrderWorkflow.run, order_workflow_id(order_id))
        status = await run_update(handle.execute_update(OrderWorkflow.cancel, req), refused="cannot_cancel",
                                  missing=self._missing(order_id), order_id=order_id)
        return OrderStatus(status)

    async def change_address(self, order_id: str, change: AddressChange) -> Delivery:
        handle = self.temporal.get_workflow_handle_for(OrderWorkflow.run, order_workflow_id(order_id))
        return await run_update(handle.execute_update(OrderWorkflow.change_address, change),
                                refused="cannot_change_address", missing=self._missing(order_id), order_id=order_id)

    async def edit_lines(self, order_id: str, lines: list[LineRequest], *, by: str, reason: str) -> EditOutcome:
        """An operator's edit: quantities, removals, additions (the catalog names and prices new SKUs).
        ``Invalid`` names the field; ``Conflict`` (``out_of_stock`` / ``cannot_edit``) when the order cannot take it."""
        known = await self.catalog.skus([line.sku for line in lines])
        edit = OrderEdit(by=by, reason=reason, lines=[
            LineEdit(sku=line.sku, qty=line.qty, name=known[line.sku].name if line.sku in known else None,
                     unit_price=known[line.sku].price if line.sku in known else None) for line in lines])
        handle = self.temporal.get_workflow_handle_for(OrderWorkflow.run, order_workflow_id(order_id))
        try:
            out = await handle.execute_update(OrderWorkflow.edit_lines, edit)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == ErrorType.OUT_OF_STOCK:
                field = str(cause.details[0]) if cause.details else None
                raise Conflict("out_of_stock", cause.message, field=field, order_id=order_id) from err
            code = "invalid_edit" if isinstance(cause, ApplicationError) and cause.type == "InvalidDecision" \
                else "cannot_edit"
            raise refusal(err, code, order_id=order_id) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise self._missing(order_id) from err
            raise
        log.info("order.edited", order_id=order_id, edit=out.n, by=by, total=out.totals.total)
        return out
