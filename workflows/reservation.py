"""ReservationWorkflow (``reservation-{id}``): goods held at a store for a customer to collect.

Click & reserve starts it from the API; a click & collect order starts it as a child for the
at-store stage (the order already holds the goods in the ledger and pays or not online).
The process, as a store manager tells it:

1. hold the items in the stock ledger at the store (click & reserve; refused if the store
   lacks them);
2. put a "set aside" task on the store's POS and wait for "ready"; past the SLA remind the
   store, past it twice escalate (a POS message and a timeline entry);
3. tell the customer "ready for pickup until <date>" (SMS + e-mail) and keep the goods for
   the store's window (``pickup_window_days``, default 3), reminding the customer the day
   before it ends;
4. on the POS event ``issued``: what was taken becomes a sale (ledger + ERP), the rest is
   released and goes back to the floor; the till's payment is recorded (pay on pickup);
5. on expiry or cancel: stop the POS task, release the goods, ask the store to put them back,
   tell the customer.

Releasing happens exactly once whatever the order of expiry, cancel and pickup: the workflow
settles once (``_settled``), it stops the POS task *before* releasing (a task the store
already issued refuses the cancel, and the pickup wins), and the ledger's settle is keyed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.erp import ErpActivities
    from activities.notify import NotifyActivities
    from activities.pos import PosActivities
    from activities.reservations import ReservationActivities
    from activities.stock import StockActivities
    from domain.messages import mask_phone
    from domain.money import format_money
    from contracts.order import (
        CancelRequest,
        LineRequest,
        ShipmentState,
        ShipmentUpdate,
        StoreEvent,
        TimelineEntry,
    )
    from domain.pickup import hold_window, local_text, reminder_at, settle_plan, taken_portions
    from contracts.reservation import (
        ReservationInput,
        ReservationPlacement,
        ReservationResult,
        ReservationSnapshot,
        ReservationStatus,
        SettleResult,
        SettleTaken,
    )
    from contracts.steps import (
        CustomerNotice,
        ErpMovement,
        ErrorType,
        PosCancel,
        PosTaskRequest,
        ReserveRequest,
        StoreMessage,
    )
    from contracts.stock import Allocation, reservation_key

from workflows import search
from workflows.common import call, failure_message, failure_type, local, signal
from workflows.parents import ShipmentParent

STEP_FAILED = (ActivityError, ApplicationError)
#: a store that refused our cancel has issued the goods: its ``issued`` event is on its way
ISSUED_EVENT_GRACE = timedelta(hours=1)
READY_EVENTS = ("ready", "assembled")
#: a refused reservation waits this long for the API to read why (the ``placement`` update)
REFUSAL_KEPT_FOR = timedelta(minutes=2)


@workflow.defn
class ReservationWorkflow:
    def __init__(self) -> None:
        self._inp: ReservationInput | None = None
        self._status = ReservationStatus.reserving
        self._placement: ReservationPlacement | None = None
        self._placement_read = False
        self._timeline: list[TimelineEntry] = []
        self._events: list[StoreEvent] = []
        self._seen_event_ids: set[str] = set()
        self._cancel: CancelRequest | None = None
        self._held: list[Allocation] = []
        self._settled = False
        self._ready_at: datetime | None = None
        self._until: datetime | None = None
        self._taken: list[LineRequest] = []
        self._amount_taken = 0
        self._paid: int | None = None
        self._version = 0
        self._created_at: datetime | None = None

    # ------------------------------------------------------------------ the process
    @workflow.run
    async def run(self, inp: ReservationInput) -> ReservationResult:
        self._inp = inp
        self._created_at = inp.created_at or workflow.now()
        self._event("placed", f"Резерв в магазине {inp.store.id} ({inp.store.name}): "
                              f"{', '.join(f'{l.sku} × {l.qty}' for l in inp.lines)}")
        if not await self._hold():
            try:  # keep the refusal readable: the API asks for it right after starting us
                await workflow.wait_condition(lambda: self._placement_read, timeout=REFUSAL_KEPT_FOR)
            except asyncio.TimeoutError:
                pass
            await workflow.wait_condition(workflow.all_handlers_finished)
            refusal = self._placement
            assert refusal is not None  # _hold() refused with a reason
            return ReservationResult(status=self._status, reason=refusal.error_message or "")
        self._placement = ReservationPlacement(reservation_id=inp.reservation_id, status=self._status,
                                               amount=self._amount, currency=inp.currency)
        if inp.parent_id is None:
            await self._notify("reserved", store=inp.store.name)

        await self._set_aside()
        if self._issued() is None and self._cancel is None:
            await self._wait_for_ready()
        if self._issued() is None and self._cancel is None:
            await self._announce_ready()
            await self._wait_for_customer()
        result = await self._finish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    # 1. hold ------------------------------------------------------------------------------------
    async def _hold(self) -> bool:
        inp = self._require_input()
        if inp.ledger_owner is not None:  # click & collect: the order holds the goods already
            self._held = list(inp.held)
            self._status = ReservationStatus.setting_aside
            return True
        allocations = [Allocation(key=reservation_key(self._owner, l.pos_id, inp.store.id), sku=l.sku,
                                  location_id=inp.store.id, qty=l.qty) for l in inp.lines]
        try:
            await local(StockActivities.reserve_stock, ReserveRequest(owner=self._owner, allocations=allocations))
        except STEP_FAILED as err:
            missing = ", ".join(f"{l.sku} × {l.qty}" for l in inp.lines)
            self._status = ReservationStatus.rejected
            message = (f"store {inp.store.id} does not have enough stock to hold {missing}"
                       if failure_type(err) == ErrorType.OUT_OF_STOCK else failure_message(err))
            self._placement = ReservationPlacement(
                reservation_id=inp.reservation_id, status=self._status, error_code=failure_type(err) or "Refused",
                error_message=message)
            return False
        self._held = allocations
        self._status = ReservationStatus.setting_aside
        self._event("reserved", f"Товар зарезервирован в магазине {inp.store.id}: {format_money(self._amount)}")
        return True

    # 2. the store sets the goods aside ------------------------------------------------------------
    async def _set_aside(self) -> None:
        inp = self._require_input()
        await call(PosActivities.create_pos_task, PosTaskRequest(
            task_id=self._task_id, location_id=inp.store.id, kind="set_aside", order_id=self._number,
            lines=[LineRequest(sku=l.sku, qty=l.qty) for l in inp.lines], names={l.sku: l.name for l in inp.lines},
            due_at=workflow.now() + timedelta(minutes=inp.ready_sla_minutes),
            customer_name=inp.customer.name, phone_masked=mask_phone(inp.customer.phone),
            note=(f"Заказ {self._number}, оплачен онлайн" if inp.prepaid
                  else f"Резерв {self._number}, оплата на кассе при получении")))
        self._event("set_aside_requested", f"Магазин {inp.store.id} получил задание отложить товар "
                                           f"(срок {inp.ready_sla_minutes} мин)")
        await self._save()
        await self._report(ShipmentState.assembling, f"Магазин {inp.store.id} откладывает товар для выдачи")

    async def _wait_for_ready(self) -> None:
        inp = self._require_input()
        sla = timedelta(minutes=inp.ready_sla_minutes)
        overdue = 0
        while self._ready() is None and self._issued() is None and self._cancel is None:
            try:
                await workflow.wait_condition(
                    lambda: self._ready() is not None or self._issued() is not None or self._cancel is not None,
                    timeout=sla if overdue < 2 else None)
            except asyncio.TimeoutError:
                overdue += 1
                if overdue == 1:
                    text = f"Резерв {self._number}: отложите товар для клиента, срок прошёл"
                    self._event("store_reminder", f"Магазин {inp.store.id} не отложил товар за "
                                                  f"{inp.ready_sla_minutes} мин: напоминание на кассу", sla_breach=True)
                else:
                    text = f"Резерв {self._number}: товар не отложен за {2 * inp.ready_sla_minutes} мин, вопрос передан управляющему"
                    self._event("escalated", f"Магазин {inp.store.id} не отложил товар за {2 * inp.ready_sla_minutes} "
                                             "мин: эскалация управляющему", sla_breach=True)
                await call(PosActivities.notify_store, StoreMessage(message_id=f"{self._task_id}:overdue:{overdue}",
                                                        location_id=inp.store.id, task_id=self._task_id, text=text))
                await self._save()

    # 3. on the shelf -------------------------------------------------------------------------------
    async def _announce_ready(self) -> None:
        inp = self._require_input()
        self._ready_at = workflow.now()
        self._until = self._ready_at + hold_window(pickup_window_days=inp.pickup_window_days,
                                                   hold_minutes=inp.hold_minutes)
        self._status = ReservationStatus.ready
        until = local_text(self._until, inp.store.region)
        self._event("ready", f"Товар отложен в магазине {inp.store.id}, хранится до {until}")
        await self._save()
        await self._report(ShipmentState.ready_for_pickup, f"Готов к выдаче в магазине {inp.store.id} до {until}")
        await self._notify("ready", store=inp.store.name, until=until)

    async def _wait_for_customer(self) -> None:
        inp = self._require_input()
        assert self._ready_at is not None and self._until is not None
        remind = reminder_at(self._ready_at, self._until)
        if remind is not None and await self._wait_for_pickup_until(remind):
            until = local_text(self._until, inp.store.region)
            self._event("customer_reminder", f"Напоминание клиенту: товар ждёт до {until}")
            await self._notify("reminder", store=inp.store.name, until=until)
            await self._save()
        await self._wait_for_pickup_until(self._until)

    async def _wait_for_pickup_until(self, deadline: datetime) -> bool:
        """Wait for the pickup or a cancel until ``deadline``; True if the deadline came first."""
        remaining = deadline - workflow.now()
        if remaining <= timedelta(0):
            return self._issued() is None and self._cancel is None
        try:
            await workflow.wait_condition(lambda: self._issued() is not None or self._cancel is not None,
                                          timeout=remaining)
        except asyncio.TimeoutError:
            return True
        return False

    # 4-5. the end: collected, expired or cancelled -------------------------------------------------------
    async def _finish(self) -> ReservationResult:
        inp = self._require_input()
        issued = self._issued()
        if issued is None:
            ending = ReservationStatus.cancelled if self._cancel is not None else ReservationStatus.expired
            if await self._stop_pos_task(ending):
                return await self._release(ending)
            # the store issued the goods as we were closing: the customer has them, the pickup wins
            self._event("issued_while_closing", "Магазин уже выдал товар: резерв не снимается")
            await workflow.wait_condition(lambda: self._issued() is not None, timeout=ISSUED_EVENT_GRACE)
            issued = self._issued()
            if issued is None:  # the event never came: leave it to a person, release nothing twice
                return await self._release(ending)
        return await self._collect(issued, inp)

    async def _collect(self, issued: StoreEvent, inp: ReservationInput) -> ReservationResult:
        taken = issued.lines or [LineRequest(sku=l.sku, qty=l.qty) for l in inp.lines]
        took = taken_portions(inp.lines, taken)
        self._taken = [LineRequest(sku=l.sku, qty=l.qty) for l in took]
        self._amount_taken = sum(l.amount for l in took)
        self._paid = issued.paid_amount
        settled = await self._settle(settle_plan(self._held, self._taken))
        if settled.consumed:
            store_units: dict[str, int] = {}
            for key, take in settle_plan(self._held, self._taken):
                sku = next(a.sku for a in self._held if a.key == key)
                if take:
                    store_units[sku] = store_units.get(sku, 0) + take
            await call(ErpActivities.post_sale, ErpMovement(number=f"{self._owner}:sale", location_id=inp.store.id,
                                                items=sorted(store_units.items())))
        reserved_units = sum(l.qty for l in inp.lines)
        taken_units = sum(l.qty for l in self._taken)
        what = ", ".join(f"{l.sku} × {l.qty}" for l in self._taken)
        if taken_units < reserved_units:
            self._event("partially_collected", f"Клиент забрал {taken_units} из {reserved_units}: {what}; "
                                               f"остальное возвращено в продажу")
            await self._put_back(_rest(inp, self._taken), "клиент забрал не всё")
        else:
            self._event("collected", f"Товар выдан клиенту: {what}")
        if not inp.prepaid:
            paid = self._paid or 0
            self._event("paid_at_till", f"Оплачено на кассе {format_money(paid, inp.currency)} "
                                        f"из {format_money(self._amount_taken, inp.currency)}",
                        paid=paid, expected=self._amount_taken)
            if paid != self._amount_taken:
                self._event("payment_mismatch", f"Сумма на кассе ({format_money(paid)}) не равна сумме "
                                                f"выданного ({format_money(self._amount_taken)})")
        self._status = ReservationStatus.collected
        await self._save()
        await self._report(ShipmentState.delivered, f"Выдан клиенту в магазине {inp.store.id}: {what}")
        if inp.parent_id is None:
            await self._notify("collected")
        return ReservationResult(status=self._status, taken=self._taken, amount_taken=self._amount_taken,
                                 paid_amount=self._paid)

    async def _release(self, ending: ReservationStatus) -> ReservationResult:
        inp = self._require_input()
        released = await self._settle([(a.key, 0) for a in self._held])
        was_on_shelf = self._ready_at is not None
        if ending == ReservationStatus.expired:
            reason = "срок хранения истёк"
        else:
            reason = f"отменён ({self._cancel.by}): {self._cancel.reason}" if self._cancel else "отменён"
        self._event("released", f"Резерв снят ({reason}): {released.released} шт. возвращены в доступный остаток")
        if was_on_shelf:
            await self._put_back([LineRequest(sku=l.sku, qty=l.qty) for l in inp.lines], reason)
        self._status = ending
        self._event(ending.value, f"Резерв {self._number}: {reason}")
        await self._save()
        await self._report(ShipmentState.cancelled, f"Резерв в магазине {inp.store.id} снят: {reason}")
        if inp.parent_id is None:  # an order tells its customer itself
            if ending == ReservationStatus.expired:
                await self._notify("expired")
            else:
                await self._notify("cancelled", reason=f"Резерв снят: {reason}.")
        return ReservationResult(status=ending, reason=reason)

    async def _settle(self, plan: list[tuple[str, int]]) -> SettleResult:
        """The one place the held goods leave the reservation: sold or released, once."""
        if self._settled:
            return SettleResult(consumed=0, released=0)
        inp = self._require_input()
        owner = inp.ledger_owner or self._owner
        result = await local(ReservationActivities.settle_reservation, SettleTaken(owner=owner, taken=plan))
        self._settled = True
        return result

    async def _stop_pos_task(self, ending: ReservationStatus) -> bool:
        """Cancel the set-aside task so the store cannot hand it out any more. False if the store
        has already issued it (its refusal says so)."""
        inp = self._require_input()
        reason = "срок хранения истёк" if ending == ReservationStatus.expired else "резерв отменён"
        try:
            await call(PosActivities.cancel_pos_task, PosCancel(task_id=self._task_id, location_id=inp.store.id, reason=reason))
        except STEP_FAILED as err:
            if failure_type(err) == ErrorType.POS_REFUSED:
                return False
            raise
        return True

    async def _put_back(self, lines: list[LineRequest], reason: str) -> None:
        inp = self._require_input()
        if not lines:
            return
        names = {l.sku: l.name for l in inp.lines}
        await call(PosActivities.create_pos_task, PosTaskRequest(
            task_id=f"{self._owner}:put_back", location_id=inp.store.id, kind="put_back", order_id=self._number,
            lines=lines, names=names, customer_name=inp.customer.name, phone_masked=mask_phone(inp.customer.phone),
            note=f"Верните в зал: {reason}"))
        self._event("put_back", f"Магазин {inp.store.id} получил задание вернуть в зал: "
                                f"{', '.join(f'{l.sku} × {l.qty}' for l in lines)}")

    # ------------------------------------------------------------------ messages from outside
    @workflow.update
    async def placement(self) -> ReservationPlacement:
        """The API's synchronous answer: held (with the amount) or refused and why."""
        await workflow.wait_condition(lambda: self._placement is not None)
        assert self._placement is not None
        self._placement_read = True
        return self._placement

    @workflow.signal
    def pos_event(self, event: StoreEvent) -> None:
        if event.event_id and event.event_id in self._seen_event_ids:
            return
        if event.event_id:
            self._seen_event_ids.add(event.event_id)
        if event.task_id == self._task_id:
            self._events.append(event)
            if event.event == "shortage":
                self._event("shortage", f"Магазин сообщил о нехватке: {event.sku} × {event.missing_qty}",
                            sku=event.sku)

    @workflow.update
    async def cancel(self, req: CancelRequest) -> ReservationStatus:
        if self._cancel is None:
            self._cancel = req
            self._event("cancel_requested", f"Запрошена отмена ({req.by}): {req.reason}")
        await workflow.wait_condition(lambda: self._status.is_final)
        return self._status

    @cancel.validator
    def _validate_cancel(self, req: CancelRequest) -> None:
        if self._status.is_final:
            raise ApplicationError(f"reservation is already {self._status.value}")
        if self._issued() is not None:
            raise ApplicationError("the goods have been handed to the customer: cancel is no longer possible")
        if self._inp is not None and self._inp.parent_id is not None:
            raise ApplicationError(f"this is the pickup of order {self._inp.number}: cancel the order instead")
        if not req.reason.strip():
            raise ApplicationError("reason: give a reason for the cancellation")

    @workflow.signal
    def withdraw(self, req: CancelRequest) -> None:
        """The parent order was cancelled: end the reservation (ignored once the goods are issued)."""
        if self._cancel is None and not self._status.is_final:
            self._cancel = req
            self._event("cancel_requested", f"Заказ отменён ({req.by}): {req.reason}")

    @workflow.query
    def status(self) -> ReservationStatus:
        return self._status

    @workflow.query
    def snapshot(self) -> ReservationSnapshot:
        return self._snapshot()

    # ------------------------------------------------------------------ helpers
    @property
    def _owner(self) -> str:
        return workflow.info().workflow_id

    @property
    def _task_id(self) -> str:
        return f"{self._owner}:set_aside"

    @property
    def _number(self) -> str:
        inp = self._require_input()
        return inp.number or inp.reservation_id

    @property
    def _amount(self) -> int:
        return sum(l.amount for l in self._require_input().lines)

    def _require_input(self) -> ReservationInput:
        assert self._inp is not None
        return self._inp

    def _ready(self) -> StoreEvent | None:
        return next((e for e in self._events if e.event in READY_EVENTS), None)

    def _issued(self) -> StoreEvent | None:
        return next((e for e in self._events if e.event == "issued"), None)

    def _event(self, kind: str, message: str, **data: object) -> None:
        self._timeline.append(TimelineEntry(at=workflow.now(), kind=kind, message=message, data=dict(data)))

    def _snapshot(self) -> ReservationSnapshot:
        inp = self._require_input()
        return ReservationSnapshot(
            reservation_id=inp.reservation_id, number=self._number, status=self._status, channel=inp.channel,
            store_id=inp.store.id, customer=inp.customer, lines=inp.lines, amount=self._amount,
            currency=inp.currency, created_at=self._created_at or workflow.now(), updated_at=workflow.now(),
            version=self._version, timeline=list(self._timeline),
            order_id=inp.number if inp.parent_id else None, prepaid=inp.prepaid, ready_at=self._ready_at,
            until=self._until, taken=self._taken, amount_taken=self._amount_taken, paid_amount=self._paid,
        )

    async def _save(self) -> None:
        self._version += 1
        search.upsert(self._status.value, self._require_input().store.id)
        await local(ReservationActivities.save_reservation, self._snapshot())

    async def _notify(self, event: str, **params: object) -> None:
        inp = self._require_input()
        await call(NotifyActivities.notify_customer, CustomerNotice(
            key=f"{self._owner}:{event}", phone=inp.customer.phone, email=inp.customer.email, event=event,
            params={"number": self._number, **params}))

    async def _report(self, state: ShipmentState, message: str) -> None:
        inp = self._require_input()
        if inp.parent_id is None or inp.report_as is None:
            return
        await signal(inp.parent_id, ShipmentParent.shipment_update,
                     ShipmentUpdate(shipment_id=inp.report_as, status=state, message=message, at=workflow.now()))


def _rest(inp: ReservationInput, taken: list[LineRequest]) -> list[LineRequest]:
    took: dict[str, int] = {}
    for t in taken:
        took[t.sku] = took.get(t.sku, 0) + t.qty
    out = []
    for l in inp.lines:
        rest = l.qty - min(l.qty, took.get(l.sku, 0))
        took[l.sku] = max(took.get(l.sku, 0) - l.qty, 0)
        if rest > 0:
            out.append(LineRequest(sku=l.sku, qty=rest))
    return out
