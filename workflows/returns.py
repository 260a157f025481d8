"""ReturnWorkflow (``return-{id}``): goods coming back from a customer, to the money back.

The process, as a retail person tells it:

1. register the return (the API checked and claimed the units under the order's lock);
2. arrange the way back: a POS ``receive_return`` task at the receiving store; for a courier
   pickup a CDEK return shipment (``is_return``), for the post an "easy return" with the code the
   customer shows at any post office;
3. wait for the parcel: the store reports ``received``, or the carrier reports it delivered to
   the location (CDEK webhooks as signals, polling as a fallback, the only way for the post).
   Nothing handed to a carrier or the store within ``receipt_days``: close as abandoned and tell
   the customer (the units become returnable again);
4. the store inspects: accepted / rejected per line (POS event ``inspected``); rejected goods go
   back to the customer (kept at the store's counter, or shipped back);
5. refund through acquiring: ``refund.do`` with the refunded items' ``orderBundle``, the amount
   from ``models.refunds`` over what was accepted (computed once, under the order's lock);
6. loyalty return: the written-off bonus for those units comes back, their accrual is taken back
   (still pending while the order's return window is open, so the balance never goes negative);
7. restock at the receiving location in the ledger, then tell the ERP (``Document_Return``);
8. tell the customer.

Every side effect is keyed by the return's workflow id (POS task, courier number, refund,
loyalty return, restock keys, ERP document, message keys), so a retry never repeats it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.messages import mask_phone
    from models.money import format_money
    from models.order import CourierEvent, LineRequest, OrderLine, StoreEvent, TimelineEntry
    from models.returns import (
        RefundClaim,
        RefundView,
        RestockItem,
        RestockRequest,
        ReturnInput,
        ReturnLine,
        ReturnMethod,
        ReturnSnapshot,
        ReturnStatus,
        inspect,
        refund_bundle_lines,
    )
    from models.steps import (
        BookedShipment,
        CustomerNotice,
        ErpMovement,
        LoyaltyReturnRequest,
        LoyaltyReturnResult,
        PosCancel,
        PosTaskRequest,
        RefundRequest,
        ShipmentBookingRequest,
        StoreMessage,
        TrackingResult,
    )

from workflows.common import call, local

STEP_FAILED = (ActivityError, ApplicationError)
#: carrier statuses (models.couriers.ShipmentStatus values) meaning the carrier has the parcel
MOVING = {"handed_over", "in_transit", "arrived", "ready_for_pickup"}
CARRIER = {ReturnMethod.courier_pickup: "cdek", ReturnMethod.post: "post"}


@workflow.defn
class ReturnWorkflow:
    def __init__(self) -> None:
        self._inp: ReturnInput | None = None
        self._status = ReturnStatus.registered
        self._lines: list[ReturnLine] = []
        self._timeline: list[TimelineEntry] = []
        self._store_events: list[StoreEvent] = []
        self._courier_events: list[CourierEvent] = []
        self._version = 0
        self._created_at: datetime | None = None
        self._booking: BookedShipment | None = None
        self._return_code: str | None = None
        self._refund: RefundView | None = None
        self._refunded = False
        self._bonus_returned = 0
        self._accrual_reversed = 0
        self._back: str | None = None

    # ------------------------------------------------------------------ the process
    @workflow.run
    async def run(self, inp: ReturnInput) -> ReturnStatus:
        self._inp = inp
        self._lines = list(inp.lines)
        self._created_at = inp.created_at or workflow.now()
        units = sum(l.qty for l in inp.lines)
        self._event("registered", f"Возврат по заказу {inp.order_id}: {units} шт., способ {inp.method.value}")
        await self._arrange()
        if not await self._await_receipt():
            await self._abandon()
            return await self._finish()
        await self._await_inspection()
        if any(l.rejected for l in self._lines):
            await self._send_back_rejected()
        if not any(l.accepted for l in self._lines):
            self._status = ReturnStatus.rejected
            self._event("rejected", "Ни один товар не принят: возврат закрыт без возмещения")
            await self._save()
            return await self._finish()
        await self._refund_money()
        await self._return_bonus()
        await self._restock()
        await self._tell_erp()
        refund = self._refund
        assert refund is not None
        self._status = ReturnStatus.completed
        self._event("completed", "Возврат завершён")
        await self._save()
        await self._notify("refunded", number=inp.order_id, amount=format_money(refund.total, inp.currency))
        return await self._finish()

    # 2. the way back ----------------------------------------------------------------------------
    async def _arrange(self) -> None:
        inp = self._require_input()
        loc = inp.location
        await call("create_pos_task", PosTaskRequest(
            task_id=self._task_id, location_id=loc.id, kind="receive_return", order_id=inp.order_id,
            lines=[LineRequest(sku=l.sku, qty=l.qty) for l in self._lines], names={l.sku: l.name for l in self._lines},
            due_at=workflow.now() + timedelta(days=inp.receipt_days), customer_name=inp.customer.name,
            phone_masked=mask_phone(inp.customer.phone),
            note=f"Возврат {inp.return_id} по заказу {inp.order_id}"))
        days = inp.receipt_days
        if inp.method == ReturnMethod.in_store:
            instructions = f"Принесите товары в магазин «{loc.name}» ({loc.city}) в течение {days} дн."
        else:
            assert inp.address is not None, "the API gives an address for a courier or post return"
            carrier = CARRIER[inp.method]
            self._booking = await call("book_shipment", ShipmentBookingRequest(
                shipment_id=self._wf_id, carrier=carrier, from_location_id=loc.id, from_city=loc.city,
                address=inp.address, recipient=inp.customer, lines=self._order_lines(self._lines, "qty"),
                is_return=True), result_type=BookedShipment)
            if inp.method == ReturnMethod.post:
                self._return_code = await call("post_return_code", self._booking, result_type=str)
                instructions = (f"Отнесите посылку в любое отделение Почты России в течение {days} дн. "
                                f"и назовите код возврата {self._return_code}.")
            else:
                instructions = (f"Курьер СДЭК заберёт посылку по адресу {inp.address.city}, {inp.address.line}; "
                                f"трек {self._booking.tracking_number or self._booking.external_id}.")
            self._event("booked", f"Обратная отправка {carrier}: трек {self._booking.tracking_number}",
                        carrier=carrier, tracking=self._booking.tracking_number, return_code=self._return_code)
        self._status = ReturnStatus.awaiting_goods
        self._event("arranged", instructions, location_id=loc.id)
        await self._save()
        await self._notify("return_registered", instructions=instructions)

    # 3. the parcel ---------------------------------------------------------------------------------
    async def _await_receipt(self) -> bool:
        inp = self._require_input()
        deadline = workflow.now() + timedelta(days=inp.receipt_days)
        poll = timedelta(hours=inp.poll_hours)
        seen = 0
        while not self._store_event("received"):
            moving = self._status == ReturnStatus.in_transit
            remaining = deadline - workflow.now()
            if not moving and remaining <= timedelta(0):
                return False
            timeout = remaining if self._booking is None else (poll if moving else min(poll, remaining))
            try:
                await workflow.wait_condition(
                    lambda: self._store_event("received") is not None or len(self._courier_events) > seen,
                    timeout=timeout)
            except TimeoutError:
                if self._booking is not None:
                    polled = await call("track_shipment", self._booking, result_type=TrackingResult)
                    self._courier_events.append(CourierEvent(status=polled.status, code=polled.code, at=polled.at,
                                                             city=polled.city))
            while seen < len(self._courier_events):
                event = self._courier_events[seen]
                seen += 1
                if event.status == "delivered":
                    self._event("parcel_delivered", f"Перевозчик доставил возврат в {inp.location.id}")
                    return await self._received()
                if event.status in MOVING and self._status != ReturnStatus.in_transit:
                    self._status = ReturnStatus.in_transit
                    self._event("in_transit", f"Перевозчик принял посылку: {event.code or event.status}")
                    await self._save()
        return await self._received()

    async def _received(self) -> bool:
        self._status = ReturnStatus.received
        self._event("received", f"Товары получены в {self._require_input().location.id}, ждут проверки")
        await self._save()
        return True

    async def _abandon(self) -> None:
        inp = self._require_input()
        try:
            await call("cancel_pos_task", PosCancel(task_id=self._task_id, location_id=inp.location.id,
                                                     reason="товары не поступили"))
        except STEP_FAILED as err:
            self._event("note", f"Задача магазина не отменена: {_message(err)}")
        if self._booking is not None and self._booking.carrier != "post":  # an easy return just lapses
            try:
                await call("cancel_shipment", self._booking)
            except STEP_FAILED as err:
                self._event("note", f"Обратная отправка не отменена: {_message(err)}")
        self._status = ReturnStatus.abandoned
        self._event("abandoned", f"Товары не поступили за {inp.receipt_days} дн.: возврат закрыт")
        await self._save()
        await self._notify("return_abandoned")

    # 4. inspection -------------------------------------------------------------------------------------
    async def _await_inspection(self) -> None:
        inp = self._require_input()
        reminders = 0
        while self._store_event("inspected") is None:
            try:
                await workflow.wait_condition(lambda: self._store_event("inspected") is not None,
                                              timeout=timedelta(hours=inp.inspection_reminder_hours))
            except TimeoutError:
                reminders += 1
                await call("notify_store", StoreMessage(
                    message_id=f"{self._task_id}:reminder:{reminders}", location_id=inp.location.id,
                    task_id=self._task_id, text=f"Возврат {inp.return_id} ждёт проверки"))
        event = self._store_event("inspected")
        assert event is not None
        self._lines = inspect(self._lines, event.accepted, event.rejected)
        accepted = sum(l.accepted for l in self._lines)
        rejected = sum(l.rejected for l in self._lines)
        self._status = ReturnStatus.inspected
        self._event("inspected", f"Проверка: принято {accepted} шт., не принято {rejected} шт.")
        await self._save()

    async def _send_back_rejected(self) -> None:
        inp = self._require_input()
        reasons = "; ".join(f"{l.name} × {l.rejected}" + (f" ({l.reject_reason})" if l.reject_reason else "")
                            for l in self._lines if l.rejected)
        if inp.method == ReturnMethod.in_store:
            where = f"Заберите их в магазине «{inp.location.name}»."
        else:
            assert inp.address is not None
            try:
                back = await call("book_shipment", ShipmentBookingRequest(
                    shipment_id=f"{self._wf_id}-back", carrier=CARRIER[inp.method], from_location_id=inp.location.id,
                    from_city=inp.location.city, address=inp.address, recipient=inp.customer,
                    lines=self._order_lines(self._lines, "rejected")), result_type=BookedShipment)
                self._back = back.tracking_number or back.external_id
                where = f"Мы отправили их обратно, трек {self._back}."
            except STEP_FAILED as err:
                where = "Мы свяжемся с вами, чтобы вернуть их."
                self._event("note", f"Отправка непринятых товаров не оформлена: {_message(err)}")
        self._event("rejected_lines", f"Не приняты: {reasons}. {where}")
        await self._save()
        await self._notify("return_rejected", reason=f"{reasons}. {where}")

    # 5-7. money, bonus, stock, ERP ------------------------------------------------------------------------
    async def _refund_money(self) -> None:
        inp = self._require_input()
        refund = await local("settle_return_refund", RefundClaim(
            return_id=self._wf_id.removeprefix("return-"), order_id=inp.order_id,
            accepted=[(l.pos_id, l.accepted) for l in self._lines if l.accepted],
            delivery_policy=inp.delivery_policy), result_type=RefundView)
        self._refund = refund
        if refund.total > 0 and inp.md_order:
            try:
                await call("refund_payment", RefundRequest(
                    md_order=inp.md_order, amount=refund.total, idempotency_key=f"{self._wf_id}:refund",
                    lines=refund_bundle_lines(self._lines, refund), delivery_amount=refund.delivery))
            except STEP_FAILED as err:
                self._event("refund_failed", f"Банк не провёл возврат: {_message(err)}")
                await self._save()
                raise
        self._refunded = True
        self._status = ReturnStatus.refunded
        delivery = f" и доставка {format_money(refund.delivery, inp.currency)}" if refund.delivery else ""
        self._event("refunded", f"Возвращено на карту {format_money(refund.total, inp.currency)}: товары "
                                f"{format_money(refund.money, inp.currency)}{delivery} (refund.do)",
                    amount=refund.total)
        await self._save()

    async def _return_bonus(self) -> None:
        inp = self._require_input()
        try:
            res = await call("return_bonus", LoyaltyReturnRequest(
                purchase_id=inp.order_id, return_id=self._wf_id,
                lines=[(l.pos_id, l.accepted) for l in self._lines if l.accepted]), result_type=LoyaltyReturnResult)
        except STEP_FAILED as err:
            self._event("loyalty_failed", f"Программа лояльности не приняла возврат: {_message(err)}")
            return
        self._bonus_returned = res.bonus_returned
        self._accrual_reversed = res.accrual_reversed
        self._event("loyalty_returned", f"Бонусы: возвращено {format_money(res.bonus_returned)}, "
                                        f"отменено начисление {format_money(res.accrual_reversed)}")

    async def _restock(self) -> None:
        inp = self._require_input()
        units = await local("restock_return", RestockRequest(location_id=inp.location.id, items=[
            RestockItem(key=f"{self._wf_id}:{l.pos_id}", sku=l.sku, qty=l.accepted) for l in self._lines if l.accepted
        ]), result_type=int)
        self._event("restocked", f"На остаток {inp.location.id} возвращено {units} шт.", location_id=inp.location.id)

    async def _tell_erp(self) -> None:
        inp = self._require_input()
        await call("post_return", ErpMovement(number=self._wf_id, location_id=inp.location.id,
                                              items=[(l.sku, l.accepted) for l in self._lines if l.accepted]))
        self._event("erp_returned", "Возврат проведён в ERP")

    # ------------------------------------------------------------------ messages from outside
    @workflow.signal
    def pos_event(self, event: StoreEvent) -> None:
        if event.task_id == self._task_id and not any(e.event_id and e.event_id == event.event_id
                                                      for e in self._store_events):
            self._store_events.append(event)

    @workflow.signal
    def courier_event(self, event: CourierEvent) -> None:
        self._courier_events.append(event)

    @workflow.query
    def status(self) -> ReturnStatus:
        return self._status

    @workflow.query
    def snapshot(self) -> ReturnSnapshot:
        return self._snapshot()

    # ------------------------------------------------------------------ helpers
    @property
    def _wf_id(self) -> str:
        return workflow.info().workflow_id

    @property
    def _task_id(self) -> str:
        return f"{self._wf_id}:receive"

    def _require_input(self) -> ReturnInput:
        assert self._inp is not None
        return self._inp

    def _store_event(self, kind: str) -> StoreEvent | None:
        return next((e for e in self._store_events if e.event == kind), None)

    @staticmethod
    def _order_lines(lines: list[ReturnLine], qty_field: str) -> list[OrderLine]:
        return [OrderLine(pos_id=l.pos_id, sku=l.sku, name=l.name, qty=getattr(l, qty_field), unit_price=l.unit_price)
                for l in lines if getattr(l, qty_field)]

    def _event(self, kind: str, message: str, **data: object) -> None:
        self._timeline.append(TimelineEntry(at=workflow.now(), kind=kind, message=message, data=dict(data)))

    def _snapshot(self) -> ReturnSnapshot:
        inp = self._require_input()
        b = self._booking
        return ReturnSnapshot(
            return_id=inp.return_id, order_id=inp.order_id, status=self._status, method=inp.method,
            location_id=inp.location.id, lines=list(self._lines), created_at=self._created_at or workflow.now(),
            updated_at=workflow.now(), version=self._version, carrier=b.carrier if b else None,
            tracking_number=b.tracking_number if b else None, external_id=b.external_id if b else None,
            return_code=self._return_code, refund=self._refund, refunded=self._refunded,
            bonus_returned=self._bonus_returned, accrual_reversed=self._accrual_reversed,
            back_to_customer=self._back, timeline=list(self._timeline), currency=inp.currency,
        )

    async def _save(self) -> None:
        self._version += 1
        await local("save_return", self._snapshot())

    async def _finish(self) -> ReturnStatus:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    async def _notify(self, event: str, **params: object) -> None:
        inp = self._require_input()
        await call("notify_customer", CustomerNotice(
            key=f"{self._wf_id}:{event}", phone=inp.customer.phone, email=inp.customer.email, event=event,
            params={"number": inp.return_id, **params}))


def _message(err: BaseException) -> str:
    if isinstance(err, ApplicationError):
        return err.message
    cause = getattr(err, "cause", None)
    return str(cause.message if isinstance(cause, ApplicationError) else (cause or err))
