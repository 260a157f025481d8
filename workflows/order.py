"""OrderWorkflow (``order-{id}``): one customer order from placement to the end of its return window.

The process, as a retail person tells it:

1. price the cart through loyalty (discounts, bonus write-off);
2. choose where the goods ship from and hold them in the stock ledger
   (re-sourcing once if stock moved meanwhile);
3. hold the bonus write-off and register the card payment (``registerPreAuth.do``), tell the
   storefront the totals and the payment link;
4. wait for the bank within the payment window (its callback; polling as a fallback);
5. export the order to the ERP, then one ``FulfillmentWorkflow`` per shipment assembles it at its
   location and hands it to the courier (click & collect: transfers to the store, then the store
   sets it aside and the customer picks it up);
6. once everything is delivered, capture the final amount and commit the loyalty purchase;
7. keep the accrued bonus pending until the return window closes, then make it spendable.

Placement refused (out of stock, loyalty or the bank says no): nothing stays held. The payment
window passing, the bank declining, a cancel before hand-over, goods not collected: every step
done is undone in reverse (``workflows/order_saga.py``) and the order is cancelled.

Outside messages (the bank, the shipments, operators) never run workflow code in their handlers:
each handler validates, puts an event in the order's inbox and returns (an update waits for its
answer); ``run()`` applies the events one at a time whenever it waits (``workflows/inbox.py``).
Everything the order knows is one :class:`~workflows.order_state.OrderState`; each part of the
process is a small helper given that state and the ports it needs (no mixins).
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any, Callable, Coroutine

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.notify import NotifyActivities
    from activities.orders import ProjectionActivities
    from contracts.edits import EditOutcome, OrderEdit
    from contracts.order import (
        AddressChange,
        CancelRequest,
        Delivery,
        OrderInput,
        OrderSnapshot,
        OrderStatus,
        PaymentEvent,
        Placement as PlacementAnswer,
        ShipmentState,
        ShipmentUpdate,
    )
    from contracts.edits import EditAnswer
    from contracts.recovery import ParkedStep, RetryOutcome, RetryRequest
    from contracts.steps import CustomerNotice
    from contracts.tasks import OpenTask, ShortageReport, TaskDecision, TaskOutcome

from workflows import search
from workflows.common import call, local
from workflows.inbox import Inbox, Reply
from workflows.order_edits import Edits
from workflows.order_erp import Erp
from workflows.order_events import (
    AddressChangeAsked,
    CancelAsked,
    EditAnswered,
    EditAsked,
    OrderEvent,
    PaymentAnswered,
    RetryAsked,
    ShipmentChanged,
    ShortageReported,
    StepParked,
)
from workflows.order_payments import Payments
from workflows.order_placement import Placement
from workflows.order_pricing import Pricing
from workflows.order_saga import Saga
from workflows.order_settlement import Settlement
from workflows.order_shipping import Shipping
from workflows.order_state import OrderState, OrderStopped, PlacementRefused, Ports
from workflows.order_substitutions import Substitutions
from workflows.parents import OrderParent
from workflows.pickup import PickupStage
from workflows.recovery import Recovery

#: shipment states in which the courier has not been booked yet (the address may still change)
NOT_BOOKED = (ShipmentState.planned, ShipmentState.assembling, ShipmentState.assembled, ShipmentState.cancelled)


@workflow.defn
class OrderWorkflow:
    @workflow.init
    def __init__(self, inp: OrderInput) -> None:
        self.state = OrderState.begin(inp)
        self.inbox: Inbox[OrderEvent] = Inbox(self._apply, self._may_apply)
        self._process_running = False  # an edit or a substitution is being applied (see workflows/inbox.py)
        self._cancel_replies: list[Reply[OrderStatus]] = []
        st, ports = self.state, Ports(wait=self.wait, save=self.save, notify=self.notify)
        self.recovery = Recovery()
        self.pricing = Pricing(st)
        self.payments = Payments(st, ports)
        self.shipping = Shipping(st, ports)
        self.pickup = PickupStage(st, ports, self.shipping)
        self.erp = Erp(st, ports, self.recovery)
        self.placing = Placement(st, ports, self.pricing, self.payments, self.pickup)
        self.edits = Edits(st, ports, self.pricing, self.payments, self.erp)
        self.substitutions = Substitutions(st, ports, self.pricing, self.payments, self.erp, cancel=self._take_cancel)
        self.settlement = Settlement(st, ports, self.payments)
        self.saga = Saga(st, ports, self.payments)

    # ------------------------------------------------------------------ the process
    @workflow.run
    async def run(self, inp: OrderInput) -> OrderStatus:
        self.state.note("placed", f"Заказ принят из канала {inp.channel.value}: {len(inp.lines)} поз.")
        try:
            await self.placing.place()                  # 1-3. price, source and hold, register the payment
            await self.payments.wait_for_payment()      # 4. the bank's answer within the payment window
            await self.erp.export()                     # 5. the ERP gets the order
            if self.state.pickup:
                await self.pickup.collect()             # 5. transfers, set aside at the store, picked up
            else:
                await self.shipping.fulfil()            # 5. every shipment assembled, handed over, delivered
            await self.settlement.settle()              # 6. capture what was shipped, commit loyalty
            await self.settlement.keep_bonus_pending()  # 7. the accrual spendable once returns are closed
        except PlacementRefused as refusal:
            await self.saga.reject(refusal)             # nothing stays held
        except OrderStopped as stop:
            await self.saga.cancel(stop)                # every step done undone, in reverse
        return await self._close()

    async def _close(self) -> OrderStatus:
        """Answer what is still waiting against the final state, and end once every handler is done."""
        self._settle_cancel_replies()
        await self.wait(lambda: not self.inbox and workflow.all_handlers_finished()
                        and all(r.done for r in self._cancel_replies))
        return self.state.status

    # ------------------------------------------------------------------ the main loop's waiting and applying
    async def wait(self, done: Callable[[], bool], timeout: timedelta | None = None) -> bool:
        """Wait until ``done()`` or the timeout, applying the inbox's events one at a time meanwhile.
        True when done. Every wait of the order (and of its helpers) is this one."""
        return await self.inbox.wait(done, timeout)

    def _may_apply(self, event: OrderEvent) -> bool:
        """While an edit or a substitution runs, another waits its turn (quick events never wait)."""
        return not (self._process_running and event.starts_process)

    async def _apply(self, event: OrderEvent) -> None:
        await self._take(event)
        self._settle_cancel_replies()

    async def _take(self, event: OrderEvent) -> None:
        st = self.state
        match event:
            case PaymentAnswered(event=answer):
                await self.payments.on_answer(answer)
            case CancelAsked():
                await self._on_cancel(event)
            case ShipmentChanged(update=update):
                await self.shipping.on_update(update)
            case AddressChangeAsked():
                await self._on_address_change(event)
            case RetryAsked():
                await self._on_retry(event)
            case StepParked(parked=parked):
                st.parked_children[parked.workflow_id] = parked
                st.enter_hold(parked)
                await self.save()
            case EditAnswered(answer=answer):
                await self.edits.on_answer(answer)
            case EditAsked():
                await self._process(self.edits.apply(event.edit, event.reply,
                                                     substitution_open=bool(self.substitutions.board.open)))
            case ShortageReported(rep=rep):
                await self._process(self.substitutions.handle(rep))

    async def _process(self, process: Coroutine[Any, Any, None]) -> None:
        """Run an edit or a substitution: it may wait itself; meanwhile only quick events are applied."""
        self._process_running = True
        try:
            await process
        finally:
            self._process_running = False

    # ------------------------------------------------------------------ cancel
    def _cancel_refusal(self, req: CancelRequest) -> str | None:
        st = self.state
        if st.status.is_final:
            return f"order is already {st.status.value}"
        if st.handed_over():
            return "the order has been handed to the courier: cancel is no longer possible, start a return instead"
        if not req.reason.strip():
            return "reason: give a reason for the cancellation"
        return None

    async def _on_cancel(self, event: CancelAsked) -> None:
        refusal = self._cancel_refusal(event.req)
        if refusal is not None:
            if event.reply is not None:
                event.reply.fail(ApplicationError(refusal))
            return
        await self._take_cancel(event.req)
        if event.reply is not None:
            self._cancel_replies.append(event.reply)

    async def _take_cancel(self, req: CancelRequest) -> None:
        """The order is to be cancelled: its steps see it at their next wait; its shipments are told."""
        st = self.state
        if st.status.is_final or st.cancel is not None:
            return
        st.cancel = req
        st.note("cancel_requested", f"Запрошена отмена ({req.by}): {req.reason}")
        await self.shipping.forward_cancel(req)

    def _settle_cancel_replies(self) -> None:
        """A cancel ends with the order (its final status), or is too late: a parcel left meanwhile."""
        st = self.state
        if st.status.is_final:
            for reply in self._cancel_replies:
                reply.ok(st.status)
        elif st.cancel is not None and st.handed_over():
            left = ", ".join(st.handed_over())
            st.note("cancel_refused", f"Отмена не выполнена: посылка уже у перевозчика ({left})")
            st.cancel = None
            for reply in self._cancel_replies:
                reply.fail(ApplicationError("the order was handed to the courier before the cancel reached it: "
                                            "start a return instead"))
        else:
            return
        self._cancel_replies = [r for r in self._cancel_replies if not r.done]

    # ------------------------------------------------------------------ address, retry
    def _address_refusal(self, req: AddressChange) -> str | None:
        st = self.state
        if st.status.is_final:
            return f"the order is already {st.status.value}"
        if st.pickup:
            return "delivery.method: a click & collect order has no delivery address"
        booked = [s.shipment_id for s in st.shipments.values() if s.status not in NOT_BOOKED]
        if booked:
            return f"the parcel is already with the courier ({', '.join(booked)}): the address can no longer change"
        if not req.by.strip():
            return "by: say who changes the address"
        return None

    async def _on_address_change(self, event: AddressChangeAsked) -> None:
        st, req = self.state, event.req
        refusal = self._address_refusal(req)
        if refusal is not None:
            event.reply.fail(ApplicationError(refusal))
            return
        st.inp = dataclasses.replace(st.inp, delivery=dataclasses.replace(st.inp.delivery, address=req.address))
        a = req.address
        st.note("address_changed", f"Адрес доставки изменён ({req.by}): {a.postcode}, {a.city}, {a.line}", by=req.by)
        await self.shipping.forward_address(req.address)
        await self.save()
        event.reply.ok(st.inp.delivery)

    async def _on_retry(self, event: RetryAsked) -> None:
        st, req = self.state, event.req
        resumed = []
        if st.parked is not None and self.recovery.resume(req):
            resumed.append(f"{st.wf_id}:{st.parked.step}")
        if st.parked_children:
            resumed += await self.shipping.forward_retry(req)
            st.leave_hold()
            await self.save()
        if not resumed:
            event.reply.fail(ApplicationError(f"nothing is on hold: the order is {st.status.value}"))
            return
        event.reply.ok(RetryOutcome(order_id=st.order_id, resumed=resumed))

    # ------------------------------------------------------------------ ports: save, tell the customer
    async def save(self) -> None:
        """Write the order's projection (a version per write) and keep the search attributes current."""
        st = self.state
        st.version += 1
        search.upsert(st.status.value, st.store_id)
        await local(ProjectionActivities.save_order, st.snapshot())

    async def notify(self, event: str, key_suffix: str = "", **params: object) -> None:
        st, inp = self.state, self.state.inp
        await call(NotifyActivities.notify_customer, CustomerNotice(
            key=f"{st.wf_id}:{event}{':' + key_suffix if key_suffix else ''}", phone=inp.customer.phone,
            email=inp.customer.email, event=event, params={"number": inp.order_id, **params}))

    # ------------------------------------------------------------------ messages from outside: validate, enqueue
    @workflow.update
    async def placement(self) -> PlacementAnswer:
        """The storefront's synchronous answer: totals and payment link, or why it was refused."""
        await workflow.wait_condition(lambda: self.state.placement is not None)
        assert self.state.placement is not None
        return self.state.placement

    @workflow.signal
    def payment_event(self, event: PaymentEvent) -> None:
        """The bank's callback (checksum verified by the API)."""
        self.inbox.put(PaymentAnswered(event))

    @workflow.update
    async def cancel(self, req: CancelRequest) -> OrderStatus:
        """Cancel before hand-over: the final status once every step done is undone."""
        reply: Reply[OrderStatus] = Reply()
        self.inbox.put(CancelAsked(req, reply))
        return await reply.result()

    @cancel.validator
    def _validate_cancel(self, req: CancelRequest) -> None:
        refusal = self._cancel_refusal(req)
        if refusal is not None:
            raise ApplicationError(refusal)

    @workflow.update
    async def change_address(self, req: AddressChange) -> Delivery:
        """An operator changes the delivery address before the parcel is booked with the courier."""
        event = AddressChangeAsked(req)
        self.inbox.put(event)
        return await event.reply.result()

    @change_address.validator
    def _validate_change_address(self, req: AddressChange) -> None:
        refusal = self._address_refusal(req)
        if refusal is not None:
            raise ApplicationError(refusal)

    @workflow.update
    async def edit_lines(self, edit: OrderEdit) -> EditOutcome:
        """An operator changes lines before assembly (``workflows/order_edits.py``)."""
        self.edits.check_idle()  # two edits validated in one workflow task: the first one wins
        self.edits.queued += 1
        event = EditAsked(edit)
        self.inbox.put(event)
        return await event.reply.result()

    @edit_lines.validator
    def _validate_edit_lines(self, edit: OrderEdit) -> None:
        self.edits.check_idle()
        self.edits.validate(edit, substitution_open=bool(self.substitutions.board.open))

    @workflow.update
    async def retry(self, req: RetryRequest) -> RetryOutcome:
        """An operator resumes what is on hold: the order's own parked step and/or its shipments'."""
        event = RetryAsked(req)
        self.inbox.put(event)
        return await event.reply.result()

    @retry.validator
    def _validate_retry(self, req: RetryRequest) -> None:
        st = self.state
        if st.parked is None and not st.parked_children:
            raise ApplicationError(f"nothing is on hold: the order is {st.status.value}")
        if not req.by.strip():
            raise ApplicationError("by: say who decided to retry")

    @workflow.update
    async def complete_task(self, d: TaskDecision) -> TaskOutcome:
        """An operator's decision on a substitution task; the substitution applies it."""
        return await self.substitutions.board.complete(d)

    @complete_task.validator
    def _validate_complete_task(self, d: TaskDecision) -> None:
        self.substitutions.validate(d)

    # what the order's shipments tell it (workflows.parents.OrderParent)
    @workflow.signal
    def shipment_update(self, update: ShipmentUpdate) -> None:
        self.inbox.put(ShipmentChanged(update))

    @workflow.signal
    def shortage_reported(self, rep: ShortageReport) -> None:
        self.inbox.put(ShortageReported(rep))

    @workflow.signal
    def edit_answer(self, answer: EditAnswer) -> None:
        self.inbox.put(EditAnswered(answer))

    @workflow.signal
    def step_parked(self, parked: ParkedStep) -> None:
        self.inbox.put(StepParked(parked))

    @workflow.signal
    def cancel_order(self, req: CancelRequest) -> None:
        """A shipment's escalation: an operator decided to cancel the order."""
        self.inbox.put(CancelAsked(req))

    # ------------------------------------------------------------------ queries
    @workflow.query
    def status(self) -> OrderStatus:
        return self.state.status

    @workflow.query
    def snapshot(self) -> OrderSnapshot:
        return self.state.snapshot()

    @workflow.query
    def open_tasks(self) -> list[OpenTask]:
        return self.substitutions.board.listing()


#: the order handles every signal its shipments send (checked by the type checker)
_PARENT: type[OrderParent] = OrderWorkflow
