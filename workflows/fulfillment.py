"""FulfillmentWorkflow (``fulfillment-{order}-{n}``): one shipment from one location.

1. give the store's POS an assembly task and wait for "assembled" (the escalation ladder of
   ``workflows/escalation.py`` reminds the store, asks a supervisor, moves the shipment); a
   shortage the store reports is re-sourced to another location when one has everything, else the
   order asks the customer and the shipment waits for its ``revise``;
2. book the courier (the shipment id is the carrier's merchant number: booking is idempotent);
   a refused booking parks for an operator (``retry``);
3. when the courier takes the parcel, the reservation becomes a sale (ledger + ERP);
4. follow the carrier (webhooks as signals; polling as a fallback, the only way for the post)
   until delivered.

Every change is reported to the parent order with a ``shipment_update`` signal. Moving or revising
the shipment continues the workflow as new with the new input: the rest of the process reads only
its input.

Outside messages (the store's POS events, the courier's statuses, the order's cancel, revise,
address, retry) go to one inbox and the main loop applies them in the order they came: a cancel and
the courier's pick-up arriving together have one outcome (a parcel that has left the store is not
cancelled; the order learns it from the shipment's report).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.couriers import CourierActivities
    from activities.erp import ErpActivities
    from activities.pos import PosActivities
    from activities.stock import StockActivities
    from contracts.edits import EditAnswer, EditHold
    from contracts.fulfillment import FulfillmentInput, FulfillmentResult
    from contracts.order import (
        Address,
        CancelRequest,
        CatalogLine,
        Channel,
        CourierEvent,
        Delivery,
        DeliveryMethod,
        LineRequest,
        OrderInput,
        ShipmentState,
        ShipmentUpdate,
        StoreEvent,
    )
    from contracts.recovery import ParkedStep, RetryRequest
    from contracts.steps import (
        BookedShipment,
        ErpMovement,
        PosCancel,
        PosTaskRequest,
        ReserveRequest,
        SettleRequest,
        ShipmentBookingRequest,
        StockViewRequest,
        StoreMessage,
    )
    from contracts.stock import Allocation, line_key
    from contracts.tasks import OpenTask, ShipmentRevision, ShortageReport, TaskDecision, TaskOutcome
    from domain.delivery import shipment_late
    from domain.messages import mask_phone
    from domain.planning import sourcing_request
    from domain.shortages import move_target, moved_exclude

from workflows import search
from workflows.common import STEP_FAILED, call, failure_message, local, signal
from workflows.escalation import EscalationLadder, ShipmentPorts
from workflows.inbox import Inbox
from workflows.parents import OrderParent
from workflows.recovery import Recovery, StepAbandoned

#: carrier statuses (adapters.wire.couriers.ShipmentStatus values) → our shipment state
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


# ---------------------------------------------------------------------------------------------- the inbox
@dataclass
class StoreEventCame:
    event: StoreEvent


@dataclass
class CourierStatusCame:
    event: CourierEvent


@dataclass
class CancelCame:
    req: CancelRequest


@dataclass
class RevisionCame:
    rev: ShipmentRevision


@dataclass
class EditHoldCame:
    hold: EditHold


@dataclass
class AddressCame:
    address: Address


@dataclass
class RetryCame:
    req: RetryRequest


ShipmentEvent = (StoreEventCame | CourierStatusCame | CancelCame | RevisionCame | EditHoldCame | AddressCame
                 | RetryCame)


@workflow.defn
class FulfillmentWorkflow:
    @workflow.init
    def __init__(self, inp: FulfillmentInput) -> None:
        self.inp = inp
        self.state = ShipmentState.planned
        self.inbox: Inbox[ShipmentEvent] = Inbox(self._apply, self._may_apply)
        self.store_events: list[StoreEvent] = list(inp.carried_events)
        self.cancel_request: CancelRequest | None = inp.cancel
        self.booking: BookedShipment | None = None
        self.consumed = False
        self.delivered_at: datetime | None = None
        self.shortages_seen = 0
        self.awaiting_revision = False  # a shortage or an edit: the store waits for the order's revise
        self.revision: ShipmentRevision | None = None
        self.edit_hold: EditHold | None = None
        self.recovery = Recovery()  # the courier booking, parked for an operator when refused
        self.ladder = EscalationLadder(ShipmentPorts(
            shipment=lambda: self.inp, task_id=lambda: self.task_id, report=self._report, move=self._move,
            cancel_order=self._cancel_order))

    # ------------------------------------------------------------------ the process
    @workflow.run
    async def run(self, inp: FulfillmentInput) -> FulfillmentResult:
        if not await self._assemble():  # 1. (may continue as new at another location or with new lines)
            return await self._cancelled()
        await self._book()  # 2.
        if self.cancel_request is not None and self.booking is None:  # cancelled while the booking was parked
            return await self._cancelled()
        await self._follow_carrier()  # 3-4. (a cancel before the courier took it cancels the booking)
        if self.state == ShipmentState.cancelled:
            return await self._cancelled()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return FulfillmentResult(shipment_id=inp.shipment_id, delivered=self.state == ShipmentState.delivered,
                                 delivered_at=self.delivered_at, booking=self.booking)

    # 1. assembly at the store ----------------------------------------------------------------
    async def _assemble(self) -> bool:
        inp = self.inp
        await call(PosActivities.create_pos_task, PosTaskRequest(
            task_id=self.task_id, location_id=inp.location.id, kind="assemble", order_id=inp.order_id,
            lines=[LineRequest(sku=x.sku, qty=x.qty) for x in inp.lines], names={x.sku: x.name for x in inp.lines},
            due_at=workflow.now() + timedelta(minutes=inp.assembly_sla_minutes),
            customer_name=inp.customer.name, phone_masked=mask_phone(inp.customer.phone),
            note=f"Заказ {inp.order_id}, отгрузка {inp.n}"))
        await self._report(ShipmentState.assembling, f"Магазин {inp.location.id} собирает отгрузку {inp.n}")
        self.ladder.start()
        while True:
            if not await self.wait(lambda: self._assembly_done() or self.cancel_request is not None
                                   or self._needs_attention(), self.ladder.until_next()):
                await self.ladder.escalate()  # reminder → supervisor → another location / operator
                continue
            if self.cancel_request is None and not self._assembly_done():
                await self._attend()  # a decision, a shortage, an edit or a revision; may continue as new
                continue
            await self.ladder.board.close_all("assembled" if self.cancel_request is None else "cancelled")
            if self.cancel_request is not None:
                await call(PosActivities.cancel_pos_task, PosCancel(task_id=self.task_id, location_id=inp.location.id,
                                                                    reason=self.cancel_request.reason))
                return False
            await self._report(ShipmentState.assembled, f"Магазин {inp.location.id} собрал отгрузку {inp.n}")
            return True

    def _task_events(self) -> list[StoreEvent]:
        """The store's events about this run's task: a late one about a task cancelled before an
        edit or a move (pressed just before the cancel reached the POS) is not acted on."""
        return [e for e in self.store_events if e.task_id in ("", self.task_id)]

    def _assembled(self) -> bool:
        return any(e.event == "assembled" for e in self._task_events())

    def _assembly_done(self) -> bool:
        return self._assembled() and not self.awaiting_revision

    def _new_shortage(self) -> StoreEvent | None:
        shortages = [e for e in self._task_events() if e.event == "shortage"]
        return shortages[self.shortages_seen] if len(shortages) > self.shortages_seen else None

    def _needs_attention(self) -> bool:
        return (bool(self.ladder.decisions()) or self._new_shortage() is not None or self.revision is not None
                or self.edit_hold is not None)

    async def _attend(self) -> None:
        for decision in self.ladder.decisions():
            await self.ladder.decide(decision)
        shortage = self._new_shortage()
        if shortage is not None:
            self.shortages_seen += 1
            await self._on_shortage(shortage)
        if self.edit_hold is not None:
            await self._hold_for_edit(self.edit_hold)
        if self.revision is not None:
            await self._revise(self.revision)

    async def _on_shortage(self, event: StoreEvent) -> None:
        """Re-source the shipment when another location has everything; else ask the order."""
        inp = self.inp
        sku, missing = event.sku or "", event.missing_qty or 1
        await self._report(ShipmentState.assembling, f"Магазин {inp.location.id}: не хватает {sku} × {missing}",
                           shortage_sku=sku, missing_qty=missing)
        if inp.auto_resource and await self._move(f"нехватка {sku} × {missing}", quiet=True):
            return  # continued as new
        self.awaiting_revision = True
        self.ladder.pause()  # no store reminders while the customer is asked
        await signal(inp.parent_id, OrderParent.shortage_reported, ShortageReport(
            shipment_id=inp.shipment_id, location_id=inp.location.id, sku=sku, missing_qty=missing,
            lines=list(inp.lines), reservation_keys=list(inp.reservation_keys), pos_task_id=self.task_id))

    async def _hold_for_edit(self, hold: EditHold) -> None:
        """An operator changes the order's lines: stop the store (cancel its POS task) and wait for
        the order's ``revise`` — unless the store has already assembled or a shortage is open."""
        inp = self.inp
        self.edit_hold = None
        reason = ""
        if self._assembled():
            reason = f"магазин {inp.location.id} уже собрал отгрузку"
        elif self.awaiting_revision:
            reason = "по отгрузке уже согласуется замена недостающего товара"
        else:
            try:
                await call(PosActivities.cancel_pos_task, PosCancel(
                    task_id=self.task_id, location_id=inp.location.id,
                    reason="заказ изменяется оператором, ждите новое задание"))
            except STEP_FAILED as err:
                reason = f"касса магазина не отменила задание: {failure_message(err)}"
        if not reason:
            self.awaiting_revision = True
            self.ladder.pause()  # the store waits for the new task
            await self._report(ShipmentState.assembling,
                               f"Сборка отгрузки {inp.n} остановлена: оператор меняет состав заказа")
        await signal(inp.parent_id, OrderParent.edit_answer, EditAnswer(
            shipment_id=inp.shipment_id, n=hold.n, ok=not reason, reason=reason, lines=list(inp.lines),
            reservation_keys=list(inp.reservation_keys)))

    async def _revise(self, rev: ShipmentRevision) -> None:
        inp = self.inp
        if rev.new_task:  # after an edit: the old task is cancelled, the store gets a new one
            await self._report(ShipmentState.assembling, f"Новое задание на сборку отгрузки {inp.n}: {rev.note}")
            await self._continue(dataclasses.replace(inp, lines=rev.lines, reservation_keys=rev.reservation_keys,
                                                     revision=rev.n, attempt=inp.attempt + 1, carried_events=[]))
            return  # not reached: continued as new
        await call(PosActivities.notify_store, StoreMessage(
            message_id=f"{self.task_id}:revision:{rev.n}", location_id=inp.location.id, task_id=self.task_id,
            text=f"Заказ {inp.order_id}: {rev.note}"))
        await self._report(ShipmentState.assembling, f"Состав отгрузки {inp.n} изменён: {rev.note}")
        await self._continue(dataclasses.replace(inp, lines=rev.lines, reservation_keys=rev.reservation_keys,
                                                 revision=rev.n), carry=True)

    # moving the shipment ----------------------------------------------------------------------------
    async def _move(self, reason: str, *, quiet: bool = False) -> bool:
        """Hold the whole shipment at one other location, release the first one, and carry on there.
        False (nothing changed) when no single other location has everything (``domain.shortages.move_target``,
        the rule the simulator measures)."""
        inp = self.inp
        if inp.delivery.method == DeliveryMethod.pickup:
            return False  # the customer comes to this store: a transfer is a person's decision
        view = await local(StockActivities.load_stock_view, StockViewRequest(skus=sorted({x.sku for x in inp.lines})))
        as_order = OrderInput(order_id=inp.order_id, channel=Channel.web, customer=inp.customer, delivery=inp.delivery,
                              lines=[CatalogLine(pos_id=x.pos_id, sku=x.sku, name=x.name, qty=x.qty,
                                                 unit_price=x.unit_price) for x in inp.lines])
        move = move_target(sourcing_request(as_order, view, now=workflow.now(),
                                            exclude=moved_exclude(inp.location.id, inp.tried)))
        if move is None:
            if not quiet:
                await self._report(ShipmentState.assembling,
                                   f"Ни один другой склад не может взять отгрузку {inp.n} целиком")
            return False
        target = next(loc for loc in view.locations if loc.id == move.location_id)
        attempt = inp.attempt + 1
        allocations = [Allocation(key=line_key(inp.parent_id, x.pos_id, target.id, f"m{attempt}"), sku=x.sku,
                                  location_id=target.id, qty=x.qty) for x in inp.lines]
        try:
            await local(StockActivities.reserve_stock, ReserveRequest(owner=inp.parent_id, allocations=allocations))
        except STEP_FAILED:
            return False  # the stock moved meanwhile: nothing was held
        await local(StockActivities.release_stock, SettleRequest(owner=inp.parent_id, keys=list(inp.reservation_keys)))
        await call(PosActivities.cancel_pos_task, PosCancel(task_id=self.task_id, location_id=inp.location.id,
                                                            reason=f"заказ передан на {target.id}: {reason}"))
        await self._report(ShipmentState.assembling,
                           f"Отгрузка {inp.n} перенесена с {inp.location.id} на {target.id} ({reason}): "
                           f"{move.reason}", location_id=target.id, resourced_from=inp.location.id)
        await self._continue(dataclasses.replace(
            inp, location=target, reservation_keys=[a.key for a in allocations], attempt=attempt,
            tried=[*inp.tried, inp.location.id],
            assembly_sla_minutes=target.assembly_sla_minutes or inp.assembly_sla_minutes))
        return True  # not reached

    async def _continue(self, new_input: FulfillmentInput, *, carry: bool = False) -> None:
        """Carry on as a new run. ``carry``: an "assembled" the store pressed after its shortage
        report (same task, same store) still counts in the new run. A cancel that came meanwhile
        goes with it."""
        await self.ladder.board.close_all("the shipment changed")
        await self.wait(workflow.all_handlers_finished)
        if carry:  # no await from here on: nothing can arrive unseen
            events = self._task_events()
            shortages = [i for i, e in enumerate(events) if e.event == "shortage"]
            after = events[shortages[-1] + 1:] if shortages else []
            new_input = dataclasses.replace(new_input, carried_events=[e for e in after if e.event == "assembled"])
        workflow.continue_as_new(dataclasses.replace(new_input, cancel=self.cancel_request))

    async def _cancel_order(self, req: CancelRequest) -> None:
        """An operator decided on an escalation: the whole order is cancelled (the order tells us back)."""
        self.cancel_request = req
        await signal(self.inp.parent_id, OrderParent.cancel_order, req)

    # 2. the courier -----------------------------------------------------------------------------
    async def _book(self) -> None:
        inp = self.inp
        address = inp.delivery.address
        assert address is not None, "a shipped order has an address (validated by the API)"
        try:
            self.booking = await self.recovery.run(
                "courier_booking", lambda: call(CourierActivities.book_shipment, ShipmentBookingRequest(
                    shipment_id=inp.shipment_id, carrier=inp.carrier, from_location_id=inp.location.id,
                    from_city=inp.location.city, address=address, recipient=inp.customer, lines=inp.lines)),
                on_park=self._parked, on_resume=self._resumed, abandon=lambda: self.cancel_request is not None,
                wait=self.wait)
        except StepAbandoned:
            return  # cancelled while on hold: run() reports the cancellation
        self.state = ShipmentState.booked
        await self._report(ShipmentState.booked, f"Отгрузка {inp.n} передана перевозчику {inp.carrier}: "
                                                 f"трек {self.booking.tracking_number or self.booking.external_id}")

    # 3-4. follow the carrier until the parcel reaches the customer ----------------------------------
    async def _follow_carrier(self) -> None:
        inp, booking = self.inp, self.booking
        assert booking is not None
        poll = timedelta(minutes=inp.post_poll_minutes) if inp.carrier == "post" else timedelta(hours=inp.poll_hours)
        while self.state not in FINAL:
            if self.cancel_request is not None and self.state not in LEFT_THE_STORE:
                await call(CourierActivities.cancel_shipment, booking)
                await call(PosActivities.cancel_pos_task, PosCancel(task_id=self.task_id, location_id=inp.location.id,
                                                                    reason=self.cancel_request.reason))
                self.state = ShipmentState.cancelled
                break
            if not await self.wait(lambda: self.cancel_request is not None or self.state in FINAL, poll):
                polled = await call(CourierActivities.track_shipment, booking)
                await self._courier_status(CourierEvent(status=polled.status, code=polled.code, at=polled.at,
                                                        city=polled.city))

    async def _courier_status(self, event: CourierEvent) -> None:
        inp = self.inp
        state = COURIER_STATES.get(event.status)
        if state is None or state == self.state or self.state in FINAL:
            return
        if state in LEFT_THE_STORE and not self.consumed:
            # the goods left the location: the reservation becomes a sale, in our ledger and in the ERP
            await local(StockActivities.consume_stock, SettleRequest(owner=inp.parent_id, keys=inp.reservation_keys))
            await call(ErpActivities.post_sale, ErpMovement(number=inp.shipment_id, location_id=inp.location.id,
                                                            items=[(x.sku, x.qty) for x in inp.lines]))
            self.consumed = True
            if state != ShipmentState.handed_over:
                await self._report(ShipmentState.handed_over, f"Курьер забрал отгрузку {inp.n}")
        self.state = state
        promise: dict[str, object] = {}
        if state == ShipmentState.delivered:
            self.delivered_at = event.at or workflow.now()
            promise = _promise_kept(inp.delivery, self.delivered_at)
        where = f" ({event.city})" if event.city else ""
        late = f", с опозданием: обещали до {inp.delivery.promised_to}" if promise.get("late") else ""
        await self._report(state, f"Перевозчик {inp.carrier}: {event.code or event.status}{where}{late}",
                           at=self.delivered_at if state == ShipmentState.delivered else None, **promise)

    # ------------------------------------------------------------------ the main loop's waiting and applying
    async def wait(self, done: Callable[[], bool], timeout: timedelta | None = None) -> bool:
        """Wait until ``done()`` or the timeout, applying the inbox's events in order meanwhile."""
        return await self.inbox.wait(done, timeout)

    def _may_apply(self, event: ShipmentEvent) -> bool:
        """A carrier's status counts once the parcel is booked (nothing to track before)."""
        return not isinstance(event, CourierStatusCame) or self.booking is not None

    async def _apply(self, event: ShipmentEvent) -> None:
        match event:
            case StoreEventCame(event=store_event):
                self.store_events.append(store_event)
            case CourierStatusCame(event=courier_event):
                await self._courier_status(courier_event)
            case CancelCame(req=req):
                if self.state not in LEFT_THE_STORE and self.cancel_request is None:
                    self.cancel_request = req
            case RevisionCame(rev=rev):
                if self.awaiting_revision:
                    self.revision = rev
            case EditHoldCame(hold=hold):
                self.edit_hold = hold
            case AddressCame(address=address):
                if self.booking is None:
                    self.inp = dataclasses.replace(self.inp, delivery=dataclasses.replace(self.inp.delivery,
                                                                                          address=address))
            case RetryCame(req=req):
                self.recovery.resume(req)

    # ------------------------------------------------------------------ messages from outside: enqueue
    @workflow.signal
    def pos_event(self, event: StoreEvent) -> None:
        self.inbox.put(StoreEventCame(event))

    @workflow.signal
    def courier_event(self, event: CourierEvent) -> None:
        self.inbox.put(CourierStatusCame(event))

    @workflow.signal
    def cancel(self, req: CancelRequest) -> None:
        """The order is cancelled (ignored once the parcel has left the store)."""
        self.inbox.put(CancelCame(req))

    @workflow.signal
    def change_address(self, address: Address) -> None:
        """The order's delivery address changed; it applies while the parcel is not booked yet."""
        self.inbox.put(AddressCame(address))

    @workflow.signal
    def retry(self, req: RetryRequest) -> None:
        """The order forwards an operator's retry of a parked step (ignored when nothing is parked)."""
        self.inbox.put(RetryCame(req))

    @workflow.signal
    def revise(self, rev: ShipmentRevision) -> None:
        """The order's answer to a shortage or an edit: the shipment's new lines and holds."""
        self.inbox.put(RevisionCame(rev))

    @workflow.signal
    def hold_for_edit(self, hold: EditHold) -> None:
        """An operator edits the order: stop the store and answer with what the shipment holds."""
        self.inbox.put(EditHoldCame(hold))

    @workflow.update
    async def complete_task(self, d: TaskDecision) -> TaskOutcome:
        """A supervisor's or an operator's answer on an escalation task."""
        return await self.ladder.board.complete(d)

    @complete_task.validator
    def _validate_complete_task(self, d: TaskDecision) -> None:
        self.ladder.board.validate(d)

    @workflow.query
    def open_tasks(self) -> list[OpenTask]:
        return self.ladder.listing()

    @workflow.query(name="state")
    def current_state(self) -> ShipmentState:
        return self.state

    # ------------------------------------------------------------------ helpers
    @property
    def task_id(self) -> str:
        suffix = f":{self.inp.attempt}" if self.inp.attempt > 1 else ""
        return f"{workflow.info().workflow_id}:assemble{suffix}"

    async def _parked(self, parked: ParkedStep) -> None:
        search.upsert("on_hold")
        await signal(self.inp.parent_id, OrderParent.step_parked, parked)

    async def _resumed(self, parked: ParkedStep, req: RetryRequest) -> None:
        search.upsert(self.state.value)

    async def _cancelled(self) -> FulfillmentResult:
        self.state = ShipmentState.cancelled
        await self._report(ShipmentState.cancelled, f"Отгрузка {self.inp.n} отменена")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return FulfillmentResult(shipment_id=self.inp.shipment_id, delivered=False, cancelled=True,
                                 booking=self.booking)

    async def _report(self, state: ShipmentState, message: str, at: datetime | None = None, **data: object) -> None:
        search.upsert(state.value)
        b = self.booking
        await signal(self.inp.parent_id, OrderParent.shipment_update, ShipmentUpdate(
            shipment_id=self.inp.shipment_id, status=state, message=message, carrier=b.carrier if b else None,
            tracking_number=b.tracking_number if b else None, external_id=b.external_id if b else None,
            at=at or workflow.now(), data=dict(data)))


def _promise_kept(delivery: Delivery, delivered_at: datetime) -> dict[str, object]:
    """``{"late": bool, "promised_to": ...}`` for the order's timeline, or ``{}`` when nothing was promised."""
    region = delivery.address.region if delivery.address else None
    late = shipment_late(delivery.promised_to, delivered_at, region)
    return {} if late is None else {"late": late, "promised_to": delivery.promised_to}
