"""The order's money at the bank (Sber-style two-stage payment, ``shared/reference/acquiring.md``).

An order can have several registrations (``OrderState.payments``): the hold for its total
(``registerPreAuth.do`` with orderNumber ``order-<id>``; after an operator's edit of an unpaid order,
``order-<id>~e<n>``), and payments of a difference when a paid order is made dearer (the bank cannot
raise a hold: ``order-<id>~<n>``). This helper registers them, waits for the bank's answer (its
callback, polling ``getOrderStatusExtended.do`` as a fallback), closes links (``decline.do``),
captures (``deposit.do``) and reverses (``reverse.do``), always with a key derived from the order,
so a retry never charges or releases twice.

An approval the bank sends after the order was cancelled is not dropped: the payment is marked
``late`` and its hold reversed at once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from contracts.order import OrderLine, OrderStatus, PaymentEvent, PaymentState
    from contracts.steps import CaptureRequest, ErrorType, RegisterPayment, ReverseRequest
    from domain.money import format_money

from workflows.common import STEP_FAILED, call, failure_message, failure_type
from workflows.order_state import OrderState, OrderStopped, Payment, Ports, Purpose, Undo, UndoKind

#: how often the bank is asked about a payment of the difference while no callback comes
DIFFERENCE_POLL = timedelta(minutes=5)
#: answers that settle a registration (others, e.g. ``deposited``, only go to the timeline)
ANSWERS = ("approved", "declinedByTimeout")


class Payments:
    def __init__(self, state: OrderState, ports: Ports) -> None:
        self.state, self.ports = state, ports

    # ------------------------------------------------------------------ the hold for the total
    async def register(self, order_number: str | None = None) -> Payment:
        """A payment link for the order's total, with a fresh payment window; a cancellation closes it."""
        st, inp = self.state, self.state.inp
        reg = await call(PaymentActivities.register_payment, RegisterPayment(
            order_number=order_number or st.wf_id, amount=st.totals.total, currency=inp.currency,
            description=f"Заказ {inp.order_id}", lines=st.lines, delivery_amount=st.totals.delivery,
            phone=inp.customer.phone, email=inp.customer.email,
            session_timeout_secs=inp.payment_window_minutes * 60))
        payment = Payment(md_order=reg.md_order, order_number=order_number or st.wf_id, amount=st.totals.total,
                          form_url=reg.form_url)
        st.payments.append(payment)
        st.payment_deadline = workflow.now() + timedelta(minutes=inp.payment_window_minutes)
        if not any(u.kind == UndoKind.close_payment_link for u in st.undo):
            st.undo.append(Undo(UndoKind.close_payment_link))
        return payment

    async def wait_for_payment(self) -> None:
        """Step 4: the bank's answer within the payment window (an edit may open a new one), polling
        the bank while no callback comes and once more at the end. Raises :class:`OrderStopped` when
        the window passes, the bank declines or a cancel comes first."""
        st, inp = self.state, self.state.inp
        if st.pay_on_pickup:  # click & collect paid at the till: nothing to wait for online
            return
        poll = timedelta(minutes=inp.payment_poll_minutes)

        def answered() -> bool:
            main = st.main_payment
            return st.cancel is not None or (main is not None and main.answer is not None)

        while not answered():
            assert st.payment_deadline is not None
            remaining = st.payment_deadline - workflow.now()
            if remaining <= timedelta(0):
                break
            if not await self.ports.wait(answered, timeout=min(poll, remaining)) and not answered():
                await self.poll(self._main())
        if not answered():
            await self.poll(self._main())  # the customer may have paid in the last second
        main = self._main()
        if main.answer is not None and main.answer.success:
            self._held(main)
            st.status = OrderStatus.paid
            st.note("paid", f"Оплата {format_money(st.totals.total, inp.currency)} удержана банком")
            await self.ports.save()
            await self.ports.notify("paid")
            return  # a cancel that came with the approval is taken by the next step: the hold is reversed
        if st.cancel is not None:
            raise OrderStopped(f"Заказ отменён до оплаты: {st.cancel.reason}", "cancelled")
        if main.answer is not None:
            main.state = PaymentState.declined
            raise OrderStopped("Банк отклонил оплату", "payment_declined")
        raise OrderStopped(f"Оплата не поступила за {inp.payment_window_minutes} мин", "payment_expired")

    def _held(self, payment: Payment) -> None:
        st = self.state
        payment.state, payment.held = PaymentState.held, payment.amount
        st.undo = [u for u in st.undo if u.kind != UndoKind.close_payment_link]
        st.undo.append(Undo(UndoKind.reverse_payment, payment.md_order))

    def _main(self) -> Payment:
        main = self.state.main_payment
        assert main is not None, "a card order registers its payment at placement"
        return main

    # ------------------------------------------------------------------ a paid order made dearer
    async def register_difference(self, amount: int, item: str) -> Payment:
        """A link for ``amount`` more (``order-<id>~<n>``), sent to the customer by the caller."""
        st, inp = self.state, self.state.inp
        n = len(st.differences) + 2
        reg = await call(PaymentActivities.register_payment, RegisterPayment(
            order_number=f"{st.wf_id}~{n}", amount=amount, currency=inp.currency,
            description=f"Доплата по заказу {inp.order_id}",
            lines=[OrderLine(pos_id=900 + n, sku="SURCHARGE", name=item, qty=1, unit_price=amount)],
            phone=inp.customer.phone, email=inp.customer.email,
            session_timeout_secs=inp.payment_window_minutes * 60))
        payment = Payment(md_order=reg.md_order, order_number=f"{st.wf_id}~{n}", amount=amount, form_url=reg.form_url,
                          purpose=Purpose.difference, n=n)
        st.payments.append(payment)
        st.undo.append(Undo(UndoKind.close_difference_link, payment.md_order))
        st.note("extra_payment_registered", f"Доплата {format_money(amount)}: ссылка отправлена клиенту",
                md_order=reg.md_order, amount=amount)
        return payment

    async def wait_for_difference(self, payment: Payment) -> None:
        """Until the bank answers for ``payment`` (callback, or polled), the order is cancelled, or
        the payment window passes (``payment.answer`` stays None)."""
        st = self.state
        deadline = workflow.now() + timedelta(minutes=st.inp.payment_window_minutes)

        def done() -> bool:
            return payment.answer is not None or st.cancel is not None

        while not done() and workflow.now() < deadline:
            if not await self.ports.wait(done, timeout=min(DIFFERENCE_POLL, deadline - workflow.now())):
                await self.poll(payment, limit=None)

    def difference_held(self, payment: Payment) -> None:
        st = self.state
        payment.state, payment.held = PaymentState.held, payment.amount
        st.undo = [u for u in st.undo if not (u.kind == UndoKind.close_difference_link and u.md_order == payment.md_order)]
        st.undo.append(Undo(UndoKind.reverse_difference, payment.md_order))
        self.state.note("extra_payment_held", f"Доплата {format_money(payment.amount)} удержана банком")

    async def drop_difference(self, payment: Payment) -> None:
        """Close a link for the difference nobody paid; if it was paid meanwhile, it counts as paid."""
        try:
            await self.close(payment)
        except STEP_FAILED as err:
            if failure_type(err) != ErrorType.ALREADY_PAID:
                raise
            payment.answer = PaymentEvent(md_order=payment.md_order, operation="approved", success=True)

    # ------------------------------------------------------------------ the bank's answers
    async def on_answer(self, event: PaymentEvent) -> None:
        """A bank callback: the first settling answer of a registration is kept; an approval after
        the order was cancelled is reversed at once (the customer paid a link we could not close)."""
        st = self.state
        payment = st.payment(event.md_order)
        verdict = "успех" if event.success else "отказ"
        if payment is not None and payment.closed_by_edit:
            st.note("payment_callback", f"Банк (закрытая ссылка): {event.operation}", md_order=event.md_order)
            return
        label = "Банк (доплата)" if payment is not None and payment.purpose == Purpose.difference else "Банк"
        st.note("payment_callback", f"{label}: {event.operation}, {verdict}", md_order=event.md_order)
        if payment is None:
            return
        if payment.answer is None and event.operation in ANSWERS:
            payment.answer = event
        late = st.status in (OrderStatus.cancelled, OrderStatus.rejected)
        if late and event.operation == "approved" and event.success and payment.state not in (
                PaymentState.reversed, PaymentState.captured):
            payment.late = True
            st.note("late_payment", f"Банк подтвердил оплату после отмены заказа (mdOrder {payment.md_order}): "
                                    "удержание снимается", md_order=payment.md_order)
            payment.held = payment.held or (event.amount or payment.amount)
            await self.reverse(payment)
            await self.ports.save()

    async def poll(self, payment: Payment, limit: timedelta | None = timedelta(minutes=1)) -> None:
        """Ask the bank (``getOrderStatusExtended.do``) when its callback is late."""
        if payment.answer is not None:
            return
        try:
            if limit is None:
                st = await call(PaymentActivities.payment_status, payment.md_order)
            else:
                st = await call(PaymentActivities.payment_status, payment.md_order, schedule_to_close=limit)
        except STEP_FAILED as err:  # the bank does not know the order (yet): wait for the callback
            self.state.note("payment_poll_failed", f"Банк не ответил на запрос статуса: {failure_message(err)}")
            return
        if st.state in (PaymentState.held, PaymentState.captured):
            payment.answer = PaymentEvent(md_order=payment.md_order, operation="approved", success=True,
                                          amount=st.approved)
            if payment.purpose == Purpose.order:
                self.state.note("payment_polled", "Банк подтвердил удержание по запросу статуса (callback не пришёл)")
        elif st.state == PaymentState.declined:
            payment.answer = PaymentEvent(md_order=payment.md_order, operation="approved", success=False)

    # ------------------------------------------------------------------ closing, reversing, capturing
    async def close(self, payment: Payment) -> None:
        """``decline.do``: the link stops working. Raises the step's failure (``AlreadyPaid`` when the
        customer has just paid: the caller decides)."""
        await call(PaymentActivities.decline_payment, payment.md_order)
        payment.state = PaymentState.declined

    async def close_for_good(self, payment: Payment) -> None:
        """A cancelled order's registration: an open link is closed (paid meanwhile: the hold is
        reversed), a hold is reversed; a link the bank will not close goes to the timeline."""
        if payment.state == PaymentState.held:
            await self.reverse(payment)
            return
        if payment.state != PaymentState.registered:
            return
        try:
            await self.close(payment)
        except STEP_FAILED as err:
            if failure_type(err) == ErrorType.ALREADY_PAID:
                payment.held = payment.amount
                await self.reverse(payment)
                return
            self.state.note("payment_link_open", f"Ссылка на оплату не закрыта: {failure_message(err)}")

    async def reverse(self, payment: Payment) -> None:
        if payment.state == PaymentState.reversed:
            return
        key = f"{self.state.wf_id}~{payment.n}:reverse" if payment.purpose == Purpose.difference else \
            f"{self.state.wf_id}:reverse"
        await call(PaymentActivities.reverse_payment, ReverseRequest(md_order=payment.md_order, idempotency_key=key))
        payment.state, payment.held = PaymentState.reversed, 0

    async def capture(self) -> None:
        """Step 6: the shipped total, from the main hold first (``deposit.do`` of less than the hold
        releases the rest), then from the payments of the difference; unneeded ones are reversed."""
        st = self.state
        main = st.main_payment
        if main is None:  # paid at the store's till (on_pickup): nothing to capture
            return
        take = min(st.totals.total, main.held or st.totals.total)
        await call(PaymentActivities.capture_payment, CaptureRequest(
            md_order=main.md_order, amount=take, idempotency_key=f"{st.wf_id}:capture"))
        main.state, main.captured = PaymentState.captured, take
        rest = st.totals.total - take
        for extra in st.differences:
            if extra.state != PaymentState.held:
                continue
            part = min(rest, extra.amount)
            if part > 0:
                await call(PaymentActivities.capture_payment, CaptureRequest(
                    md_order=extra.md_order, amount=part, idempotency_key=f"{st.wf_id}~{extra.n}:capture"))
                extra.state, extra.captured = PaymentState.captured, part
                rest -= part
                st.note("captured", f"Списано {format_money(part)} по доплате (deposit.do)", md_order=extra.md_order)
            else:
                await self.reverse(extra)
        st.note("captured", f"Списано {format_money(st.totals.total, st.inp.currency)} (deposit.do)")
