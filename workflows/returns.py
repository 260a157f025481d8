"""ReturnWorkflow (``return-{id}``): goods coming back from a customer, to the money back.

The process, as a retail person tells it:

1. register the return: claim its units under the order's lock (``domain.returns`` rules: delivered,
   within the window, not more than what other returns left) and answer the caller (the
   ``registration`` update, sent with the start: a retried request finds the same return, and a
   return is never saved without its workflow);
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
   from ``domain.refunds`` over what was accepted (computed once, under the order's lock);
6. loyalty return: the written-off bonus for those units comes back, their accrual is taken back
   (still pending while the order's return window is open, so the balance never goes negative);
7. restock at the receiving location in the ledger, then tell the ERP (``Document_Return``);
8. tell the customer.

Exchange (``ReturnInput.exchange``, a branch of the same process): the replacement SKU is held in
the ledger as soon as the return is registered; once the store accepts the returned units, a
more expensive replacement waits for the difference to be paid (payment link), a cheaper one
refunds it, the same price costs nothing; then the replacement ships as a ``FulfillmentWorkflow``
child (assemble, courier, tracking, sale), and the swapped units are neither refunded nor given
back to loyalty (their discount and bonus stay with the replacement). Not paid in time, out of
stock, or the returned units not accepted: the exchange is dropped and it is a plain return.

Every side effect is keyed by the return's workflow id (POS task, courier number, refund,
loyalty return, restock keys, ERP document, message keys), so a retry never repeats it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.couriers import CourierActivities
    from activities.erp import ErpActivities
    from activities.loyalty import LoyaltyActivities
    from activities.notify import NotifyActivities
    from activities.payments import PaymentActivities
    from activities.pos import PosActivities
    from activities.returns import ReturnActivities
    from activities.stock import StockActivities
    from contracts.recovery import ParkedStep, RetryRequest
    from domain.messages import mask_phone
    from domain.money import format_money
    from contracts.order import (
        CourierEvent,
        DeliveryMethod,
        LineRequest,
        OrderLine,
        PaymentEvent,
        ShipmentUpdate,
        StoreEvent,
        TimelineEntry,
    )
    from contracts.returns import (
        ExchangeView,
        RefundClaim,
        RefundView,
        RestockItem,
        RestockRequest,
        ReturnInput,
        ReturnLine,
        ReturnMethod,
        ReturnSnapshot,
        ReturnStatus,
    )
    from domain.returns import exchange_difference, inspect, refund_bundle_lines
    from contracts.stock import Allocation, LocationInfo, reservation_key
    from contracts.steps import (
        BookedShipment,
        CaptureRequest,
        CustomerNotice,
        ErpMovement,
        LoyaltyReturnRequest,
        PosCancel,
        PosTaskRequest,
        RefundRequest,
        RegisterPayment,
        ReserveRequest,
        SettleRequest,
        ShipmentBookingRequest,
        StockViewRequest,
        StoreMessage,
    )
    from contracts.fulfillment import FulfillmentInput
    from workflows.fulfillment import FulfillmentWorkflow

from workflows.common import call, failure_message, local
from workflows.recovery import Recovery

STEP_FAILED = (ActivityError, ApplicationError)
#: carrier statuses (adapters.wire.couriers.ShipmentStatus values) meaning the carrier has the parcel
MOVING = {"handed_over", "in_transit", "arrived", "ready_for_pickup"}
CARRIER = {ReturnMethod.courier_pickup: "cdek", ReturnMethod.post: "post"}


@workflow.defn
class ReturnWorkflow:
    def __init__(self) -> None:
        self._recovery = Recovery()  # the refund, parked for an operator when the bank refuses it
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
        self._exchange: ExchangeView | None = None
        self._exchange_hold: Allocation | None = None
        self._exchange_from: LocationInfo | None = None
        self._payment_event: PaymentEvent | None = None
        self._registered: ReturnSnapshot | None = None
        self._refusal: ApplicationError | None = None

    # ------------------------------------------------------------------ the process
    @workflow.run
    async def run(self, inp: ReturnInput) -> ReturnStatus:
        self._inp = inp
        self._lines = list(inp.lines)
        self._created_at = inp.created_at or workflow.now()
        if not await self._register():
            return await self._finish()
        units = sum(l.qty for l in inp.lines)
        self._event("registered", f"Возврат по заказу {inp.order_id}: {units} шт., способ {inp.method.value}")
        await self._arrange()
        if inp.exchange is not None:
            await self._hold_replacement()
        if not await self._await_receipt():
            await self._drop_exchange("товары не поступили")
            await self._abandon()
            return await self._finish()
        await self._await_inspection()
        if any(l.rejected for l in self._lines):
            await self._send_back_rejected()
        if not any(l.accepted for l in self._lines):
            await self._drop_exchange("товары не приняты")
            self._status = ReturnStatus.rejected
            self._event("rejected", "Ни один товар не принят: возврат закрыт без возмещения")
            await self._save()
            return await self._finish()
        swapped = await self._settle_exchange()
        await self._refund_money(swapped)
        await self._return_bonus(swapped)
        await self._restock()
        await self._tell_erp()
        if swapped:
            await self._ship_replacement()
        refund = self._refund
        assert refund is not None
        self._status = ReturnStatus.completed
        self._event("completed", "Возврат завершён")
        await self._save()
        if refund.total:
            await self._notify("refunded", number=inp.order_id, amount=format_money(refund.total, inp.currency))
        return await self._finish()

    # 1. registration ------------------------------------------------------------------------------
    async def _register(self) -> bool:
        """Claim the units (or learn why not); the ``registration`` update answers with it."""
        inp = self._require_input()
        try:
            self._registered = await local(ReturnActivities.register_return, inp)
        except STEP_FAILED as err:
            cause = err if isinstance(err, ApplicationError) else err.cause
            if not isinstance(cause, ApplicationError):
                raise
            self._refusal = ApplicationError(cause.message, *cause.details, type=cause.type, non_retryable=True)
            self._status = ReturnStatus.refused
            return False
        self._lines = list(self._registered.lines)
        return True

    # 2. the way back ----------------------------------------------------------------------------
    async def _arrange(self) -> None:
        inp = self._require_input()
        loc = inp.location
        await call(PosActivities.create_pos_task, PosTaskRequest(
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
            self._booking = await call(CourierActivities.book_shipment, ShipmentBookingRequest(
                shipment_id=self._wf_id, carrier=carrier, from_location_id=loc.id, from_city=loc.city,
                address=inp.address, recipient=inp.customer, lines=self._order_lines(self._lines, "qty"),
                is_return=True))
            if inp.method == ReturnMethod.post:
                self._return_code = await call(ReturnActivities.post_return_code, self._booking)
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
                    polled = await call(CourierActivities.track_shipment, self._booking)
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
            await call(PosActivities.cancel_pos_task, PosCancel(task_id=self._task_id, location_id=inp.location.id,
                                                     reason="товары не поступили"))
        except STEP_FAILED as err:
            self._event("note", f"Задача магазина не отменена: {failure_message(err)}")
        if self._booking is not None and self._booking.carrier != "post":  # an easy return just lapses
            try:
                await call(CourierActivities.cancel_shipment, self._booking)
            except STEP_FAILED as err:
                self._event("note", f"Обратная отправка не отменена: {failure_message(err)}")
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
                await call(PosActivities.notify_store, StoreMessage(
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
                back = await call(CourierActivities.book_shipment, ShipmentBookingRequest(
                    shipment_id=f"{self._wf_id}-back", carrier=CARRIER[inp.method], from_location_id=inp.location.id,
                    from_city=inp.location.city, address=inp.address, recipient=inp.customer,
                    lines=self._order_lines(self._lines, "rejected")))
                self._back = back.tracking_number or back.external_id
                where = f"Мы отправили их обратно, трек {self._back}."
            except STEP_FAILED as err:
                where = "Мы свяжемся с вами, чтобы вернуть их."
                self._event("note", f"Отправка непринятых товаров не оформлена: {failure_message(err)}")
        self._event("rejected_lines", f"Не приняты: {reasons}. {where}")
        await self._save()
        await self._notify("return_rejected", reason=f"{reasons}. {where}")

    # 5-7. money, bonus, stock, ERP ------------------------------------------------------------------------
    def _kept(self, swapped: dict[int, int]) -> list[tuple[int, int]]:
        """Accepted units that are given back (money, bonus): all but those swapped in an exchange."""
        return [(l.pos_id, l.accepted - swapped.get(l.pos_id, 0)) for l in self._lines
                if l.accepted - swapped.get(l.pos_id, 0) > 0]

    async def _refund_money(self, swapped: dict[int, int]) -> None:
        inp = self._require_input()
        refund = await local(ReturnActivities.settle_return_refund, RefundClaim(
            return_id=inp.return_id, order_id=inp.order_id, accepted=self._kept(swapped),
            delivery_policy=inp.delivery_policy))
        self._refund = refund
        if self._exchange is not None and swapped and self._exchange.difference < 0 and inp.md_order:
            ex = inp.exchange
            assert ex is not None
            back = -self._exchange.difference
            await call(PaymentActivities.refund_payment, RefundRequest(
                md_order=inp.md_order, amount=back, idempotency_key=f"{self._wf_id}:exchange-refund",
                lines=[OrderLine(pos_id=ex.pos_id, sku=ex.sku, name=f"Разница при обмене: {ex.name}"[:100], qty=1,
                                 unit_price=back)]))
            self._event("exchange_refunded", f"Возвращена разница в цене {format_money(back, inp.currency)}")
        if refund.total > 0 and inp.md_order:
            request = RefundRequest(
                md_order=inp.md_order, amount=refund.total, idempotency_key=f"{self._wf_id}:refund",
                lines=refund_bundle_lines(self._lines, refund), delivery_amount=refund.delivery)
            # a refused refund parks for an operator (POST /v1/returns/{id}/retry) instead of failing the return;
            # the idempotency key makes the retry refund once
            await self._recovery.run("refund", lambda: call(PaymentActivities.refund_payment, request),
                                     on_park=self._refund_parked, on_resume=self._refund_resumed)
        self._refunded = True
        self._status = ReturnStatus.refunded
        delivery = f" и доставка {format_money(refund.delivery, inp.currency)}" if refund.delivery else ""
        self._event("refunded", f"Возвращено на карту {format_money(refund.total, inp.currency)}: товары "
                                f"{format_money(refund.money, inp.currency)}{delivery} (refund.do)",
                    amount=refund.total)
        await self._save()

    async def _return_bonus(self, swapped: dict[int, int]) -> None:
        inp = self._require_input()
        kept = self._kept(swapped)
        if not kept:
            return
        try:
            res = await call(LoyaltyActivities.return_bonus, LoyaltyReturnRequest(
                purchase_id=inp.order_id, return_id=self._wf_id, lines=kept))
        except STEP_FAILED as err:
            self._event("loyalty_failed", f"Программа лояльности не приняла возврат: {failure_message(err)}")
            return
        self._bonus_returned = res.bonus_returned
        self._accrual_reversed = res.accrual_reversed
        self._event("loyalty_returned", f"Бонусы: возвращено {format_money(res.bonus_returned)}, "
                                        f"отменено начисление {format_money(res.accrual_reversed)}")

    async def _restock(self) -> None:
        inp = self._require_input()
        units = await local(ReturnActivities.restock_return, RestockRequest(location_id=inp.location.id, items=[
            RestockItem(key=f"{self._wf_id}:{l.pos_id}", sku=l.sku, qty=l.accepted) for l in self._lines if l.accepted
        ]))
        self._event("restocked", f"На остаток {inp.location.id} возвращено {units} шт.", location_id=inp.location.id)

    async def _tell_erp(self) -> None:
        inp = self._require_input()
        await call(ErpActivities.post_return, ErpMovement(number=self._wf_id, location_id=inp.location.id,
                                              items=[(l.sku, l.accepted) for l in self._lines if l.accepted]))
        self._event("erp_returned", "Возврат проведён в ERP")

    # exchange ------------------------------------------------------------------------------------------------
    async def _hold_replacement(self) -> None:
        inp = self._require_input()
        ex = inp.exchange
        assert ex is not None
        line = next(l for l in self._lines if l.pos_id == ex.pos_id)
        self._exchange = ExchangeView(sku=ex.sku, qty=ex.qty, unit_price=ex.unit_price,
                                      difference=exchange_difference(line, ex))
        view = await local(StockActivities.load_stock_view, StockViewRequest(skus=[ex.sku]))
        places = sorted((a for a in view.available if a.sku == ex.sku and a.available >= ex.qty),
                        key=lambda a: (a.location_id != inp.location.id, -a.available, a.location_id))
        for a in places[:3]:  # stock may move between the look-up and the hold
            hold = Allocation(key=reservation_key(self._wf_id, ex.pos_id, a.location_id), sku=ex.sku,
                              location_id=a.location_id, qty=ex.qty)
            try:
                await local(StockActivities.reserve_stock, ReserveRequest(owner=self._wf_id, allocations=[hold]))
            except STEP_FAILED:
                continue
            self._exchange_hold = hold
            self._exchange_from = next(l for l in view.locations if l.id == a.location_id)
            self._exchange = dataclasses.replace(self._exchange, status="reserved")
            self._event("exchange_reserved", f"Замена {ex.sku} × {ex.qty} отложена в {a.location_id}",
                        difference=self._exchange.difference)
            await self._save()
            return
        self._exchange = dataclasses.replace(self._exchange, status="out_of_stock")
        self._event("exchange_out_of_stock", f"Замены {ex.sku} нет в наличии: оформим обычный возврат")
        await self._save()

    async def _drop_exchange(self, why: str, status: str = "declined") -> None:
        if self._exchange_hold is None or self._exchange is None:
            return
        await local(StockActivities.release_stock, SettleRequest(owner=self._wf_id, keys=[self._exchange_hold.key]))
        self._exchange_hold = None
        self._exchange = dataclasses.replace(self._exchange, status=status)
        self._event("exchange_dropped", f"Обмен отменён: {why}; резерв замены снят")

    async def _settle_exchange(self) -> dict[int, int]:
        """The units swapped ({pos_id: qty}) once the difference is settled; {} when no exchange."""
        inp = self._require_input()
        ex = inp.exchange
        if ex is None or self._exchange_hold is None or self._exchange is None:
            return {}
        line = next(l for l in self._lines if l.pos_id == ex.pos_id)
        if line.accepted < ex.qty:
            await self._drop_exchange("возвращаемый товар не принят")
            return {}
        diff = self._exchange.difference
        if diff > 0:
            reg = await call(PaymentActivities.register_payment, RegisterPayment(
                order_number=self._wf_id, amount=diff, currency=inp.currency,
                description=f"Доплата за обмен по возврату {inp.return_id}",
                lines=[OrderLine(pos_id=ex.pos_id, sku=ex.sku, name=f"Доплата за обмен: {ex.name}"[:100], qty=1,
                                 unit_price=diff)],
                phone=inp.customer.phone, email=inp.customer.email,
                session_timeout_secs=inp.payment_window_hours * 3600))
            self._exchange = dataclasses.replace(self._exchange, status="awaiting_payment", payment_url=reg.form_url)
            self._event("exchange_payment", f"Доплата {format_money(diff, inp.currency)}: ссылка отправлена",
                        md_order=reg.md_order)
            await self._save()
            await self._notify("extra_payment", number=inp.order_id, amount=format_money(diff, inp.currency),
                               payment_url=reg.form_url)
            try:
                await workflow.wait_condition(lambda: self._payment_event is not None,
                                              timeout=timedelta(hours=inp.payment_window_hours))
            except TimeoutError:
                pass
            event = self._payment_event
            if event is None or not event.success:
                await self._drop_exchange("доплата не поступила")
                return {}
            await call(PaymentActivities.capture_payment, CaptureRequest(md_order=reg.md_order, amount=diff,
                                                          idempotency_key=f"{self._wf_id}:exchange-capture"))
            self._exchange = dataclasses.replace(self._exchange, status="paid")
            self._event("exchange_paid", f"Доплата {format_money(diff, inp.currency)} получена")
        return {ex.pos_id: ex.qty}

    async def _ship_replacement(self) -> None:
        inp = self._require_input()
        ex, hold, src = inp.exchange, self._exchange_hold, self._exchange_from
        assert ex is not None and hold is not None and src is not None and inp.delivery is not None
        sid = f"fulfillment-{inp.order_id}-{inp.return_id}"
        self._exchange = dataclasses.replace(self._exchange or ExchangeView(ex.sku, ex.qty, ex.unit_price),
                                             status="shipping", order_id=inp.order_id)
        await self._save()
        carrier = inp.delivery.carrier or ("post" if inp.delivery.method == DeliveryMethod.post else "cdek")
        result = await workflow.execute_child_workflow(FulfillmentWorkflow.run, FulfillmentInput(
            order_id=inp.order_id, shipment_id=sid, n=1, location=src,
            lines=[OrderLine(pos_id=ex.pos_id, sku=ex.sku, name=ex.name, qty=ex.qty, unit_price=ex.unit_price)],
            reservation_keys=[hold.key], delivery=inp.delivery, customer=inp.customer, carrier=carrier,
            parent_id=self._wf_id, assembly_sla_minutes=src.assembly_sla_minutes or 120), id=sid)
        self._exchange = dataclasses.replace(self._exchange, status="delivered" if result.delivered else "not_delivered")
        self._event("exchange_delivered" if result.delivered else "exchange_not_delivered",
                    f"Замена {ex.sku}: {'доставлена' if result.delivered else 'не доставлена'}")

    # ------------------------------------------------------------------ messages from outside
    @workflow.update
    async def registration(self) -> ReturnSnapshot:
        """The caller's answer (sent with the start): the registered return, or why it was refused
        (``ReturnRefused``, details: HTTP status, code, field)."""
        await workflow.wait_condition(lambda: self._registered is not None or self._refusal is not None)
        if self._refusal is not None:
            raise self._refusal
        assert self._registered is not None
        return self._registered

    @workflow.signal
    def payment_event(self, event: PaymentEvent) -> None:
        if self._payment_event is None and event.operation in ("approved", "declinedByTimeout"):
            self._payment_event = event

    @workflow.signal
    def shipment_update(self, update: ShipmentUpdate) -> None:
        self._event(f"exchange_{update.status.value}", update.message, shipment_id=update.shipment_id)

    @workflow.signal
    def pos_event(self, event: StoreEvent) -> None:
        if event.task_id == self._task_id and not any(e.event_id and e.event_id == event.event_id
                                                      for e in self._store_events):
            self._store_events.append(event)

    @workflow.signal
    def courier_event(self, event: CourierEvent) -> None:
        self._courier_events.append(event)

    @workflow.update
    def retry(self, req: RetryRequest) -> bool:
        """An operator retries the parked refund (after fixing what the bank refused)."""
        self._event("retry_requested", f"Оператор {req.by} повторяет возврат денег"
                                       f"{': ' + req.note if req.note else ''}", by=req.by)
        return self._recovery.resume(req)

    @retry.validator
    def _validate_retry(self, req: RetryRequest) -> None:
        if self._recovery.parked is None:
            raise ApplicationError("nothing to retry: the return is not waiting on a refused step")
        if not req.by.strip():
            raise ApplicationError("by: say who retries")

    async def _refund_parked(self, parked: ParkedStep) -> None:
        self._event("refund_failed", f"Банк не провёл возврат: {parked.message}. Возврат ждёт оператора",
                    step=parked.step, error=parked.message, error_type=parked.error_type)
        await self._save()

    async def _refund_resumed(self, parked: ParkedStep, req: RetryRequest) -> None:
        await self._save()

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
            back_to_customer=self._back, exchange=self._exchange, timeline=list(self._timeline),
            currency=inp.currency,
        )

    async def _save(self) -> None:
        self._version += 1
        await local(ReturnActivities.save_return, self._snapshot())

    async def _finish(self) -> ReturnStatus:
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    async def _notify(self, event: str, **params: object) -> None:
        inp = self._require_input()
        await call(NotifyActivities.notify_customer, CustomerNotice(
            key=f"{self._wf_id}:{event}", phone=inp.customer.phone, email=inp.customer.email, event=event,
            params={"number": inp.return_id, **params}))
