"""FulfillmentWorkflow (``fulfillment-{order}-{n}``): one shipment from one location.

1. give the store's POS an assembly task and wait for "assembled", reminding the store when
   the assembly SLA passes;
2. book the courier (the shipment id is the carrier's merchant number: booking is idempotent);
3. when the courier takes the parcel, the reservation becomes a sale (ledger + ERP);
4. follow the carrier (webhooks as signals; polling as a fallback, the only way for the post)
   until delivered.

Every change is reported to the parent order with a ``shipment_update`` signal.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.messages import mask_phone
    from models.order import (
        Address,
        CancelRequest,
        CourierEvent,
        Customer,
        Delivery,
        LineRequest,
        OrderLine,
        ShipmentState,
        ShipmentUpdate,
        StoreEvent,
    )
    from models.steps import (
        BookedShipment,
        ErpMovement,
        PosCancel,
        PosTaskRequest,
        SettleRequest,
        ShipmentBookingRequest,
        TrackingResult,
    )
    from models.delivery import shipment_late
    from models.stock import LocationInfo
    from models.recovery import ParkedStep, RetryRequest

from workflows import search
from workflows.common import call, local, signal_workflow
from workflows.escalation import AssemblyEscalation
from workflows.recovery import Recovery, StepAbandoned

#: carrier statuses (models.couriers.ShipmentStatus values) → our shipment state
COURIER_STATES: dict[str, ShipmentState] = {
    "created": ShipmentState.booked,
    "handed_over": ShipmentState.handed_over,
    "in_transit": ShipmentState.in_transit,
    "arrived": ShipmentState.in_transit,
    "ready_for_pickup": ShipmentState.ready_for_pickup,
    "delivered": ShipmentState.delivered,
    "not_delivered": ShipmentState.not_delivered,
    "returned": ShipmentState.not_delivered,
    "cancelled": ShipmentState.cancelled,
}
LEFT_THE_STORE = {ShipmentState.handed_over, ShipmentState.in_transit, ShipmentState.ready_for_pickup,
                  ShipmentState.delivered, ShipmentState.not_delivered}
FINAL = {ShipmentState.delivered, ShipmentState.not_delivered, ShipmentState.cancelled}


@dataclass(frozen=True)
class FulfillmentInput:
    order_id: str
    shipment_id: str
    n: int
    location: LocationInfo
    lines: list[OrderLine]
    reservation_keys: list[str]
    delivery: Delivery
    customer: Customer
    carrier: str
    parent_id: str
    assembly_sla_minutes: int = 120
    #: webhooks are the norm; polling catches a lost one (post: the only way)
    poll_hours: int = 6
    post_poll_minutes: int = 240
    #: people and timers (workflows.escalation): one more interval after the SLA per step (0: half the SLA)
    escalate_after_minutes: int = 0
    auto_resource: bool = True  # move the shipment elsewhere on a shortage before asking a person
    attempt: int = 1  # the location attempt (the POS task id carries it from the 2nd on)
    tried: list[str] = field(default_factory=list)  # locations the shipment moved away from
    revision: int = 0
    #: store events of the previous run still to act on (an "assembled" pressed while the order decided)
    carried_events: list[StoreEvent] = field(default_factory=list)


@dataclass(frozen=True)
class FulfillmentResult:
    shipment_id: str
    delivered: bool
    cancelled: bool = False
    delivered_at: datetime | None = None
    booking: BookedShipment | None = None
    notes: list[str] = field(default_factory=list)


@workflow.defn
class FulfillmentWorkflow(AssemblyEscalation):
    def __init__(self) -> None:
        self._state = ShipmentState.planned
        self._store_events: list[StoreEvent] = []
        self._courier_events: list[CourierEvent] = []
        self._cancel: CancelRequest | None = None
        self._booking: BookedShipment | None = None
        self._consumed = False
        self._recovery = Recovery()  # a step parked for an operator (workflows/recovery.py)

    @workflow.run
    async def run(self, inp: FulfillmentInput) -> FulfillmentResult:
        self._inp = inp
        if not await self._assemble():
            return await self._cancelled()
        await self._book()
        # cancelled while the booking was on its way: a booked parcel is cancelled with the courier
        # (and the store told) by _follow_carrier; runs from before that fix just stop here
        if self._cancel is not None and (self._booking is None or not workflow.patched("cancel-after-booking")):
            return await self._cancelled()
        delivered_at = await self._follow_carrier()
        if self._state == ShipmentState.cancelled:
            return await self._cancelled()
        return FulfillmentResult(shipment_id=inp.shipment_id, delivered=self._state == ShipmentState.delivered,
                                 delivered_at=delivered_at, booking=self._booking)

    # 1. assembly at the store ----------------------------------------------------------------
    async def _assemble(self) -> bool:
        inp = self._inp
        await call("create_pos_task", PosTaskRequest(
            task_id=self._task_id, location_id=inp.location.id, kind="assemble", order_id=inp.order_id,
            lines=[LineRequest(sku=l.sku, qty=l.qty) for l in inp.lines], names={l.sku: l.name for l in inp.lines},
            due_at=workflow.now() + timedelta(minutes=inp.assembly_sla_minutes),
            customer_name=inp.customer.name, phone_masked=mask_phone(inp.customer.phone),
            note=f"Заказ {inp.order_id}, отгрузка {inp.n}"))
        await self._report(ShipmentState.assembling, f"Магазин {inp.location.id} собирает отгрузку {inp.n}")
        self._start_escalation()
        while True:
            try:
                await workflow.wait_condition(
                    lambda: self._assembly_done() or self._cancel is not None or self._needs_attention(),
                    timeout=self._until_next_escalation())
            except TimeoutError:
                await self._escalate()  # reminder → supervisor → re-source / operator (workflows.escalation)
                continue
            if self._cancel is None and not self._assembly_done():
                await self._attend()  # a decision, a shortage or a revision; may continue as new
                continue
            await self._ladder.board.close_all("assembled" if self._cancel is None else "cancelled")
            if self._cancel is not None:
                await call("cancel_pos_task", PosCancel(task_id=self._task_id, location_id=inp.location.id,
                                                         reason=self._cancel.reason))
                return False
            await self._report(ShipmentState.assembled, f"Магазин {inp.location.id} собрал отгрузку {inp.n}")
            return True

    def _task_events(self) -> list[StoreEvent]:
        """The store's events about this run's task: a late one about a task cancelled before an
        edit or a move (pressed just before the cancel reached the POS) is not acted on."""
        return [e for e in self._store_events if e.task_id in ("", self._task_id)]

    def _assembled(self) -> bool:
        return any(e.event == "assembled" for e in self._task_events())

    # 2. the courier -----------------------------------------------------------------------------
    async def _book(self) -> None:
        inp = self._inp
        address = inp.delivery.address
        assert address is not None, "a shipped order has an address (validated by the API)"
        try:
            self._booking = await self._recovery.run("courier_booking", lambda: call("book_shipment", ShipmentBookingRequest(
                shipment_id=inp.shipment_id, carrier=inp.carrier, from_location_id=inp.location.id,
                from_city=inp.location.city, address=address, recipient=inp.customer, lines=inp.lines),
                result_type=BookedShipment), on_park=self._parked, on_resume=self._resumed,
                abandon=lambda: self._cancel is not None)
        except StepAbandoned:
            return  # cancelled while on hold: run() reports the cancellation
        self._state = ShipmentState.booked
        await self._report(ShipmentState.booked,
                           f"Отгрузка {inp.n} передана перевозчику {inp.carrier}: "
                           f"трек {self._booking.tracking_number or self._booking.external_id}")

    # 3-4. follow the carrier until the parcel reaches the customer ----------------------------------
    async def _follow_carrier(self) -> datetime | None:
        inp = self._inp
        assert self._booking is not None
        poll = timedelta(minutes=inp.post_poll_minutes) if inp.carrier == "post" else timedelta(hours=inp.poll_hours)
        seen = 0
        while self._state not in FINAL:
            if self._cancel is not None and self._state not in LEFT_THE_STORE:
                await call("cancel_shipment", self._booking)
                await call("cancel_pos_task", PosCancel(task_id=self._task_id, location_id=inp.location.id,
                                                         reason=self._cancel.reason))
                self._state = ShipmentState.cancelled
                break
            try:
                await workflow.wait_condition(
                    lambda: len(self._courier_events) > seen or self._cancel is not None, timeout=poll)
            except TimeoutError:
                polled = await call("track_shipment", self._booking, result_type=TrackingResult)
                self._courier_events.append(CourierEvent(status=polled.status, code=polled.code, at=polled.at,
                                                         city=polled.city))
            while seen < len(self._courier_events):
                event = self._courier_events[seen]
                seen += 1
                await self._apply(event)
        return self._delivered_at

    async def _apply(self, event: CourierEvent) -> None:
        inp = self._inp
        state = COURIER_STATES.get(event.status)
        if state is None or state == self._state or self._state in FINAL:
            return
        if state in LEFT_THE_STORE and not self._consumed:
            # the goods left the location: the reservation becomes a sale, in our ledger and in the ERP
            await local("consume_stock", SettleRequest(owner=inp.parent_id, keys=inp.reservation_keys))
            await call("post_sale", ErpMovement(number=inp.shipment_id, location_id=inp.location.id,
                                                items=[(l.sku, l.qty) for l in inp.lines]))
            self._consumed = True
            if state != ShipmentState.handed_over:
                await self._report(ShipmentState.handed_over, f"Курьер забрал отгрузку {inp.n}")
        self._state = state
        promise: dict[str, object] = {}
        if state == ShipmentState.delivered:
            self._delivered_at = event.at or workflow.now()
            promise = _promise_kept(inp.delivery, self._delivered_at)
        where = f" ({event.city})" if event.city else ""
        late = f", с опозданием: обещали до {inp.delivery.promised_to}" if promise.get("late") else ""
        await self._report(state, f"Перевозчик {inp.carrier}: {event.code or event.status}{where}{late}",
                           at=self._delivered_at if state == ShipmentState.delivered else None, **promise)

    # ------------------------------------------------------------------ signals
    @workflow.signal
    def pos_event(self, event: StoreEvent) -> None:
        self._store_events.append(event)

    @workflow.signal
    def courier_event(self, event: CourierEvent) -> None:
        self._courier_events.append(event)

    @workflow.signal
    def change_address(self, address: Address) -> None:
        """The order's delivery address changed; it applies while the parcel is not booked yet."""
        inp = getattr(self, "_inp", None)
        if inp is not None and self._booking is None:
            self._inp = dataclasses.replace(inp, delivery=dataclasses.replace(inp.delivery, address=address))

    @workflow.signal
    def cancel(self, req: CancelRequest) -> None:
        if self._state not in LEFT_THE_STORE:
            self._cancel = req

    @workflow.signal
    def retry(self, req: RetryRequest) -> None:
        """The order forwards an operator's retry of a parked step (ignored when nothing is parked)."""
        self._recovery.resume(req)

    async def _parked(self, parked: ParkedStep) -> None:
        search.upsert("on_hold")
        await signal_workflow(self._inp.parent_id, "step_parked", parked)

    async def _resumed(self, parked: ParkedStep, req: RetryRequest) -> None:
        search.upsert(self._state.value)

    @workflow.query
    def state(self) -> ShipmentState:
        return self._state

    # ------------------------------------------------------------------ helpers
    _delivered_at: datetime | None = None

    @property
    def _task_id(self) -> str:
        suffix = f":{self._inp.attempt}" if self._inp.attempt > 1 else ""
        return f"{workflow.info().workflow_id}:assemble{suffix}"

    async def _cancelled(self) -> FulfillmentResult:
        self._state = ShipmentState.cancelled
        await self._report(ShipmentState.cancelled, f"Отгрузка {self._inp.n} отменена")
        return FulfillmentResult(shipment_id=self._inp.shipment_id, delivered=False, cancelled=True,
                                 booking=self._booking)

    async def _report(self, state: ShipmentState, message: str, at: datetime | None = None, **data: object) -> None:
        search.upsert(state.value)
        b = self._booking
        await signal_workflow(self._inp.parent_id, "shipment_update",
            ShipmentUpdate(shipment_id=self._inp.shipment_id, status=state, message=message,
                           carrier=b.carrier if b else None, tracking_number=b.tracking_number if b else None,
                           external_id=b.external_id if b else None, at=at or workflow.now(), data=dict(data)))


def _promise_kept(delivery: Delivery, delivered_at: datetime) -> dict[str, object]:
    """``{"late": bool, "promised_to": ...}`` for the order's timeline, or ``{}`` when nothing was promised."""
    region = delivery.address.region if delivery.address else None
    late = shipment_late(delivery.promised_to, delivered_at, region)
    return {} if late is None else {"late": late, "promised_to": delivery.promised_to}
