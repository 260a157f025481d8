"""OrderWorkflow (``order-{id}``): one customer order from placement to the end of its return window.

The process, as a retail person tells it:

1. price the cart through loyalty (discounts, bonus write-off);
2. choose where the goods ship from and hold them in the stock ledger
   (re-sourcing once if stock moved meanwhile);
3. hold the bonus write-off and the card payment (``registerPreAuth.do``), tell the storefront
   the totals and the payment link;
4. wait for the bank's callback within the payment window (polling the bank as a fallback);
   on expiry or decline undo everything and cancel;
5. export the order to the ERP, then one ``FulfillmentWorkflow`` per shipment assembles it at
   its store and hands it to the courier;
6. once everything is delivered, capture the final amount and commit the loyalty purchase
   (accrual), then complete;
7. keep the accrued bonus pending until the return window closes, then make it spendable.

Cancellation before hand-over runs the saga: each step done registers its undo, and undoing
runs them in reverse.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from models.money import format_money
    from models.order import (
        AddressChange,
        CancelRequest,
        Delivery,
        DeliveryMethod,
        LineRequest,
        OrderInput,
        OrderLine,
        OrderSnapshot,
        OrderStatus,
        PaymentEvent,
        PaymentState,
        PaymentView,
        Placement,
        ShipmentState,
        ShipmentUpdate,
        ShipmentView,
        TimelineEntry,
        Totals,
        fulfillment_workflow_id,
        line_portion,
    )
    from models.sourcing import SourcingPlan
    from models.steps import (
        CaptureRequest,
        CustomerNotice,
        ErpOrderExport,
        ErrorType,
        LoyaltyBegin,
        LoyaltyCommit,
        LoyaltyRef,
        PaymentRegistered,
        PaymentStatusResult,
        PriceRequest,
        Priced,
        RegisterPayment,
        ReserveRequest,
        ReverseRequest,
        SettleRequest,
        StockViewRequest,
    )
    from models.stock import Allocation, LocationInfo, StockView, reservation_key
    from models.planning import delivery_price, plan_shipments
    from workflows.fulfillment import FulfillmentInput, FulfillmentResult, FulfillmentWorkflow
    from models.recovery import ParkedStep, RetryOutcome, RetryRequest

from workflows import search
from workflows.common import call, failure_message, failure_type, local, signal_workflow
from workflows.order_changes import OrderChanges
from workflows.order_edits import OrderEdits
from workflows.pickup import PickupStage
from workflows.recovery import Recovery, StepAbandoned

Undo = Callable[[], Awaitable[None]]
#: how a failed step reaches the workflow: activities wrap the failure, local activities may not
STEP_FAILED = (ActivityError, ApplicationError)


class PlacementRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@workflow.defn
class OrderWorkflow(OrderEdits, OrderChanges, PickupStage):
    def __init__(self) -> None:
        self._inp: OrderInput | None = None
        self._status = OrderStatus.pending
        self._lines: list[OrderLine] = []
        self._totals = Totals()
        self._payment = PaymentView()
        self._payment_url: str | None = None
        self._shipments: dict[str, ShipmentView] = {}
        self._timeline: list[TimelineEntry] = []
        self._placement: Placement | None = None
        self._payment_event: PaymentEvent | None = None
        self._cancel: CancelRequest | None = None
        self._undo: list[tuple[str, Undo]] = []
        self._version = 0
        self._created_at: datetime | None = None
        self._bonus_to_accrue = 0
        self._store_id: str | None = None
        self._locations: dict[str, LocationInfo] = {}
        self._allocation_keys: dict[str, list[str]] = {}
        self._children: list[workflow.ChildWorkflowHandle] = []  # type: ignore[type-arg]
        self._dirty = False
        self._outbox: list[tuple[str, dict[str, object]]] = []  # customer notices raised by signals
        self._recovery = Recovery()  # a step parked for an operator (workflows/recovery.py)
        self._parked_children: dict[str, ParkedStep] = {}
        self._status_before_hold: OrderStatus | None = None
        self._extra: dict[str, object] = {}  # e.g. the promised pickup date (workflows/pickup.py)
        self._kept: list[tuple[int, int]] | None = None  # (pos_id, qty) finally sold after a partial pickup

    # ------------------------------------------------------------------ the process
    @workflow.run
    async def run(self, inp: OrderInput) -> OrderStatus:
        self._inp = inp
        self._created_at = inp.placed_at or workflow.now()
        self._event("placed", f"Заказ принят из канала {inp.channel.value}: {len(inp.lines)} поз.")
        try:
            await self._place()
        except PlacementRefused as refusal:
            await self._undo_all()
            self._status = OrderStatus.rejected
            self._placement = Placement(order_id=inp.order_id, status=self._status,
                                        error_code=refusal.code, error_message=refusal.message)
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._status
        self._placement = Placement(order_id=inp.order_id, status=self._status, totals=self._totals,
                                    payment_url=self._payment_url)
        await self._save()
        await self._notify("accepted_on_pickup" if self._pay_on_pickup else "accepted",
                           total=format_money(self._totals.total, inp.currency), payment_url=self._payment_url,
                           store=self._store_id)

        if not await self._await_payment() or not await self._fulfil():
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._status
        await self._settle()
        await self._keep_bonus_until_return_window_closes()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    # 1-3: price, source and hold, register the payment -------------------------------------
    async def _place(self) -> None:
        inp = self._require_input()
        priced = await call("price_cart", PriceRequest(phone=inp.customer.phone, lines=inp.lines,
                                                          bonus_to_spend=inp.bonus_to_spend,
                                                          promo_code=inp.promo_code), result_type=Priced)
        await self._source_and_reserve(priced)
        delivery = delivery_price(inp.delivery, self._shipments_count())
        expected_total = priced.subtotal - priced.discount - priced.bonus_spent
        try:
            priced = await call("begin_loyalty", LoyaltyBegin(
                purchase_id=inp.order_id, transaction_id=self._loyalty_tx, phone=inp.customer.phone,
                lines=inp.lines, bonus_to_spend=inp.bonus_to_spend, expected_total=expected_total,
                promo_code=inp.promo_code), result_type=Priced)
        except STEP_FAILED as err:
            raise PlacementRefused("LoyaltyRefused", failure_message(err)) from err
        self._do("roll back loyalty", lambda: call("rollback_loyalty", LoyaltyRef(inp.order_id, self._loyalty_tx)))
        self._lines = priced.lines
        self._bonus_to_accrue = priced.bonus_to_accrue
        goods = priced.subtotal - priced.discount - priced.bonus_spent
        self._totals = Totals(subtotal=priced.subtotal, discount=priced.discount, bonus_spent=priced.bonus_spent,
                              delivery=delivery, total=goods + delivery, currency=inp.currency)
        self._event("priced", f"Сумма {format_money(self._totals.total, inp.currency)}: товары "
                              f"{format_money(priced.subtotal)}, скидка {format_money(priced.discount)}, "
                              f"бонусы {format_money(priced.bonus_spent)}, доставка {format_money(delivery)}")
        if self._pay_on_pickup:  # click & collect paid at the till: no online payment to register
            self._status = OrderStatus.assembling
            self._event("pay_on_pickup", f"Оплата при получении в магазине {inp.delivery.store_id}")
            return
        try:
            reg = await call("register_payment", RegisterPayment(
                order_number=workflow.info().workflow_id, amount=self._totals.total, currency=inp.currency,
                description=f"Заказ {inp.order_id}", lines=self._lines, delivery_amount=delivery,
                phone=inp.customer.phone, email=inp.customer.email,
                session_timeout_secs=inp.payment_window_minutes * 60), result_type=PaymentRegistered)
        except STEP_FAILED as err:
            raise PlacementRefused("PaymentRefused", failure_message(err)) from err
        self._payment = PaymentView(state=PaymentState.registered, md_order=reg.md_order)
        self._payment_url = reg.form_url
        self._status = OrderStatus.awaiting_payment
        self._event("payment_registered", f"Платёж зарегистрирован в банке (mdOrder {reg.md_order})",
                    md_order=reg.md_order)

    async def _source_and_reserve(self, priced: Priced) -> None:
        inp = self._require_input()
        for attempt in (1, 2):  # stock may move between the look-up and the hold: re-source once
            view = await local("load_stock_view", StockViewRequest(skus=sorted({l.sku for l in inp.lines})),
                               result_type=StockView)
            plan = plan_shipments(inp, view, now=workflow.now())
            if plan.unfulfilled:
                missing = ", ".join(f"{l.sku} × {l.qty}" for l in plan.unfulfilled)
                raise PlacementRefused(ErrorType.OUT_OF_STOCK, f"not enough stock for: {missing}")
            allocations = self._allocations(plan, attempt)
            try:
                await local("reserve_stock", ReserveRequest(owner=self._owner, allocations=allocations))
            except STEP_FAILED as err:
                if attempt == 1 and failure_type(err) == ErrorType.OUT_OF_STOCK:
                    self._event("resourcing", f"Остаток изменился ({failure_message(err)}), подбираем склад заново")
                    continue
                raise PlacementRefused(ErrorType.OUT_OF_STOCK, failure_message(err)) from err
            self._do("release stock", lambda: local("release_stock", SettleRequest(owner=self._owner)))
            self._record_plan(plan, view.locations, allocations)
            return

    def _allocations(self, plan: SourcingPlan, attempt: int) -> list[Allocation]:
        out = []
        for shipment in plan.shipments:
            for line in shipment.lines:
                out.append(Allocation(key=reservation_key(self._owner, line.pos_id, shipment.location_id, attempt),
                                      sku=line.sku, location_id=shipment.location_id, qty=line.qty))
        return out

    def _record_plan(self, plan: SourcingPlan, locations: list[LocationInfo], allocations: list[Allocation]) -> None:
        inp = self._require_input()
        for n, shipment in enumerate(plan.shipments, start=1):
            sid = fulfillment_workflow_id(inp.order_id, n)
            self._shipments[sid] = ShipmentView(
                shipment_id=sid, location_id=shipment.location_id,
                lines=[LineRequest(sku=l.sku, qty=l.qty) for l in shipment.lines],
                reason=shipment.reason, transfer_to=getattr(shipment, "transfer_to", None),
                carrier=_carrier_for(inp.delivery.method, inp.delivery.carrier),
                promised_from=inp.delivery.promised_from, promised_to=inp.delivery.promised_to,
            )
            self._event("sourced", f"Отгрузка {n} со склада {shipment.location_id}: {shipment.reason}",
                        shipment_id=sid, location_id=shipment.location_id)
        self._locations = {loc.id: loc for loc in locations}
        self._allocation_keys = {
            sid: [a.key for a in allocations if a.location_id == s.location_id]
            for sid, s in self._shipments.items()
        }
        if inp.delivery.method == DeliveryMethod.pickup:
            self._store_id = inp.delivery.store_id
            self._promise_pickup()
        elif len(self._shipments) == 1:
            self._store_id = next(iter(self._shipments.values())).location_id

    # 4: the payment window ----------------------------------------------------------------------
    async def _await_payment(self) -> bool:
        inp = self._require_input()
        if self._pay_on_pickup:
            return True
        deadline = workflow.now() + timedelta(minutes=inp.payment_window_minutes)
        poll = timedelta(minutes=inp.payment_poll_minutes)
        while self._payment_event is None and self._cancel is None:
            if self._edits.active:  # an operator is changing the lines (and the payment link)
                await workflow.wait_condition(lambda: not self._edits.active)
            remaining = (self._edits.payment_deadline or deadline) - workflow.now()
            if remaining <= timedelta(0):
                break
            try:
                await workflow.wait_condition(lambda: self._payment_event is not None or self._cancel is not None,
                                              timeout=min(poll, remaining))
            except asyncio.TimeoutError:
                if not self._edits.active:
                    await self._poll_payment()
        if self._edits.active:
            await workflow.wait_condition(lambda: not self._edits.active)
        if self._payment_event is None and self._cancel is None:
            await self._poll_payment()  # the customer may have paid in the last second
        event = self._payment_event
        if event is not None and event.success:
            self._payment = PaymentView(state=PaymentState.held, md_order=self._payment.md_order,
                                        held=self._totals.total)
            self._undo.append(("reverse the payment hold", self._reverse_payment))
            self._status = OrderStatus.paid
            self._event("paid", f"Оплата {format_money(self._totals.total, inp.currency)} удержана банком")
            await self._save()
            await self._notify("paid")
            return True
        if self._cancel is not None:
            reason, notice = f"Заказ отменён до оплаты: {self._cancel.reason}", "cancelled"
        elif event is not None:
            reason, notice = "Банк отклонил оплату", "payment_declined"
            self._payment = PaymentView(state=PaymentState.declined, md_order=self._payment.md_order)
        else:
            reason, notice = f"Оплата не поступила за {inp.payment_window_minutes} мин", "payment_expired"
        await self._cancel_order(reason, notice)
        return False

    async def _poll_payment(self) -> None:
        md_order = self._payment.md_order
        if md_order is None or self._payment_event is not None:
            return
        try:
            st = await call("payment_status", md_order, result_type=PaymentStatusResult,
                            schedule_to_close=timedelta(minutes=1))
        except STEP_FAILED as err:  # the bank does not know the order (yet): wait for the callback
            self._event("payment_poll_failed", f"Банк не ответил на запрос статуса: {failure_message(err)}")
            return
        if st.order_status in (1, 2):
            self._payment_event = PaymentEvent(md_order=md_order, operation="approved", success=True,
                                               amount=st.approved)
            self._event("payment_polled", "Банк подтвердил удержание по запросу статуса (callback не пришёл)")
        elif st.order_status == 6:
            self._payment_event = PaymentEvent(md_order=md_order, operation="approved", success=False)

    async def _reverse_payment(self) -> None:
        if self._payment.md_order is None:
            return
        await call("reverse_payment", ReverseRequest(md_order=self._payment.md_order,
                                                     idempotency_key=f"{workflow.info().workflow_id}:reverse"))
        self._payment = PaymentView(state=PaymentState.reversed, md_order=self._payment.md_order)

    # 5: ERP and fulfilment ---------------------------------------------------------------------------
    async def _export_to_erp(self) -> None:
        try:
            await self._recovery.run("erp_export", lambda: call("export_order", self._erp_order()),
                                     on_park=self._parked, on_resume=self._resumed,
                                     abandon=lambda: self._cancel is not None)
        except StepAbandoned:
            return  # cancelled while on hold: _fulfil cancels the order
        self._event("erp_exported", "Заказ выгружен в ERP")
        self.__dict__["_erp_exported"] = True

    def _erp_order(self) -> ErpOrderExport:
        inp = self._require_input()
        return ErpOrderExport(
            number=inp.order_id, created_at=self._created_at or workflow.now(), currency=inp.currency,
            amount=self._totals.total, customer_name=inp.customer.name, customer_phone=inp.customer.phone,
            channel=inp.channel.value, lines=self._lines)

    async def _update_erp(self) -> None:
        """The exported order changed (an edit, a substitution): the ERP's customer order follows.
        Not worth holding the order for: a refusal or a long outage lands in the timeline."""
        try:
            await call("update_erp_order", self._erp_order(), schedule_to_close=timedelta(minutes=10))
        except STEP_FAILED as err:
            self._event("erp_update_failed", f"ERP не принял изменение заказа: {failure_message(err)}")
            return
        self._event("erp_updated", f"Изменение заказа передано в ERP: сумма {format_money(self._totals.total)}")

    async def _fulfil(self) -> bool:
        inp = self._require_input()
        await self._export_to_erp()
        if self._cancel is not None:
            await self._cancel_order(f"Заказ отменён: {self._cancel.reason}", "cancelled")
            return False
        self._status = OrderStatus.assembling
        await self._save()
        if inp.delivery.method == DeliveryMethod.pickup:
            return await self._collect_at_store()
        if self._edits.active:  # an operator is changing the lines: the stores get the result
            await workflow.wait_condition(lambda: not self._edits.active)
        self._edits.children_starting = True
        by_sku = {l.sku: l for l in self._lines}
        handles = []
        for n, (sid, shipment) in enumerate(self._shipments.items(), start=1):
            loc = self._locations[shipment.location_id]
            child = FulfillmentInput(
                order_id=inp.order_id, shipment_id=sid, n=n, location=loc,
                lines=[line_portion(by_sku[l.sku], l.qty) for l in shipment.lines],
                reservation_keys=self._allocation_keys[sid], delivery=inp.delivery, customer=inp.customer,
                carrier=shipment.carrier or "cdek", parent_id=workflow.info().workflow_id,
                assembly_sla_minutes=loc.assembly_sla_minutes or inp.assembly_sla_minutes,
                post_poll_minutes=inp.post_poll_minutes,
            )
            handles.append(await workflow.start_child_workflow(
                FulfillmentWorkflow.run, child, id=sid,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=search.for_child("assembling", shipment.location_id)))
        self._children = handles
        results: list[FulfillmentResult] = []
        everything = asyncio.gather(*handles)
        while not everything.done():
            await workflow.wait_condition(lambda: everything.done() or self._dirty)
            await self._flush()
        try:
            results = list(everything.result())
        except ChildWorkflowError as err:
            self._event("fulfilment_failed", f"Отгрузка не выполнена: {failure_message(err)}")
        await self._flush()
        if self._cancel is not None and not all(r.delivered for r in results):
            await self._cancel_order(f"Заказ отменён: {self._cancel.reason}", "cancelled")
            return False
        dropped = self._changes.dropped  # shipments an operator's removal left empty (cancelled on purpose)
        if not results or not all(r.delivered or r.shipment_id in dropped for r in results):
            self._status = OrderStatus.on_hold
            self._event("on_hold", "Не все отгрузки доставлены: заказ ждёт решения оператора")
            await self._save()
            await workflow.wait_condition(lambda: self._cancel is not None)
            await self._cancel_order(f"Заказ отменён: {self._cancel.reason}", "cancelled")  # type: ignore[union-attr]
            return False
        return True

    # 6: capture and accrue ---------------------------------------------------------------------------
    async def _settle(self) -> None:
        inp = self._require_input()
        md_order = self._payment.md_order
        if md_order is not None:  # None: paid at the store's till (on_pickup), nothing to capture
            await call("capture_payment", CaptureRequest(md_order=md_order, amount=self._capture_amount(),
                                                          idempotency_key=f"{workflow.info().workflow_id}:capture"))
            await self._capture_extra()  # what a payment of the difference holds (workflows.order_changes)
            self._payment = PaymentView(state=PaymentState.captured, md_order=md_order, held=self._totals.total,
                                        captured=self._totals.total)
            self._event("captured", f"Списано {format_money(self._totals.total, inp.currency)} (deposit.do)")
        accrual = await call("commit_loyalty", LoyaltyCommit(purchase_id=inp.order_id, transaction_id=self._loyalty_tx,
                                                             order_id=inp.order_id, kept=self._kept), result_type=int)
        self._undo.clear()  # nothing left to compensate: later changes are returns
        self._event("loyalty_committed", f"Покупка проведена в программе лояльности, к начислению {format_money(accrual)}")
        self._status = OrderStatus.completed
        self._event("completed", "Заказ выполнен")
        await self._save()

    # 7: the return window ------------------------------------------------------------------------------
    async def _keep_bonus_until_return_window_closes(self) -> None:
        inp = self._require_input()
        await workflow.sleep(timedelta(days=inp.return_window_days))
        activated = await call("activate_bonus", LoyaltyRef(purchase_id=inp.order_id), result_type=int)
        self._event("bonus_activated", f"Окно возврата закрыто: начислено {format_money(activated)} бонусов")
        await self._save()

    # ------------------------------------------------------------------ the saga
    def _do(self, what: str, undo: Callable[[], Awaitable[object]]) -> None:
        async def run() -> None:
            await undo()

        self._undo.append((what, run))

    async def _undo_all(self) -> None:
        while self._undo:
            what, undo = self._undo.pop()
            await undo()
            self._event("compensated", f"Отменено: {what}")

    async def _cancel_order(self, reason: str, notice: str) -> None:
        await self._edit_settled()  # a dearer edit waiting for its payment closes its link first
        await self._undo_all()
        self._status = OrderStatus.cancelled
        self._event("cancelled", reason)
        await self._save()
        await self._notify(notice, reason=reason)

    # ------------------------------------------------------------------ messages from outside
    @workflow.update
    async def placement(self) -> Placement:
        """The storefront's synchronous answer: totals and payment link, or why it was refused."""
        await workflow.wait_condition(lambda: self._placement is not None)
        assert self._placement is not None
        return self._placement

    @workflow.signal
    def payment_event(self, event: PaymentEvent) -> None:
        if self._on_extra_payment(event):
            return
        if self._payment_superseded(event.md_order):  # a link an operator's edit closed
            self._event("payment_callback", f"Банк (закрытая ссылка): {event.operation}", md_order=event.md_order)
            return
        if self._payment_event is None and event.operation in ("approved", "declinedByTimeout"):
            self._payment_event = event
        self._event("payment_callback", f"Банк: {event.operation}, {'успех' if event.success else 'отказ'}",
                    md_order=event.md_order)

    @workflow.signal
    def shipment_update(self, update: ShipmentUpdate) -> None:
        current = self._shipments.get(update.shipment_id)
        if current is None:
            return
        self._shipments[update.shipment_id] = dataclasses.replace(
            current, status=update.status, carrier=update.carrier or current.carrier,
            tracking_number=update.tracking_number or current.tracking_number,
            external_id=update.external_id or current.external_id,
            delivered_at=update.at if update.status == ShipmentState.delivered else current.delivered_at,
            late=bool(update.data.get("late", current.late)),
        )
        if "location_id" in update.data:
            self._shipment_moved(update.shipment_id, update.data["location_id"])
        self._event(f"shipment_{update.status.value}", update.message, shipment_id=update.shipment_id,
                    **update.data)
        if current.transfer_to:  # goods travelling to the pickup store: the customer waits for "ready"
            self._dirty = True
            return
        states = {s.status for sid, s in self._shipments.items() if sid not in self._changes.dropped}
        pickup = self._require_input().delivery.method == DeliveryMethod.pickup
        if states == {ShipmentState.delivered}:
            self._status = OrderStatus.delivered
            self._outbox.append(("collected" if pickup else "delivered", {}))
        elif pickup and update.status == ShipmentState.ready_for_pickup:
            self._status = OrderStatus.ready_for_pickup
        elif update.status == ShipmentState.handed_over:
            self._status = OrderStatus.shipped
            self._outbox.append(("shipped", {"carrier": update.carrier, "tracking": update.tracking_number,
                                             "shipment": update.shipment_id}))
        self._dirty = True

    @workflow.update
    async def cancel(self, req: CancelRequest) -> OrderStatus:
        self._cancel = req
        self._event("cancel_requested", f"Запрошена отмена ({req.by}): {req.reason}")
        for handle in getattr(self, "_children", []):
            await signal_workflow(handle.id, "cancel", req)
        await workflow.wait_condition(lambda: self._status.is_final)
        return self._status

    @workflow.update
    async def change_address(self, req: AddressChange) -> Delivery:
        """An operator changes the delivery address before the parcel is booked with the courier."""
        inp = self._require_input()
        self._inp = dataclasses.replace(inp, delivery=dataclasses.replace(inp.delivery, address=req.address))
        a = req.address
        self._event("address_changed", f"Адрес доставки изменён ({req.by}): {a.postcode}, {a.city}, {a.line}",
                    by=req.by)
        for handle in self._children:
            await signal_workflow(handle.id, "change_address", req.address)
        await self._save()
        return self._inp.delivery

    @change_address.validator
    def _validate_change_address(self, req: AddressChange) -> None:
        inp = self._require_input()
        if self._status.is_final:
            raise ApplicationError(f"the order is already {self._status.value}")
        if inp.delivery.method == DeliveryMethod.pickup:
            raise ApplicationError("delivery.method: a click & collect order has no delivery address")
        booked = [s.shipment_id for s in self._shipments.values()
                  if s.status not in (ShipmentState.planned, ShipmentState.assembling, ShipmentState.assembled,
                                      ShipmentState.cancelled)]
        if booked:
            raise ApplicationError(f"the parcel is already with the courier ({', '.join(booked)}): "
                                   "the address can no longer change")
        if not req.by.strip():
            raise ApplicationError("by: say who changes the address")

    @cancel.validator
    def _validate_cancel(self, req: CancelRequest) -> None:
        if self._status.is_final:
            raise ApplicationError(f"order is already {self._status.value}")
        handed = [s.shipment_id for s in self._shipments.values() if not s.transfer_to
                  and s.status in (ShipmentState.handed_over, ShipmentState.in_transit, ShipmentState.delivered)]
        if handed:
            raise ApplicationError("the order has been handed to the courier: cancel is no longer possible, "
                                   "start a return instead")
        if not req.reason.strip():
            raise ApplicationError("reason: give a reason for the cancellation")

    # ------------------------------------------------------------------ parked steps (workflows/recovery.py)
    @workflow.update
    async def retry(self, req: RetryRequest) -> RetryOutcome:
        """An operator resumes what is on hold: the order's own parked step and/or its shipments'."""
        resumed = []
        if self._recovery.resume(req):
            resumed.append(f"{workflow.info().workflow_id}:{self._recovery.parked.step}")  # type: ignore[union-attr]
        for wf_id, parked in list(self._parked_children.items()):
            await signal_workflow(wf_id, "retry", req)
            resumed.append(f"{wf_id}:{parked.step}")
            self._event("retry_requested", f"Оператор {req.by} повторяет шаг {parked.step} ({wf_id})"
                        f"{': ' + req.note if req.note else ''}", by=req.by, step=parked.step, shipment_id=wf_id)
        if self._parked_children:
            self._parked_children.clear()
            self._leave_hold()
            self._dirty = True
        return RetryOutcome(order_id=self._require_input().order_id, resumed=resumed)

    @retry.validator
    def _validate_retry(self, req: RetryRequest) -> None:
        if self._recovery.parked is None and not self._parked_children:
            raise ApplicationError(f"nothing is on hold: the order is {self._status.value}")
        if not req.by.strip():
            raise ApplicationError("by: say who decided to retry")

    @workflow.signal
    def step_parked(self, parked: ParkedStep) -> None:
        """A fulfillment child parked a step (e.g. the courier refused the booking)."""
        self._parked_children[parked.workflow_id] = parked
        self._enter_hold(parked)
        self._dirty = True

    async def _parked(self, parked: ParkedStep) -> None:
        self._enter_hold(parked)
        await self._save()

    async def _resumed(self, parked: ParkedStep, req: RetryRequest) -> None:
        self._event("retry_requested", f"Оператор {req.by} повторяет шаг {parked.step}"
                    f"{': ' + req.note if req.note else ''}", by=req.by, step=parked.step)
        self._leave_hold()
        await self._save()

    def _enter_hold(self, parked: ParkedStep) -> None:
        if self._status != OrderStatus.on_hold:
            self._status_before_hold = self._status
        self._status = OrderStatus.on_hold
        self._event("on_hold", f"Шаг {parked.step} не выполнен: {parked.message}. Заказ ждёт решения оператора",
                    step=parked.step, error=parked.message, error_type=parked.error_type,
                    workflow_id=parked.workflow_id)

    def _leave_hold(self) -> None:
        if self._status == OrderStatus.on_hold and self._status_before_hold is not None:
            self._status = self._status_before_hold
        self._status_before_hold = None

    @workflow.query
    def status(self) -> OrderStatus:
        return self._status

    @workflow.query
    def snapshot(self) -> OrderSnapshot:
        return self._snapshot()

    # ------------------------------------------------------------------ helpers
    @property
    def _owner(self) -> str:
        return workflow.info().workflow_id

    @property
    def _loyalty_tx(self) -> str:
        return f"{workflow.info().workflow_id}:tx{self._loyalty_suffix()}"

    def _require_input(self) -> OrderInput:
        assert self._inp is not None
        return self._inp

    def _shipments_count(self) -> int:
        return max(len(self._shipments), 1)

    def _event(self, kind: str, message: str, **data: object) -> None:
        self._timeline.append(TimelineEntry(at=workflow.now(), kind=kind, message=message, data=dict(data)))

    def _snapshot(self) -> OrderSnapshot:
        inp = self._require_input()
        return OrderSnapshot(
            order_id=inp.order_id, status=self._status, channel=inp.channel, customer=inp.customer,
            delivery=inp.delivery, lines=self._lines, totals=self._totals, payment=self._payment,
            shipments=list(self._shipments.values()), timeline=list(self._timeline),
            created_at=self._created_at or workflow.now(), updated_at=workflow.now(), version=self._version,
            payment_url=self._payment_url, store_id=self._store_id, extra=dict(self._extra),
        )

    async def _save(self) -> None:
        self._version += 1
        search.upsert(self._status.value, self._store_id)
        await local("save_order", self._snapshot())

    async def _flush(self) -> None:
        """Write what signals changed (projection, customer messages) from the main coroutine."""
        if not self._dirty:
            return
        self._dirty = False
        if self.__dict__.pop("_erp_dirty", False):
            await self._update_erp()
        await self._save()
        while self._outbox:
            event, params = self._outbox.pop(0)
            await self._notify(event, key_suffix=str(params.pop("shipment", "")), **params)

    async def _notify(self, event: str, key_suffix: str = "", **params: object) -> None:
        inp = self._require_input()
        await call("notify_customer", CustomerNotice(
            key=f"{workflow.info().workflow_id}:{event}{':' + key_suffix if key_suffix else ''}", phone=inp.customer.phone, email=inp.customer.email,
            event=event, params={"number": inp.order_id, **params}))


def _carrier_for(method: DeliveryMethod, chosen: str | None) -> str | None:
    if chosen:
        return chosen
    return {DeliveryMethod.post: "post", DeliveryMethod.pickup: None}.get(method, "cdek")
