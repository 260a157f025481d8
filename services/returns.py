"""Returns: open one for an order, read it, retry its parked refund, and what the order's view adds.

A return is opened with one update-with-start: ``ReturnWorkflow`` starts (a retried request finds the
one its first attempt started, by the id the Idempotency-Key derives) and its first step claims the
units under the order's lock and answers the ``registration`` update. A return is therefore never
saved without its workflow, and nothing needs repairing after a request that died half-way.

This service reads the order first to answer what it can at once (an unknown line, not delivered, a
store that is not one, an address to send a courier to); the workflow checks the units again under
the lock, so two concurrent returns never both take the last unit (the loser gets ``too_many_units``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from adapters.catalog import CatalogRepo
from adapters.ledger import Ledger
from adapters.orders_repo import OrdersRepo
from adapters.returns_repo import ReturnsRepo
from contracts.order import Address, DeliveryMethod
from contracts.recovery import RetryRequest
from contracts.returns import (
    ExchangeRequest,
    ReturnInput,
    ReturnLineRequest,
    ReturnMethod,
    ReturnSnapshot,
    return_workflow_id,
)
from contracts.stock import LocationInfo
from domain.returns import ReturnRefused, check_request
from services.errors import Conflict, Invalid, NotFound, ServiceError, Unavailable
from services.temporal import run_update
from settings import Settings
from workflows.returns import ReturnWorkflow

log = structlog.get_logger("services.returns")

RETURN_NS = uuid.UUID("0b7e52b4-7d0c-4c1e-9a3f-52a1d3c6e9a1")


def new_return_id(order_id: str, idempotency_key: str | None) -> str:
    raw = uuid.uuid5(RETURN_NS, f"{order_id}:{idempotency_key}") if idempotency_key else uuid.uuid4()
    return "R" + raw.hex[:11].upper()


@dataclass(frozen=True)
class NewReturn:
    """What a customer (or a store, or support) asks to return."""

    lines: list[ReturnLineRequest]
    method: ReturnMethod
    store_id: str | None = None  # in_store: any store of the chain
    address: Address | None = None  # courier_pickup / post: where from (default: the order's address)
    exchange_pos_id: int | None = None  # swap this returned line …
    exchange_sku: str | None = None  # … for this SKU


def _refused(err: ReturnRefused, order_id: str) -> ServiceError:
    kind = Invalid if err.status == 422 else NotFound if err.status == 404 else Conflict
    return kind(err.code, err.message, field=err.field, order_id=order_id)


class ReturnService:
    def __init__(self, temporal: Client, engine: AsyncEngine, settings: Settings) -> None:
        self.temporal, self.settings = temporal, settings
        self.repo, self.catalog, self.ledger = ReturnsRepo(engine), CatalogRepo(engine), Ledger(engine)
        self.orders = OrdersRepo(engine, settings.support_phone_salt)

    async def create(self, order_id: str, request: NewReturn, idempotency_key: str | None) -> ReturnSnapshot:
        """Open the return and answer with it as registered. ``NotFound`` (no order), ``Invalid``
        (a field the request got wrong) or ``Conflict`` (not delivered, window closed, too many units)."""
        inp = await self._input(order_id, request, new_return_id(order_id, idempotency_key))
        start = WithStartWorkflowOperation(
            ReturnWorkflow.run, inp, id=return_workflow_id(inp.return_id), task_queue=self.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        try:
            snap = await self.temporal.execute_update_with_start_workflow(ReturnWorkflow.registration,
                                                                          start_workflow_operation=start)
        except WorkflowUpdateFailedError as err:
            raise self._registration_refused(err, order_id) from err
        except WorkflowAlreadyStartedError as err:  # it ran and ended: the same request long ago
            known = await self.repo.get(inp.return_id)
            if known is None:
                raise Conflict("return_closed", f"return {inp.return_id} was refused earlier", order_id=order_id) \
                    from err
            snap = known
        except RPCError as err:
            raise Unavailable("temporal_unavailable", f"cannot start the return now: {err.message}") from err
        log.info("return.registered", return_id=inp.return_id, order_id=order_id, method=request.method.value)
        return snap

    def _registration_refused(self, err: WorkflowUpdateFailedError, order_id: str) -> ServiceError:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "ReturnRefused" and len(cause.details) == 3:
            status, code, field = cause.details
            return _refused(ReturnRefused(int(status), str(code), str(field), cause.message.split(": ", 1)[-1]),
                            order_id)
        return Conflict("refused", str(cause or err), order_id=order_id)

    async def _input(self, order_id: str, request: NewReturn, return_id: str) -> ReturnInput:
        s = self.settings
        locations = {loc.id: loc for loc in await self.ledger.locations()}
        replacement = None
        if request.exchange_sku is not None:
            replacement = (await self.catalog.skus([request.exchange_sku])).get(request.exchange_sku)
            if replacement is None or replacement.price <= 0:
                raise Invalid("unknown_sku", f"exchange.sku: {request.exchange_sku!r} is not for sale",
                              field="exchange.sku")
        if request.method == ReturnMethod.in_store:
            store = locations.get(request.store_id or "")
            if store is None or store.kind != "store":
                raise Invalid("unknown_store", f"store_id: {request.store_id!r} is not a store of the chain",
                              field="store_id")
        order = await self.orders.get(order_id)
        if order is None:
            raise NotFound("not_found", f"order_id: no order {order_id}", field="order_id")
        now = datetime.now(timezone.utc)
        try:
            lines = check_request(order, request.lines, await self.repo.for_order(order_id), now=now,
                                  window_days=s.return_window_days)
            location = self._receiving(request, order.shipments, {x.sku for x in lines}, locations)
        except ReturnRefused as err:
            raise _refused(err, order_id) from err
        address = request.address or order.delivery.address
        if request.method != ReturnMethod.in_store and address is None:
            raise Invalid("validation_error", f"address: required for a {request.method.value} return (the order "
                                              "has no delivery address)", field="address", order_id=order_id)
        if request.exchange_pos_id is not None and (order.delivery.method == DeliveryMethod.pickup
                                                    or order.delivery.address is None):
            raise Invalid("exchange_not_possible", "exchange: a replacement ships to the order's delivery address; "
                                                   "this order has none", field="exchange", order_id=order_id)
        exchange = None
        if request.exchange_pos_id is not None and replacement is not None:
            exchange = ExchangeRequest(pos_id=request.exchange_pos_id, sku=replacement.sku, name=replacement.name,
                                       qty=next(x.qty for x in lines if x.pos_id == request.exchange_pos_id),
                                       unit_price=replacement.price)
        return ReturnInput(
            return_id=return_id, order_id=order_id, method=request.method, location=location, lines=lines,
            customer=order.customer, address=address, md_order=order.payment.md_order,
            currency=order.totals.currency, created_at=now, receipt_days=s.return_receipt_days,
            inspection_reminder_hours=s.return_inspection_reminder_hours, delivery_policy=s.return_delivery_refund,
            exchange=exchange, delivery=order.delivery, window_days=s.return_window_days)

    @staticmethod
    def _receiving(request: NewReturn, shipments: Any, skus: set[str],
                   locations: dict[str, LocationInfo]) -> LocationInfo:
        """Where the goods come back: the chosen store, or where they shipped from."""
        if request.method == ReturnMethod.in_store:
            return locations[request.store_id or ""]
        shipped_from = next((s.location_id for s in shipments if any(x.sku in skus for x in s.lines)), None)
        location = locations.get(shipped_from or "")
        if location is None:
            raise ReturnRefused(409, "no_receiving_location", "lines", "cannot tell where these goods shipped from")
        return location

    async def get(self, return_id: str) -> ReturnSnapshot:
        snap = await self.repo.get(return_id)
        if snap is None:
            raise NotFound("not_found", f"return_id: no return {return_id}", field="return_id")
        return snap

    async def retry(self, return_id: str, req: RetryRequest) -> None:
        """Resume a return parked on a refused step (the bank refused ``refund.do``)."""
        handle = self.temporal.get_workflow_handle_for(ReturnWorkflow.run, return_workflow_id(return_id))
        await run_update(handle.execute_update(ReturnWorkflow.retry, req), refused="nothing_to_retry",
                         missing=NotFound("not_found", f"return_id: no running return {return_id}",
                                          field="return_id"), return_id=return_id)

    async def of_order(self, order_id: str) -> list[ReturnSnapshot]:
        return await self.repo.for_order(order_id)
