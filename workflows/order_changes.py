"""People changing an order (mixed into ``OrderWorkflow``): missing items and substitutions, the
payment that follows, and cancellation asked by a fulfillment child.

A shortage the store could not re-source (``shortage_reported`` from the fulfillment child) becomes
a substitution task for an operator, who agrees with the customer one of:

* ``substitute`` with SKU X (``qty``, default the missing quantity): X is held at the same store,
  the order is re-priced through loyalty (the loyalty transaction is rolled back and begun again
  with the new lines, so discounts, bonus write-off and accrual are exact);
* ``remove``: the missing units leave the order (re-priced the same way);
* ``cancel``: the whole order is cancelled (the saga compensates).

Nobody answers before the deadline → ``remove`` (the configured default). Payment follows: the
final capture is the re-priced total (``deposit.do`` of less than the hold releases the rest);
a dearer substitute needs a second hold for the difference (``registerPreAuth`` with orderNumber
``order-<id>~<n>``, the link sent to the customer); if it is not paid in the payment window the
substitute is dropped and the missing units removed instead. The shipment then gets a ``revise``
with its new lines and reservations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.messages import mask_phone
    from models.money import format_money
    from models.order import (
        CancelRequest,
        CatalogLine,
        LineRequest,
        OrderLine,
        PaymentEvent,
        ShipmentState,
        Totals,
    )
    from models.steps import (
        CaptureRequest,
        LoyaltyBegin,
        LoyaltyRef,
        PaymentRegistered,
        PaymentStatusResult,
        PriceRequest,
        Priced,
        RegisterPayment,
        ReserveRequest,
        ReverseRequest,
        SettleRequest,
    )
    from models.shortages import SUBSTITUTION_DEADLINE, SUBSTITUTION_DEFAULT, ShortageOutcome
    from models.shortages import lines_left_after_shortage, shortage_outcome
    from models.stock import Allocation
    from models.tasks import (
        OpenTask,
        ShipmentRevision,
        ShortageReport,
        TaskAction,
        TaskDecision,
        TaskKind,
        TaskOutcome,
        TaskSpec,
    )

from workflows.common import call, local, signal_workflow
from workflows.human import TaskBoard, invalid

EXTRA_PAYMENT_POLL = timedelta(minutes=5)


class Refused(Exception):
    """A decision that cannot be applied now (nothing was changed)."""


@dataclass
class ExtraPayment:
    n: int
    md_order: str
    amount: int
    form_url: str
    state: str = "registered"  # registered | held | declined | captured | reversed
    event: PaymentEvent | None = None


class Changes:
    def __init__(self) -> None:
        self.board = TaskBoard()
        self.catalog: list[CatalogLine] | None = None
        self.loyalty_gen = 0
        self.revisions = 0
        self.extras: list[ExtraPayment] = []
        self.dropped: set[str] = set()  # shipments left empty by a removal: cancelled, the order goes on


def line_pos(key: str) -> int:
    """The order line a reservation key holds (``models.stock.reservation_key`` shape)."""
    return int(key.split(":")[-3])


class OrderChanges:
    """Mixin: needs the OrderWorkflow state (``_inp``, ``_lines``, ``_totals``, ``_payment``,
    ``_shipments``, ``_children``, ``_cancel``, ``_status``) and helpers (``_event``, ``_save``,
    ``_notify``, ``_do``, ``_owner``, ``_loyalty_tx``)."""

    @property
    def _changes(self) -> Changes:
        if "_changes_state" not in self.__dict__:
            self.__dict__["_changes_state"] = Changes()
        return self.__dict__["_changes_state"]

    def _loyalty_suffix(self) -> str:
        gen = self._changes.loyalty_gen
        return f":{gen}" if gen else ""

    # ------------------------------------------------------------------ the shortage
    @workflow.signal
    async def shortage_reported(self, rep: ShortageReport) -> None:
        s: Any = self
        inp, ch = s._require_input(), self._changes
        line = next((l for l in rep.lines if l.sku == rep.sku), None)
        if line is None or s._status.is_final or s._cancel is not None:
            return
        s._event("shortage", f"Магазин {rep.location_id}: нет {line.name} ({rep.sku}) × {rep.missing_qty}",
                 shipment_id=rep.shipment_id, sku=rep.sku, missing_qty=rep.missing_qty)
        spec = TaskSpec(
            task_id=ch.board.next_id(TaskKind.substitution), kind=TaskKind.substitution, order_id=inp.order_id,
            workflow_id=workflow.info().workflow_id, location_id=rep.location_id, priority=20,
            title=f"Заказ {inp.order_id}: в магазине {rep.location_id} нет {line.name} ({rep.sku}) × "
                  f"{rep.missing_qty} — согласуйте с клиентом замену, удаление позиции или отмену",
            due_at=workflow.now() + SUBSTITUTION_DEADLINE,
            payload={"shipment_id": rep.shipment_id, "sku": rep.sku, "name": line.name,
                     "missing_qty": rep.missing_qty, "line_qty": line.qty, "unit_price": line.unit_price,
                     "default": SUBSTITUTION_DEFAULT.value, "customer": inp.customer.name,
                     "phone": mask_phone(inp.customer.phone)},
            channel=inp.channel.value, amount=s._totals.total,
            region=inp.delivery.address.region if inp.delivery.address else "",
        )
        s._event("task_opened", f"Задача оператору: {spec.title}", task_id=spec.task_id)
        await s._save()
        while True:
            decision = await ch.board.ask(spec, default=SUBSTITUTION_DEFAULT, reassign_after=SUBSTITUTION_DEADLINE / 2,
                                          stop=lambda: s._cancel is not None or s._status.is_final)
            if decision is None:
                return
            try:
                outcome, revision = await self._apply_substitution(rep, line, decision)
            except Refused as refusal:
                ch.board.refuse(decision, str(refusal))
                continue
            await ch.board.finish(decision, outcome)
            break
        who = "по умолчанию (оператор не ответил)" if decision.by == "timeout" else f"оператор {decision.by}"
        s._event("task_done", f"Решение ({who}): {outcome.message}", task_id=spec.task_id,
                 action=decision.action.value)
        if revision is not None:
            revision = await self._await_extra_payment(rep, line, revision)
        await s._save()
        if revision is not None and s._cancel is None:
            await signal_workflow(rep.shipment_id, "revise", revision)

    async def _apply_substitution(self, rep: ShortageReport, line: OrderLine,
                                  d: TaskDecision) -> tuple[TaskOutcome, ShipmentRevision | None]:
        s: Any = self
        inp, ch = s._require_input(), self._changes
        if d.action == TaskAction.cancel:
            await self._request_cancel(CancelRequest(
                reason=f"нет товара {line.name}, клиент отказался от замены", by="operator"))
            return TaskOutcome(task_id=d.task_id, action=d.action, message="Заказ отменяется"), None
        catalog = list(ch.catalog if ch.catalog is not None else inp.lines)
        kept = lines_left_after_shortage(rep.lines, rep.sku, rep.missing_qty)
        others = [sid for sid, v in s._shipments.items()
                  if sid != rep.shipment_id and sid not in ch.dropped and v.status != ShipmentState.cancelled]
        outcome = shortage_outcome(d.action, kept=kept, other_shipments=others)
        if outcome == ShortageOutcome.drop_shipment and workflow.patched("removal-drops-only-its-shipment"):
            return await self._drop_shipment(rep, line, d), None
        if outcome != ShortageOutcome.revise:
            await self._request_cancel(CancelRequest(
                reason=f"нет товара {line.name}: в отгрузке ничего не осталось", by="operator"))
            return TaskOutcome(task_id=d.task_id, action=d.action,
                               message="В отгрузке не осталось товаров: заказ отменяется"), None
        ch.revisions += 1
        n, owner = ch.revisions, s._owner
        new_keys = [k for k in rep.reservation_keys if line_pos(k) != line.pos_id]
        substitute: CatalogLine | None = None
        if d.action == TaskAction.substitute:
            assert d.offer is not None and d.sku is not None  # the validator saw to it
            qty = d.qty or rep.missing_qty
            substitute = CatalogLine(pos_id=max(l.pos_id for l in catalog) + 1, sku=d.sku, name=d.offer.name, qty=qty,
                                     unit_price=d.offer.unit_price)
            key = f"{owner}:{substitute.pos_id}:{rep.location_id}:s{n}"
            try:
                await local("reserve_stock", ReserveRequest(owner=owner, allocations=[Allocation(
                    key=key, sku=d.sku, location_id=rep.location_id, qty=qty)]))
            except (ActivityError, ApplicationError) as err:
                ch.revisions -= 1
                raise Refused(f"{d.sku} is out of stock at {rep.location_id} now") from err
            new_keys.append(key)
        # the short line: release its units here and hold what is left of it
        left = line.qty - rep.missing_qty
        await local("release_stock", SettleRequest(owner=owner, keys=[k for k in rep.reservation_keys
                                                                     if line_pos(k) == line.pos_id]))
        if left > 0:
            key = f"{owner}:{line.pos_id}:{rep.location_id}:v{n}"
            await local("reserve_stock", ReserveRequest(owner=owner, allocations=[Allocation(
                key=key, sku=line.sku, location_id=rep.location_id, qty=left)]))
            new_keys.append(key)
        catalog = [dataclasses.replace(c, qty=c.qty - rep.missing_qty) if c.pos_id == line.pos_id else c
                   for c in catalog]
        catalog = [c for c in catalog if c.qty > 0] + ([substitute] if substitute else [])
        before = s._totals.total
        await self._reprice(catalog)
        change = (f"вместо {line.name} × {rep.missing_qty} — {substitute.name} × {substitute.qty}" if substitute
                  else f"{line.name} × {rep.missing_qty} удалён из заказа")
        s._event("order_changed", f"Состав изменён: {change}. Сумма {format_money(before)} → "
                                  f"{format_money(s._totals.total)}", total=s._totals.total)
        if workflow.patched("erp-order-follows-changes"):
            self._erp_follows()
        shipment_lines = self._shipment_lines(rep, line, substitute)
        revision = ShipmentRevision(n=n, lines=shipment_lines, reservation_keys=new_keys,
                                    note=(f"положите {substitute.sku} × {substitute.qty} вместо {line.sku} × "
                                          f"{rep.missing_qty}" if substitute else
                                          f"уберите {line.sku} × {rep.missing_qty}, соберите остальное"))
        extra_url = None
        if s._totals.total > s._payment.held + sum(e.amount for e in ch.extras if e.state == "held"):
            extra = await self._register_extra(s._totals.total - s._payment.held)
            extra_url = extra.form_url
            await s._notify("extra_payment", key_suffix=str(extra.n), amount=format_money(extra.amount),
                            payment_url=extra.form_url)
        else:
            await s._notify("substitution", key_suffix=str(n), change=change)
        message = f"{change}; сумма заказа {format_money(s._totals.total)}"
        if extra_url:
            message += f"; доплата {format_money(ch.extras[-1].amount)} по ссылке"
        return TaskOutcome(task_id=d.task_id, action=d.action, message=message, total=s._totals.total,
                           extra_payment_url=extra_url, data={"change": change}), revision

    async def _drop_shipment(self, rep: ShortageReport, line: OrderLine, d: TaskDecision) -> TaskOutcome:
        """The removal leaves a shipment of a multi-shipment order empty: that shipment is
        cancelled (its holds released, its store told) and the rest of the order goes on,
        re-priced without it."""
        s: Any = self
        ch = self._changes
        ch.dropped.add(rep.shipment_id)
        await local("release_stock", SettleRequest(owner=s._owner, keys=list(rep.reservation_keys)))
        shipped_here = {l.pos_id: l.qty for l in rep.lines}
        catalog = [dataclasses.replace(c, qty=c.qty - shipped_here.get(c.pos_id, 0))
                   for c in (ch.catalog if ch.catalog is not None else s._require_input().lines)]
        before = s._totals.total
        await self._reprice([c for c in catalog if c.qty > 0])
        change = f"{line.name} × {rep.missing_qty} удалён, отгрузка {rep.shipment_id} отменена"
        s._event("order_changed", f"Состав изменён: {change}. Сумма {format_money(before)} → "
                                  f"{format_money(s._totals.total)}", total=s._totals.total)
        self._erp_follows()
        await signal_workflow(rep.shipment_id, "cancel", CancelRequest(
            reason="в отгрузке не осталось товаров", by="operator"))
        await s._notify("substitution", key_suffix=f"drop-{rep.shipment_id}", change=change)
        return TaskOutcome(task_id=d.task_id, action=d.action, message=f"{change}; сумма заказа "
                           f"{format_money(s._totals.total)}", total=s._totals.total, data={"change": change})

    def _erp_follows(self) -> None:
        """Lines or total changed after the ERP got the order: update it there (from ``_flush``)."""
        if self.__dict__.get("_erp_exported"):
            self.__dict__["_erp_dirty"] = True
            self.__dict__["_dirty"] = True

    def _shipment_lines(self, rep: ShortageReport, line: OrderLine, substitute: CatalogLine | None) -> list[OrderLine]:
        """The shipment's lines after the change, priced from the re-priced order lines."""
        s: Any = self
        by_pos = {l.pos_id: l for l in s._lines}
        out = []
        for l in rep.lines:
            qty = l.qty - rep.missing_qty if l.pos_id == line.pos_id else l.qty
            priced = by_pos.get(l.pos_id)
            if qty > 0 and priced is not None:
                out.append(priced if qty == priced.qty else dataclasses.replace(
                    priced, qty=qty, discount=priced.discount * qty // priced.qty, bonus=priced.bonus * qty // priced.qty))
        if substitute is not None:
            out.append(by_pos[substitute.pos_id])
        view = s._shipments.get(rep.shipment_id)
        if view is not None:
            s._shipments[rep.shipment_id] = dataclasses.replace(
                view, lines=[LineRequest(sku=l.sku, qty=l.qty) for l in out])
        return out

    async def _reprice(self, catalog: list[CatalogLine], quoted: Priced | None = None) -> None:
        """Roll the loyalty transaction back and begin it again with ``catalog``: exact lines and totals.
        ``quoted``: the price already calculated for ``catalog`` (an operator's edit priced it before
        anything changed); loyalty must begin at that total, else it refuses."""
        s: Any = self
        inp, ch = s._require_input(), self._changes
        await call("rollback_loyalty", LoyaltyRef(inp.order_id, s._loyalty_tx))
        priced = quoted or await call("price_cart", PriceRequest(phone=inp.customer.phone, lines=catalog,
                                                                    bonus_to_spend=inp.bonus_to_spend,
                                                                    promo_code=inp.promo_code), result_type=Priced)
        ch.loyalty_gen += 1
        priced = await call("begin_loyalty", LoyaltyBegin(
            purchase_id=inp.order_id, transaction_id=s._loyalty_tx, phone=inp.customer.phone, lines=catalog,
            bonus_to_spend=inp.bonus_to_spend, expected_total=priced.subtotal - priced.discount - priced.bonus_spent,
            promo_code=inp.promo_code), result_type=Priced)
        ch.catalog = catalog
        s._lines = priced.lines
        s._bonus_to_accrue = priced.bonus_to_accrue
        delivery = s._totals.delivery
        goods = priced.subtotal - priced.discount - priced.bonus_spent
        s._totals = Totals(subtotal=priced.subtotal, discount=priced.discount, bonus_spent=priced.bonus_spent,
                           delivery=delivery, total=goods + delivery, currency=inp.currency)

    # ------------------------------------------------------------------ the payment for the difference
    async def _register_extra(self, amount: int, item: str = "Доплата за замену товара") -> ExtraPayment:
        s: Any = self
        inp, ch = s._require_input(), self._changes
        n = len(ch.extras) + 2
        reg = await call("register_payment", RegisterPayment(
            order_number=f"{workflow.info().workflow_id}~{n}", amount=amount, currency=inp.currency,
            description=f"Доплата по заказу {inp.order_id}",
            lines=[OrderLine(pos_id=900 + n, sku="SURCHARGE", name=item, qty=1, unit_price=amount)],
            phone=inp.customer.phone, email=inp.customer.email,
            session_timeout_secs=inp.payment_window_minutes * 60), result_type=PaymentRegistered)
        extra = ExtraPayment(n=n, md_order=reg.md_order, amount=amount, form_url=reg.form_url)
        ch.extras.append(extra)
        s._event("extra_payment_registered", f"Доплата {format_money(amount)}: ссылка отправлена клиенту",
                 md_order=reg.md_order, amount=amount)
        return extra

    async def _await_extra_payment(self, rep: ShortageReport, line: OrderLine,
                                   revision: ShipmentRevision) -> ShipmentRevision | None:
        """Wait for the customer to pay the difference; unpaid in the window: drop the substitute."""
        s: Any = self
        ch = self._changes
        extra = next((e for e in ch.extras if e.state == "registered"), None)
        if extra is None:
            return revision
        await self._wait_for_extra(extra)
        if s._cancel is not None:
            return None
        if extra.event is not None and extra.event.success:
            extra.state = "held"
            s._do("reverse the extra payment", lambda: call("reverse_payment", ReverseRequest(
                md_order=extra.md_order, idempotency_key=f"{workflow.info().workflow_id}~{extra.n}:reverse")))
            s._event("extra_payment_held", f"Доплата {format_money(extra.amount)} удержана банком")
            return revision
        extra.state = "declined"
        s._event("extra_payment_missing", "Доплата не поступила: замена отменена, недостающий товар удалён")
        # drop the substitute: release it, re-price without it
        sub_pos = [l.pos_id for l in revision.lines if l.pos_id not in {x.pos_id for x in rep.lines}]
        await local("release_stock", SettleRequest(owner=s._owner, keys=[k for k in revision.reservation_keys
                                                                       if line_pos(k) in sub_pos]))
        catalog = [c for c in (ch.catalog or []) if c.pos_id not in sub_pos]
        await self._reprice(catalog)
        if workflow.patched("erp-order-follows-changes"):
            self._erp_follows()
        lines = self._shipment_lines(rep, line, None)
        await s._notify("substitution", key_suffix=f"{revision.n}-nopay",
                        change=f"{line.name} × {rep.missing_qty} удалён из заказа")
        return ShipmentRevision(n=revision.n, lines=lines,
                                reservation_keys=[k for k in revision.reservation_keys if line_pos(k) not in sub_pos],
                                note=f"уберите {line.sku} × {rep.missing_qty}, замены не будет")

    async def _wait_for_extra(self, extra: ExtraPayment) -> None:
        """Until the bank answers for ``extra`` (callback, or polled), the order is cancelled, or
        the payment window passes (``extra.event`` stays None)."""
        s: Any = self
        inp = s._require_input()
        deadline = workflow.now() + timedelta(minutes=inp.payment_window_minutes)
        while extra.event is None and s._cancel is None and workflow.now() < deadline:
            try:
                await workflow.wait_condition(lambda: extra.event is not None or s._cancel is not None,
                                              timeout=min(EXTRA_PAYMENT_POLL, deadline - workflow.now()))
            except TimeoutError:
                st = await call("payment_status", extra.md_order, result_type=PaymentStatusResult)
                if st.order_status in (1, 2):
                    extra.event = PaymentEvent(md_order=extra.md_order, operation="approved", success=True)
                elif st.order_status == 6:
                    extra.event = PaymentEvent(md_order=extra.md_order, operation="approved", success=False)

    def _on_extra_payment(self, event: PaymentEvent) -> bool:
        """A bank callback for a payment of the difference (orderNumber ``order-<id>~<n>``)."""
        extra = next((e for e in self._changes.extras if e.md_order == event.md_order), None)
        if extra is None:
            return False
        if extra.event is None and event.operation in ("approved", "declinedByTimeout"):
            extra.event = event
        s: Any = self
        s._event("payment_callback", f"Банк (доплата): {event.operation}, {'успех' if event.success else 'отказ'}",
                 md_order=event.md_order)
        return True

    def _capture_amount(self) -> int:
        """What the first hold captures: the shipped total, at most what it holds."""
        s: Any = self
        held = s._payment.held or s._totals.total
        return min(s._totals.total, held)

    async def _capture_extra(self) -> None:
        """Capture the rest of the shipped total from the payments of the difference; release the others."""
        s: Any = self
        rest = s._totals.total - self._capture_amount()
        for extra in self._changes.extras:
            if extra.state != "held":
                continue
            take = min(rest, extra.amount)
            if take > 0:
                await call("capture_payment", CaptureRequest(md_order=extra.md_order, amount=take,
                                                              idempotency_key=f"{workflow.info().workflow_id}~{extra.n}:capture"))
                extra.state = "captured"
                rest -= take
                s._event("captured", f"Списано {format_money(take)} по доплате (deposit.do)", md_order=extra.md_order)
            else:
                await call("reverse_payment", ReverseRequest(
                    md_order=extra.md_order, idempotency_key=f"{workflow.info().workflow_id}~{extra.n}:reverse"))
                extra.state = "reversed"

    # ------------------------------------------------------------------ cancellation asked from inside
    @workflow.signal
    async def cancel_order(self, req: CancelRequest) -> None:
        """A fulfillment child (operator's decision on an escalation) asks to cancel the order."""
        await self._request_cancel(req)

    async def _request_cancel(self, req: CancelRequest) -> None:
        s: Any = self
        if s._status.is_final or s._cancel is not None:
            return
        s._cancel = req
        s._event("cancel_requested", f"Запрошена отмена ({req.by}): {req.reason}")
        for handle in getattr(s, "_children", []):
            await signal_workflow(handle.id, "cancel", req)

    # ------------------------------------------------------------------ the operator's Update
    @workflow.update
    async def complete_task(self, d: TaskDecision) -> TaskOutcome:
        return await self._changes.board.complete(d)

    @complete_task.validator
    def _validate_complete_task(self, d: TaskDecision) -> None:
        s: Any = self
        task = self._changes.board.validate(d)
        if task.kind != TaskKind.substitution or d.action != TaskAction.substitute:
            return
        p = task.payload
        if not d.sku:
            raise invalid("sku", "required: the SKU to give instead of the missing item")
        if d.offer is None:
            raise invalid("sku", f"unknown SKU {d.sku!r}")
        if d.sku == p["sku"]:
            raise invalid("sku", f"{d.sku} is the missing item itself")
        if any(l.sku == d.sku for l in s._lines):
            raise invalid("sku", f"{d.sku} is already in the order")
        qty = d.qty or p["missing_qty"]
        if qty < 1 or qty > 99:
            raise invalid("qty", "must be between 1 and 99")
        if d.offer.available < qty:
            raise invalid("sku", f"{d.sku} is out of stock at {task.location_id}: {d.offer.available} available, "
                                 f"{qty} needed")

    @workflow.query
    def open_tasks(self) -> list[OpenTask]:
        return self._changes.board.listing()

    def _shipment_moved(self, shipment_id: str, location_id: object) -> None:
        """A shipment moved to another location (escalation or shortage): keep the view right."""
        s: Any = self
        view = s._shipments.get(shipment_id)
        if view is not None and isinstance(location_id, str) and location_id:
            s._shipments[shipment_id] = dataclasses.replace(view, location_id=location_id)
