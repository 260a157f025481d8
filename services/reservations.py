"""Click & reserve: hold items at a store (the customer pays at the till), read, cancel.

Placing is one update-with-start: ``ReservationWorkflow`` starts (a retried request finds the one its
first attempt started) and answers ``placement`` with the held amount, or why the store cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from adapters.reservations_repo import ReservationsRepo
from contracts.order import CancelRequest, Channel, Customer, LineRequest, OrderLine
from contracts.reservation import (
    ReservationInput,
    ReservationPlacement,
    ReservationStatus,
    reservation_workflow_id,
)
from contracts.steps import ErrorType
from services.errors import Conflict, Invalid, NotFound, Unavailable
from services.orders import OrderService, new_order_id, normal_phone
from services.temporal import refusal
from settings import Settings
from workflows.reservation import ReservationWorkflow


@dataclass(frozen=True)
class NewReservation:
    channel: Channel
    store_id: str
    customer: Customer
    lines: list[LineRequest]
    hold_minutes: float | None = None  # shorter than the store's pickup window


class ReservationService:
    def __init__(self, temporal: Client, engine: AsyncEngine, settings: Settings) -> None:
        self.temporal, self.settings = temporal, settings
        self.repo = ReservationsRepo(engine)
        self.orders = OrderService(temporal, engine, settings)  # the catalog and the stores' checks

    async def create(self, req: NewReservation, idempotency_key: str | None) -> ReservationPlacement:
        """Hold the items; ``Conflict`` (out_of_stock) when the store lacks them, ``Invalid`` naming the field."""
        s = self.settings
        lines = await self.orders.catalog_lines(req.lines)
        store = await self.orders.pickup_store(req.store_id, field="store_id")
        reservation_id = new_order_id(f"reservation:{idempotency_key}" if idempotency_key else None)
        inp = ReservationInput(
            reservation_id=reservation_id, store=store, channel=req.channel,
            customer=Customer(phone=normal_phone(req.customer.phone), name=req.customer.name,
                              email=req.customer.email),
            lines=[OrderLine(pos_id=x.pos_id, sku=x.sku, name=x.name, qty=x.qty, unit_price=x.unit_price)
                   for x in lines],
            number=reservation_id, ready_sla_minutes=store.assembly_sla_minutes or s.assembly_sla_pickup_minutes,
            pickup_window_days=store.pickup_window_days or s.pickup_window_days, hold_minutes=req.hold_minutes,
            currency=s.currency, created_at=datetime.now(timezone.utc))
        start = WithStartWorkflowOperation(
            ReservationWorkflow.run, inp, id=reservation_workflow_id(reservation_id), task_queue=s.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        try:
            placement = await self.temporal.execute_update_with_start_workflow(ReservationWorkflow.placement,
                                                                               start_workflow_operation=start)
        except WorkflowUpdateFailedError as err:
            raise refusal(err, "refused") from err
        except RPCError as err:
            raise Unavailable("temporal_unavailable", f"cannot reserve now: {err.message}") from err
        if placement.status == ReservationStatus.rejected:
            if placement.error_code == ErrorType.OUT_OF_STOCK:
                raise Conflict("out_of_stock", f"lines: {placement.error_message}", field="lines",
                               store_id=store.id, reservation_id=reservation_id)
            raise Invalid((placement.error_code or "refused").lower(),
                          placement.error_message or "the reservation was refused")
        return placement

    async def get(self, reservation_id: str) -> dict[str, Any]:
        snapshot = await self.repo.get(reservation_id)
        if snapshot is None:
            raise NotFound("not_found", f"reservation_id: no reservation {reservation_id}", field="reservation_id")
        return snapshot

    async def cancel(self, reservation_id: str, req: CancelRequest) -> ReservationStatus:
        handle = self.temporal.get_workflow_handle_for(ReservationWorkflow.run, reservation_workflow_id(reservation_id))
        try:
            status = await handle.execute_update(ReservationWorkflow.cancel, req)
        except WorkflowUpdateFailedError as err:
            raise refusal(err, "cannot_cancel", reservation_id=reservation_id) from err
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            known = await self.repo.get(reservation_id)
            if known is not None:  # the workflow has closed: collected, expired or cancelled
                raise Conflict("cannot_cancel", f"reservation is already {known['status']}",
                               reservation_id=reservation_id) from err
            raise NotFound("not_found", f"reservation_id: no open reservation {reservation_id}",
                           field="reservation_id") from err
        return ReservationStatus(status)
