"""Missing items: a shortage the store could not re-source (``shortage_reported`` from the shipment)
becomes a substitution task for an operator, who agrees with the customer one of:

* ``substitute`` with SKU X (``qty``, default the missing quantity): X is held at the same store,
  the order is re-priced through loyalty (the loyalty transaction is rolled back and begun again
  with the new lines, so discounts, bonus write-off and accrual are exact);
* ``remove``: the missing units leave the order (re-priced the same way); when that empties a
  shipment of an order with others, only that shipment is cancelled and the order goes on;
* ``cancel``: the whole order is cancelled (the saga compensates).

Nobody answers before the deadline → ``remove`` (the configured default). The deadline, the default
and what each answer does to the order are ``domain.shortages`` (the rules the simulator measures). Payment follows: the
final capture is the re-priced total (``deposit.do`` of less than the hold releases the rest);
a dearer substitute needs a second hold for the difference (``registerPreAuth`` with orderNumber
``order-<id>~<n>``, the link sent to the customer); if it is not paid in the payment window the
substitute is dropped and the missing units removed instead. The shipment then gets a ``revise``
with its new lines and reservations.

The dialogue is a process the order's main loop runs (``ShortageReported`` in its inbox); while it
waits for the operator, the loop keeps applying cancels, payments and shipments' news.
"""

from __future__ import annotations

import dataclasses
from typing import Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.stock import StockActivities
    from contracts.order import CancelRequest, CatalogLine, LineRequest, OrderLine, PaymentState, ShipmentState
    from contracts.steps import ReserveRequest, SettleRequest
    from contracts.stock import Allocation, line_key, line_pos
    from contracts.tasks import (
        ShipmentRevision,
        ShortageReport,
        TaskAction,
        TaskDecision,
        TaskKind,
        TaskOutcome,
        TaskSpec,
    )
    from domain.messages import mask_phone
    from domain.money import format_money
    from domain.shortages import (
        SUBSTITUTION_DEADLINE,
        SUBSTITUTION_DEFAULT,
        ShortageOutcome,
        lines_left_after_shortage,
        shortage_outcome,
    )
    from workflows.fulfillment import FulfillmentWorkflow

from workflows.common import STEP_FAILED, local, signal
from workflows.human import TaskBoard, invalid
from workflows.order_erp import Erp
from workflows.order_payments import Payments
from workflows.order_pricing import Pricing
from workflows.order_state import OrderState, Payment, Ports


class Refused(Exception):
    """A decision that cannot be applied now (nothing was changed)."""


class Substitutions:
    def __init__(self, state: OrderState, ports: Ports, pricing: Pricing, payments: Payments, erp: Erp,
                 cancel: Callable[[CancelRequest], Awaitable[None]]) -> None:
        self.state, self.ports, self.pricing, self.payments, self.erp = state, ports, pricing, payments, erp
        self.cancel = cancel
        self.board = TaskBoard()

    # ------------------------------------------------------------------ the operator's update
    def validate(self, d: TaskDecision) -> None:
        """The ``complete_task`` validator: the task is open and a substitute is a sellable SKU."""
        task = self.board.validate(d)
        if task.kind != TaskKind.substitution or d.action != TaskAction.substitute:
            return
        p = task.payload
        if not d.sku:
            raise invalid("sku", "required: the SKU to give instead of the missing item")
        if d.offer is None:
            raise invalid("sku", f"unknown SKU {d.sku!r}")
        if d.sku == p["sku"]:
            raise invalid("sku", f"{d.sku} is the missing item itself")
        if any(line.sku == d.sku for line in self.state.lines):
            raise invalid("sku", f"{d.sku} is already in the order")
        qty = d.qty or p["missing_qty"]
        if qty < 1 or qty > 99:
            raise invalid("qty", "must be between 1 and 99")
        if d.offer.available < qty:
            raise invalid("sku", f"{d.sku} is out of stock at {task.location_id}: {d.offer.available} available, "
                                 f"{qty} needed")

    # ------------------------------------------------------------------ the shortage
    async def handle(self, rep: ShortageReport) -> None:
        """Ask an operator, apply the decision (or the default), then the shipment carries on."""
        st, inp = self.state, self.state.inp
        line = next((x for x in rep.lines if x.sku == rep.sku), None)
        if line is None or st.status.is_final or st.cancel is not None:
            return
        st.note("shortage", f"Магазин {rep.location_id}: нет {line.name} ({rep.sku}) × {rep.missing_qty}",
                shipment_id=rep.shipment_id, sku=rep.sku, missing_qty=rep.missing_qty)
        spec = TaskSpec(
            task_id=self.board.next_id(TaskKind.substitution), kind=TaskKind.substitution, order_id=inp.order_id,
            workflow_id=st.wf_id, location_id=rep.location_id, priority=20,
            title=f"Заказ {inp.order_id}: в магазине {rep.location_id} нет {line.name} ({rep.sku}) × "
                  f"{rep.missing_qty} — согласуйте с клиентом замену, удаление позиции или отмену",
            due_at=workflow.now() + SUBSTITUTION_DEADLINE,
            payload={"shipment_id": rep.shipment_id, "sku": rep.sku, "name": line.name,
                     "missing_qty": rep.missing_qty, "line_qty": line.qty, "unit_price": line.unit_price,
                     "default": SUBSTITUTION_DEFAULT.value, "customer": inp.customer.name,
                     "phone": mask_phone(inp.customer.phone)},
            channel=inp.channel.value, amount=st.totals.total,
            region=inp.delivery.address.region if inp.delivery.address else "",
        )
        st.note("task_opened", f"Задача оператору: {spec.title}", task_id=spec.task_id)
        await self.ports.save()
        revision: ShipmentRevision | None = None
        while True:
            decision = await self.board.ask(spec, default=SUBSTITUTION_DEFAULT, reassign_after=SUBSTITUTION_DEADLINE / 2,
                                            stop=lambda: st.cancel is not None or st.status.is_final,
                                            wait=self.ports.wait)
            if decision is None:
                return
            try:
                outcome, revision = await self._apply(rep, line, decision)
            except Refused as refusal:
                self.board.refuse(decision, str(refusal))
                continue
            await self.board.finish(decision, outcome)
            break
        who = "по умолчанию (оператор не ответил)" if decision.by == "timeout" else f"оператор {decision.by}"
        st.note("task_done", f"Решение ({who}): {outcome.message}", task_id=spec.task_id,
                action=decision.action.value)
        if revision is not None:
            revision = await self._when_difference_paid(rep, line, revision)
        await self.ports.save()
        if revision is not None and st.cancel is None:
            await self.erp.follow()
            await signal(rep.shipment_id, FulfillmentWorkflow.revise, revision)

    async def _apply(self, rep: ShortageReport, line: OrderLine,
                     d: TaskDecision) -> tuple[TaskOutcome, ShipmentRevision | None]:
        st = self.state
        kept = lines_left_after_shortage(rep.lines, rep.sku, rep.missing_qty)
        others = [sid for sid, v in st.shipments.items()
                  if sid != rep.shipment_id and sid not in st.dropped and v.status != ShipmentState.cancelled]
        outcome = shortage_outcome(d.action, kept=kept, other_shipments=others)  # the rule the simulator measures
        if outcome == ShortageOutcome.drop_shipment:
            return await self._drop_shipment(rep, line, d), None
        if outcome == ShortageOutcome.cancel_order:
            if d.action == TaskAction.cancel:
                reason, message = f"нет товара {line.name}, клиент отказался от замены", "Заказ отменяется"
            else:
                reason = f"нет товара {line.name}: в отгрузке ничего не осталось"
                message = "В отгрузке не осталось товаров: заказ отменяется"
            await self.cancel(CancelRequest(reason=reason, by="operator"))
            return TaskOutcome(task_id=d.task_id, action=d.action, message=message), None
        st.revisions += 1
        n, owner = st.revisions, st.wf_id
        catalog = list(st.catalog)
        new_keys = [k for k in rep.reservation_keys if line_pos(k) != line.pos_id]
        substitute: CatalogLine | None = None
        if d.action == TaskAction.substitute:
            assert d.offer is not None and d.sku is not None  # the validator saw to it
            qty = d.qty or rep.missing_qty
            substitute = CatalogLine(pos_id=max(c.pos_id for c in catalog) + 1, sku=d.sku, name=d.offer.name,
                                     qty=qty, unit_price=d.offer.unit_price)
            key = line_key(owner, substitute.pos_id, rep.location_id, f"s{n}")
            try:
                await local(StockActivities.reserve_stock, ReserveRequest(owner=owner, allocations=[Allocation(
                    key=key, sku=d.sku, location_id=rep.location_id, qty=qty)]))
            except STEP_FAILED as err:
                st.revisions -= 1
                raise Refused(f"{d.sku} is out of stock at {rep.location_id} now") from err
            new_keys.append(key)
        # the short line: release its units here and hold what is left of it
        left = line.qty - rep.missing_qty
        await local(StockActivities.release_stock, SettleRequest(
            owner=owner, keys=[k for k in rep.reservation_keys if line_pos(k) == line.pos_id]))
        if left > 0:
            key = line_key(owner, line.pos_id, rep.location_id, f"v{n}")
            await local(StockActivities.reserve_stock, ReserveRequest(owner=owner, allocations=[Allocation(
                key=key, sku=line.sku, location_id=rep.location_id, qty=left)]))
            new_keys.append(key)
        catalog = [dataclasses.replace(c, qty=c.qty - rep.missing_qty) if c.pos_id == line.pos_id else c
                   for c in catalog]
        catalog = [c for c in catalog if c.qty > 0] + ([substitute] if substitute else [])
        before = st.totals.total
        await self.pricing.reprice(catalog)
        change = (f"вместо {line.name} × {rep.missing_qty} — {substitute.name} × {substitute.qty}" if substitute
                  else f"{line.name} × {rep.missing_qty} удалён из заказа")
        st.note("order_changed", f"Состав изменён: {change}. Сумма {format_money(before)} → "
                                 f"{format_money(st.totals.total)}", total=st.totals.total)
        revision = ShipmentRevision(n=n, lines=self._shipment_lines(rep, line, substitute), reservation_keys=new_keys,
                                    note=(f"положите {substitute.sku} × {substitute.qty} вместо {line.sku} × "
                                          f"{rep.missing_qty}" if substitute else
                                          f"уберите {line.sku} × {rep.missing_qty}, соберите остальное"))
        extra_url = None
        main = st.main_payment
        main_held = main.held if main is not None else 0
        if st.totals.total > st.held:
            extra = await self.payments.register_difference(st.totals.total - main_held,
                                                            item="Доплата за замену товара")
            extra_url = extra.form_url
            await self.ports.notify("extra_payment", key_suffix=str(extra.n), amount=format_money(extra.amount),
                                    payment_url=extra.form_url)
        else:
            await self.ports.notify("substitution", key_suffix=str(n), change=change)
        message = f"{change}; сумма заказа {format_money(st.totals.total)}"
        if extra_url:
            message += f"; доплата {format_money(st.differences[-1].amount)} по ссылке"
        return TaskOutcome(task_id=d.task_id, action=d.action, message=message, total=st.totals.total,
                           extra_payment_url=extra_url, data={"change": change}), revision

    async def _drop_shipment(self, rep: ShortageReport, line: OrderLine, d: TaskDecision) -> TaskOutcome:
        """The removal leaves a shipment of a multi-shipment order empty: that shipment is
        cancelled (its holds released, its store told) and the rest of the order goes on,
        re-priced without it."""
        st = self.state
        st.dropped.add(rep.shipment_id)
        await local(StockActivities.release_stock, SettleRequest(owner=st.wf_id, keys=list(rep.reservation_keys)))
        shipped_here = {x.pos_id: x.qty for x in rep.lines}
        catalog = [dataclasses.replace(c, qty=c.qty - shipped_here.get(c.pos_id, 0)) for c in st.catalog]
        before = st.totals.total
        await self.pricing.reprice([c for c in catalog if c.qty > 0])
        change = f"{line.name} × {rep.missing_qty} удалён, отгрузка {rep.shipment_id} отменена"
        st.note("order_changed", f"Состав изменён: {change}. Сумма {format_money(before)} → "
                                 f"{format_money(st.totals.total)}", total=st.totals.total)
        await self.erp.follow()
        await signal(rep.shipment_id, FulfillmentWorkflow.cancel, CancelRequest(
            reason="в отгрузке не осталось товаров", by="operator"))
        await self.ports.notify("substitution", key_suffix=f"drop-{rep.shipment_id}", change=change)
        return TaskOutcome(task_id=d.task_id, action=d.action, message=f"{change}; сумма заказа "
                           f"{format_money(st.totals.total)}", total=st.totals.total, data={"change": change})

    def _shipment_lines(self, rep: ShortageReport, line: OrderLine, substitute: CatalogLine | None) -> list[OrderLine]:
        """The shipment's lines after the change, priced from the re-priced order lines."""
        st = self.state
        by_pos = {x.pos_id: x for x in st.lines}
        out = []
        for x in rep.lines:
            qty = x.qty - rep.missing_qty if x.pos_id == line.pos_id else x.qty
            priced = by_pos.get(x.pos_id)
            if qty > 0 and priced is not None:
                out.append(priced if qty == priced.qty else dataclasses.replace(
                    priced, qty=qty, discount=priced.discount * qty // priced.qty,
                    bonus=priced.bonus * qty // priced.qty))
        if substitute is not None:
            out.append(by_pos[substitute.pos_id])
        view = st.shipments.get(rep.shipment_id)
        if view is not None:
            st.shipments[rep.shipment_id] = dataclasses.replace(
                view, lines=[LineRequest(sku=x.sku, qty=x.qty) for x in out])
        return out

    # ------------------------------------------------------------------ the payment for the difference
    async def _when_difference_paid(self, rep: ShortageReport, line: OrderLine,
                                    revision: ShipmentRevision) -> ShipmentRevision | None:
        """Wait for the customer to pay the difference; unpaid in the window: drop the substitute."""
        st = self.state
        extra = next((p for p in st.differences if p.state == PaymentState.registered), None)
        if extra is None:
            return revision
        await self.payments.wait_for_difference(extra)
        if st.cancel is not None:
            return None  # the saga closes or reverses the difference with the rest
        if extra.answer is None or not extra.answer.success:
            await self.payments.drop_difference(extra)  # the link closed (paid meanwhile: it counts)
        if extra.answer is not None and extra.answer.success:
            self.payments.difference_held(extra)
            return revision
        return await self._drop_substitute(rep, line, revision, extra)

    async def _drop_substitute(self, rep: ShortageReport, line: OrderLine, revision: ShipmentRevision,
                               extra: Payment) -> ShipmentRevision:
        st = self.state
        st.note("extra_payment_missing", "Доплата не поступила: замена отменена, недостающий товар удалён")
        sub_pos = [x.pos_id for x in revision.lines if x.pos_id not in {y.pos_id for y in rep.lines}]
        await local(StockActivities.release_stock, SettleRequest(
            owner=st.wf_id, keys=[k for k in revision.reservation_keys if line_pos(k) in sub_pos]))
        await self.pricing.reprice([c for c in st.catalog if c.pos_id not in sub_pos])
        lines = self._shipment_lines(rep, line, None)
        await self.ports.notify("substitution", key_suffix=f"{revision.n}-nopay",
                                change=f"{line.name} × {rep.missing_qty} удалён из заказа")
        return ShipmentRevision(n=revision.n, lines=lines,
                                reservation_keys=[k for k in revision.reservation_keys if line_pos(k) not in sub_pos],
                                note=f"уберите {line.sku} × {rep.missing_qty}, замены не будет")
