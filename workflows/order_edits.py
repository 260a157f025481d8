"""An operator edits an order's lines before assembly starts (the ``edit_lines`` update).

The update's validator refuses at once (nothing changes) when the order can no longer change or the
edit is malformed; otherwise the edit waits in the order's inbox and the main loop applies it
(:meth:`Edits.apply`), checking it again against the order at that moment:

1. where each changed line lives: an existing line stays in its shipment; a new SKU goes to the
   first shipment whose location has it in stock (else refused: the order's stores lack it);
2. the new price from loyalty (``price_cart``);
3. what must stop first: an unpaid order's payment link is closed (``decline.do``; if the
   customer has just paid, the edit is refused and the payment wins); a paid order's shipments
   that change are asked to stop their store (``hold_for_edit``): each cancels its POS task
   and answers with what it holds, or refuses when the store has already assembled;
4. loyalty is re-priced (the transaction rolled back and begun again with the new lines);
5. stock is re-held in one transaction (``rehold_stock``: the changed lines' holds released and
   the new quantities held; shrinking never fails, growing needs only the difference);
6. an unpaid order gets a new payment link for the new total (orderNumber ``order-<id>~e<n>``)
   and a fresh payment window; a paid order will capture the new, smaller total at the end;
7. the stopped shipments get a ``revise`` with their new lines and holds (a new POS task).

A paid order made dearer than its card hold (the bank cannot raise a hold) takes another path
after step 3 (:meth:`Edits._dearer`): the extra units are held beside the old ones (nothing is
released), a link for the difference goes to the customer (``order-<id>~<n>``), the update answers
at once with ``pending_payment``, and the edit waits for the bank: paid → steps 4-5 and 7 (the
difference is captured with the rest at the end); unpaid in the payment window → the extra units
are released, the link closed, the stores resume the old lines; cancelled → the link is closed or
the difference reversed. No other edit is taken meanwhile.

A step failing after step 3 undoes what was done (loyalty re-priced back; an unpaid order gets a
link for its unchanged total; stopped shipments resume with their old lines) and the update fails
with the reason. Nothing is held twice or lost: stock changes are one keyed transaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.stock import StockActivities
    from contracts.edits import EditAnswer, EditHold, EditOutcome, LineEdit, OrderEdit
    from contracts.order import CatalogLine, LineRequest, OrderLine, OrderStatus, PaymentState, line_portion
    from contracts.steps import ErrorType, Priced, ReholdRequest, ReserveRequest, SettleRequest, StockViewRequest
    from contracts.stock import Allocation, line_key, line_pos
    from contracts.tasks import ShipmentRevision
    from domain.money import format_money
    from workflows.fulfillment import FulfillmentWorkflow

from workflows.common import STEP_FAILED, failure_message, failure_type, local, signal
from workflows.human import invalid
from workflows.inbox import Reply
from workflows.order_erp import Erp
from workflows.order_payments import Payments
from workflows.order_pricing import Pricing
from workflows.order_state import NOT_STARTED, OrderState, Payment, Ports

#: ApplicationError.type of an edit the order cannot take now (the API answers 409)
EDIT_REFUSED = "EditRefused"
#: how long the order waits for its shipments to stop their stores
HOLD_ANSWER_TIMEOUT = timedelta(minutes=2)


def refused(message: str, field_name: str | None = None, type_: str = EDIT_REFUSED) -> ApplicationError:
    """The edit cannot be applied now (details[0] names the field when one is to blame)."""
    if field_name:
        return ApplicationError(f"{field_name}: {message}", field_name, type=type_, non_retryable=True)
    return ApplicationError(message, type=type_, non_retryable=True)


@dataclass
class Row:
    """One order line in one shipment: its position, quantity and the ledger keys holding it."""

    pos: int
    sku: str
    qty: int
    keys: list[str]


@dataclass(frozen=True)
class Plan:
    """What an edit changes, worked out before anything changes."""

    n: int
    edit: OrderEdit
    old_catalog: list[CatalogLine]
    catalog: list[CatalogLine]
    priced: Priced
    home: dict[int, str]  # order line → the shipment it lives in
    rows: dict[str, list[Row]]  # the touched shipments' lines as held now


class Edits:
    def __init__(self, state: OrderState, ports: Ports, pricing: Pricing, payments: Payments, erp: Erp) -> None:
        self.state, self.ports, self.pricing, self.payments, self.erp = state, ports, pricing, payments, erp
        self.queued = 0  # edits accepted, waiting in the inbox
        self.active = False  # an edit is being applied
        self.pending = False  # a dearer edit waits for the payment of its difference
        self.waiting_for: int | None = None  # the edit whose shipments' answers are awaited
        self.answers: dict[str, EditAnswer] = {}

    # ------------------------------------------------------------------ the update's checks
    def check_idle(self) -> None:
        if self.queued or self.active or self.pending:
            raise refused("another edit of this order is in progress: try again when it is done")

    def validate(self, edit: OrderEdit, *, substitution_open: bool) -> None:
        """Whether the order can take ``edit`` now (raises a refusal naming the field)."""
        st = self.state
        if st.status.is_final or st.cancel is not None:
            raise refused(f"the order is {'being cancelled' if st.cancel else st.status.value}: "
                          "its lines cannot change")
        if st.status == OrderStatus.awaiting_payment:
            pass
        elif st.status in (OrderStatus.paid, OrderStatus.assembling) and not st.pickup:
            started = [sid for sid, v in st.shipments.items() if v.status not in NOT_STARTED]
            if started:
                raise refused(f"assembly has finished for {', '.join(started)}: the lines can no longer change")
            if substitution_open:
                raise refused("a missing item is being agreed with the customer: finish that task first")
            if st.differences:
                raise refused("the order has a payment of a difference: its lines can no longer change")
        else:
            raise refused(f"the order is {st.status.value}: lines change only before assembly starts"
                          + (" (a click & collect order, once paid, is set aside at the store)" if st.pickup else ""))
        if not edit.by.strip():
            raise invalid("by", "say who edits the order")
        if not edit.lines:
            raise invalid("lines", "name at least one line to change")
        in_order = {c.sku for c in st.catalog}
        seen: set[str] = set()
        for i, le in enumerate(edit.lines):
            where = f"lines[{i}]"
            if le.sku in seen:
                raise invalid(f"{where}.sku", f"{le.sku} is named twice: give one new quantity per SKU")
            seen.add(le.sku)
            if not 0 <= le.qty <= 99:
                raise invalid(f"{where}.qty", "must be between 0 (remove the line) and 99")
            if le.sku not in in_order:
                if le.qty == 0:
                    raise invalid(f"{where}.qty", f"{le.sku} is not in the order: there is nothing to remove")
                if le.name is None or le.unit_price is None:
                    raise invalid(f"{where}.sku", f"unknown SKU {le.sku!r}")
                if le.unit_price <= 0:
                    raise invalid(f"{where}.sku", f"{le.sku} has no price and is not for sale")
            elif len([sid for sid, v in st.shipments.items() if any(x.sku == le.sku for x in v.lines)]) > 1:
                raise invalid(f"{where}.sku", f"{le.sku} ships from several locations: change it by cancelling "
                                              "and placing the order again")
        new = _edited(st.catalog, edit.lines)
        if [(c.sku, c.qty) for c in new] == [(c.sku, c.qty) for c in st.catalog]:
            raise invalid("lines", "the edit changes nothing")
        if not new:
            raise invalid("lines", "the edit removes every line: cancel the order instead")

    # ------------------------------------------------------------------ applying one edit
    async def apply(self, edit: OrderEdit, reply: Reply[EditOutcome], *, substitution_open: bool) -> None:
        """Take the edit against the order as it is now; the update gets the outcome or the refusal."""
        self.queued -= 1
        try:
            self.validate(edit, substitution_open=substitution_open)
        except ApplicationError as err:
            reply.fail(err)
            return
        self.active = True
        self.state.edits += 1
        try:
            outcome = await self._apply(edit, self.state.edits, reply)
            if outcome is not None:
                reply.ok(outcome)
        except ApplicationError as err:
            reply.fail(err)
        finally:
            self.active = False

    async def _apply(self, edit: OrderEdit, n: int, reply: Reply[EditOutcome]) -> EditOutcome | None:
        st = self.state
        old_catalog = list(st.catalog)
        catalog = _edited(old_catalog, edit.lines)
        old_qty = {c.pos_id: c.qty for c in old_catalog}
        changed = [c for c in catalog if old_qty.get(c.pos_id) != c.qty]
        removed = [c for c in old_catalog if c.pos_id not in {x.pos_id for x in catalog}]
        # 1. where each changed line lives
        home = {c.pos_id: sid for c in old_catalog for sid, v in st.shipments.items()
                if any(x.sku == c.sku for x in v.lines)}
        await self._check_stock(changed, old_qty, edit, home)
        touched = sorted({home[c.pos_id] for c in [*changed, *removed]})
        # 2. the new price
        priced = await self.pricing.quote(catalog)
        total = priced.subtotal - priced.discount - priced.bonus_spent + st.totals.delivery
        unpaid = st.status == OrderStatus.awaiting_payment
        main = st.main_payment
        held = main.held if main is not None else 0
        plan = Plan(n=n, edit=edit, old_catalog=old_catalog, catalog=catalog, priced=priced, home=home,
                    rows={sid: self._rows(sid) for sid in touched})
        # 3. stop what must stop
        stopped: list[str] = []
        if unpaid:
            await self._close_payment_link()
        else:
            answers = await self._stop_shipments([sid for sid in touched if sid in st.children], n)
            stopped = [a.shipment_id for a in answers if a.ok]
            refusals = [a for a in answers if not a.ok]
            if refusals:
                await self._resume(stopped, n, "состав не изменился")
                raise refused("; ".join(f"{a.shipment_id}: {a.reason}" for a in refusals))
            for a in answers:  # what the running shipment really holds (it may have moved or been revised)
                plan.rows[a.shipment_id] = _rows_of(a.lines, a.reservation_keys)
        if not unpaid and total > held:  # the bank cannot raise a hold: a payment of the difference
            await self._dearer(plan, stopped, total - held, reply)
            return None
        # 4-5. loyalty, then stock
        before = st.totals.total
        try:
            await self.pricing.reprice(catalog, quoted=priced)
        except STEP_FAILED as err:
            await self._undo(old_catalog, unpaid, stopped, n)
            raise refused(f"loyalty refused the new lines: {failure_message(err)}") from err
        new_rows, release, allocations = self._rehold_plan(plan)
        try:
            await local(StockActivities.rehold_stock, ReholdRequest(owner=st.wf_id, release_keys=release,
                                                                     allocations=allocations))
        except STEP_FAILED as err:
            await self._undo(old_catalog, unpaid, stopped, n)
            if failure_type(err) == ErrorType.OUT_OF_STOCK:
                sku = next((a.sku for a in allocations if a.sku in failure_message(err)), "")
                raise refused(f"not enough stock: {failure_message(err)}", _field(edit, sku),
                              ErrorType.OUT_OF_STOCK) from err
            raise refused(f"the stock could not be held: {failure_message(err)}") from err
        self._commit_rows(new_rows)
        # 6. payment
        url = await self._new_payment_link(n) if unpaid else None
        # 7. the stopped shipments carry on with their new lines
        return await self._announce(plan, stopped, before, url)

    async def _announce(self, plan: Plan, stopped: list[str], before: int, url: str | None) -> EditOutcome:
        """The edit is in: stopped shipments get their new lines; timeline, projection, customer, ERP."""
        st = self.state
        for sid in stopped:
            await signal(sid, FulfillmentWorkflow.revise,
                         self._revision(sid, plan.n, "заказ изменён оператором: соберите по новому заданию"))
        changes = _describe(plan.old_catalog, plan.catalog)
        what = "; ".join(changes)
        edit = plan.edit
        st.note("order_edited", f"Состав изменён ({edit.by}{': ' + edit.reason if edit.reason else ''}): {what}. "
                                f"Сумма {format_money(before)} → {format_money(st.totals.total)}",
                by=edit.by, edit=plan.n, total=st.totals.total)
        await self.ports.save()
        await self.erp.follow()
        params: dict[str, object] = {"change": what, "total": format_money(st.totals.total)}
        if url:
            params["payment_url"] = url
        await self.ports.notify("order_changed_pay" if url else "order_changed", key_suffix=f"e{plan.n}", **params)
        return EditOutcome(order_id=st.order_id, n=plan.n, lines=list(st.lines), totals=st.totals,
                           message=f"{what}; сумма заказа {format_money(st.totals.total)}", payment_url=url,
                           changes=changes)

    # ------------------------------------------------------------------ a paid order made dearer
    async def _dearer(self, plan: Plan, stopped: list[str], difference: int, reply: Reply[EditOutcome]) -> None:
        """The card holds less than the new total: hold the extra units now (nothing is released),
        send a link for the difference, answer the operator at once, and apply the edit once it is
        paid. The stopped stores wait; unpaid in the payment window, the order goes on unchanged."""
        st = self.state
        extra_units = []
        for sid, shipment_rows in plan.rows.items():
            loc, have = st.shipments[sid].location_id, {r.pos: r.qty for r in shipment_rows}
            for c in plan.catalog:
                if plan.home.get(c.pos_id) == sid and c.qty > have.get(c.pos_id, 0):
                    extra_units.append(Allocation(key=line_key(st.wf_id, c.pos_id, loc, f"x{plan.n}"), sku=c.sku,
                                                  location_id=loc, qty=c.qty - have.get(c.pos_id, 0)))
        try:
            await local(StockActivities.reserve_stock, ReserveRequest(owner=st.wf_id, allocations=extra_units))
        except STEP_FAILED as err:
            await self._resume(stopped, plan.n, "состав не изменился, соберите по новому заданию")
            if failure_type(err) == ErrorType.OUT_OF_STOCK:
                sku = next((a.sku for a in extra_units if a.sku in failure_message(err)), "")
                raise refused(f"not enough stock: {failure_message(err)}", _field(plan.edit, sku),
                              ErrorType.OUT_OF_STOCK) from err
            raise refused(f"the stock could not be held: {failure_message(err)}") from err
        extra = await self.payments.register_difference(difference, item="Доплата за изменение заказа")
        changes = _describe(plan.old_catalog, plan.catalog)
        what = "; ".join(changes)
        st.note("order_edit_pending", f"Изменение состава ({plan.edit.by}): {what}. Доплата "
                                      f"{format_money(extra.amount)} по ссылке: изменение вступит после оплаты",
                by=plan.edit.by, edit=plan.n, amount=extra.amount)
        await self.ports.save()
        await self.ports.notify("edit_extra_payment", key_suffix=f"e{plan.n}", change=what,
                                amount=format_money(extra.amount), payment_url=extra.form_url)
        reply.ok(EditOutcome(order_id=st.order_id, n=plan.n, lines=list(st.lines), totals=st.totals,
                             message=f"{what}: ждём доплату {format_money(extra.amount)}",
                             payment_url=extra.form_url, changes=changes, pending_payment=extra.amount))
        self.pending = True
        try:
            await self._when_difference_paid(plan, extra, stopped, [a.key for a in extra_units])
        finally:
            self.pending = False

    async def _when_difference_paid(self, plan: Plan, extra: Payment, stopped: list[str],
                                    extra_keys: list[str]) -> None:
        st = self.state
        await self.payments.wait_for_difference(extra)
        if st.cancel is not None:  # the saga releases the stock and the main hold; the difference goes back
            await self.payments.drop_difference(extra)
            if extra.state != PaymentState.declined:
                await self.payments.reverse(extra)
            return
        if extra.answer is None or not extra.answer.success:
            await self.payments.drop_difference(extra)
            if extra.state == PaymentState.declined:
                await self._not_paid(plan.n, stopped, extra_keys)
                return
        self.payments.difference_held(extra)
        before = st.totals.total
        try:  # at the total the customer was quoted and paid the difference for
            await self.pricing.reprice(plan.catalog, quoted=plan.priced)
        except STEP_FAILED as err:  # paid, but loyalty refused: give the money back
            st.note("order_edit_failed", f"Программа лояльности не приняла новый состав: {failure_message(err)}")
            await self._undo(plan.old_catalog, False, stopped, plan.n)
            await local(StockActivities.release_stock, SettleRequest(owner=st.wf_id, keys=extra_keys))
            await self.payments.reverse(extra)
            await self.ports.save()
            return
        new_rows, release, allocations = self._rehold_plan(plan)
        # everything the new lines need is held already (old holds + the extra units): this always fits
        await local(StockActivities.rehold_stock, ReholdRequest(owner=st.wf_id, release_keys=release + extra_keys,
                                                                 allocations=allocations))
        self._commit_rows(new_rows)
        await self._announce(plan, stopped, before, None)

    async def _not_paid(self, n: int, stopped: list[str], extra_keys: list[str]) -> None:
        st = self.state
        await local(StockActivities.release_stock, SettleRequest(owner=st.wf_id, keys=extra_keys))
        await self._resume(stopped, n, "доплата не поступила: соберите прежний состав")
        st.note("order_edit_dropped", "Доплата не поступила: состав заказа не изменился")
        await self.ports.save()
        await self.ports.notify("order_changed", key_suffix=f"e{n}-nopay", change="доплата не поступила, состав прежний",
                                total=format_money(st.totals.total))

    # ------------------------------------------------------------------ the shipments' answers
    async def on_answer(self, answer: EditAnswer) -> None:
        if self.waiting_for == answer.n:
            self.answers[answer.shipment_id] = answer
        elif answer.ok:  # a late "stopped": nobody waits for it any more, let the shipment carry on
            await _carry_on(answer, answer.n, "состав не изменился")

    async def _stop_shipments(self, sids: list[str], n: int) -> list[EditAnswer]:
        self.answers, self.waiting_for = {}, n
        for sid in sids:
            await signal(sid, FulfillmentWorkflow.hold_for_edit, EditHold(n=n))
        await self.ports.wait(lambda: all(sid in self.answers for sid in sids), timeout=HOLD_ANSWER_TIMEOUT)
        self.waiting_for = None
        return [self.answers.get(sid) or EditAnswer(shipment_id=sid, n=n, ok=False,
                                                    reason="the shipment did not answer") for sid in sids]

    async def _resume(self, sids: list[str], n: int, note: str) -> None:
        """Stopped shipments carry on with what they had (as they answered)."""
        for sid in sids:
            await _carry_on(self.answers[sid], n, note)

    def _revision(self, sid: str, n: int, note: str) -> ShipmentRevision:
        """What a stopped shipment carries on with: its lines priced from the order, its holds."""
        st = self.state
        by_sku = {line.sku: line for line in st.lines}
        lines = [line_portion(by_sku[line.sku], line.qty) for line in st.shipments[sid].lines]
        return ShipmentRevision(n=n, lines=lines, reservation_keys=list(st.allocation_keys[sid]), note=note,
                                new_task=True)

    # ------------------------------------------------------------------ steps
    async def _check_stock(self, changed: list[CatalogLine], old_qty: dict[int, int], edit: OrderEdit,
                           home: dict[int, str]) -> None:
        """Before anything changes: a new SKU goes to the first of the order's shipments whose
        location has it; a grown line needs the difference free at its location. (Advisory: the
        re-hold in one transaction is what guarantees it.)"""
        st = self.state
        grown = [c for c in changed if c.qty > old_qty.get(c.pos_id, 0)]
        if not grown:
            return
        view = await local(StockActivities.load_stock_view, StockViewRequest(skus=sorted({c.sku for c in grown})))
        free = {(a.sku, a.location_id): a.available for a in view.available}
        for c in grown:
            need = c.qty - old_qty.get(c.pos_id, 0)
            if c.pos_id in home:
                places = [home[c.pos_id]]
            else:
                places = [sid for sid, v in st.shipments.items() if free.get((c.sku, v.location_id), 0) >= need]
            sid = next((sid for sid in places if free.get((c.sku, st.shipments[sid].location_id), 0) >= need), None)
            if sid is None:
                where = ", ".join(sorted({st.shipments[p].location_id for p in places} if places else
                                         {v.location_id for v in st.shipments.values()}))
                raise refused(f"{c.sku}: {need} more not in stock where the order ships from ({where})",
                              _field(edit, c.sku), ErrorType.OUT_OF_STOCK)
            home[c.pos_id] = sid

    def _rows(self, sid: str) -> list[Row]:
        """A shipment's lines as the order knows them (before its fulfillment started)."""
        st = self.state
        pos_of = {c.sku: c.pos_id for c in st.catalog}
        keys = st.allocation_keys.get(sid, [])
        return [Row(pos=pos_of[x.sku], sku=x.sku, qty=x.qty, keys=[k for k in keys if line_pos(k) == pos_of[x.sku]])
                for x in st.shipments[sid].lines]

    def _rehold_plan(self, plan: Plan) -> tuple[dict[str, list[Row]], list[str], list[Allocation]]:
        """The shipments' new rows, the keys to release and the holds to take (one per changed line)."""
        st = self.state
        qty = {c.pos_id: c.qty for c in plan.catalog}
        release: list[str] = []
        allocations: list[Allocation] = []
        out: dict[str, list[Row]] = {}
        for sid, shipment_rows in plan.rows.items():
            loc = st.shipments[sid].location_id
            new_rows = []
            for r in shipment_rows:
                want = qty.get(r.pos, 0)
                if want == r.qty:
                    new_rows.append(r)
                    continue
                release += r.keys
                key = line_key(st.wf_id, r.pos, loc, f"e{plan.n}")
                if want > 0:
                    allocations.append(Allocation(key=key, sku=r.sku, location_id=loc, qty=want))
                new_rows.append(Row(pos=r.pos, sku=r.sku, qty=want, keys=[key] if want else []))
            for c in plan.catalog:
                if plan.home.get(c.pos_id) == sid and all(r.pos != c.pos_id for r in shipment_rows):
                    key = line_key(st.wf_id, c.pos_id, loc, f"e{plan.n}")
                    allocations.append(Allocation(key=key, sku=c.sku, location_id=loc, qty=c.qty))
                    new_rows.append(Row(pos=c.pos_id, sku=c.sku, qty=c.qty, keys=[key]))
            out[sid] = new_rows
        return out, release, allocations

    def _commit_rows(self, new_rows: dict[str, list[Row]]) -> None:
        """The order's view of its shipments after the re-hold (a shipment left empty is dropped)."""
        st = self.state
        for sid, shipment_rows in new_rows.items():
            kept = [r for r in shipment_rows if r.qty > 0]
            if not kept:
                st.shipments.pop(sid, None)
                st.allocation_keys.pop(sid, None)
                continue
            st.shipments[sid] = dataclasses.replace(st.shipments[sid],
                                                    lines=[LineRequest(sku=r.sku, qty=r.qty) for r in kept])
            st.allocation_keys[sid] = [k for r in kept for k in r.keys]

    async def _close_payment_link(self) -> None:
        st = self.state
        main = st.main_payment
        if main is None:
            return
        try:
            await self.payments.close(main)
        except STEP_FAILED as err:
            if failure_type(err) == ErrorType.ALREADY_PAID:
                raise refused("the customer has just paid: the order goes on as paid; edit it again if needed") from err
            raise refused(f"the bank did not close the payment link: {failure_message(err)}") from err
        main.closed_by_edit = True
        st.note("payment_link_closed", f"Ссылка на оплату закрыта (mdOrder {main.md_order}): состав заказа меняется",
                md_order=main.md_order)

    async def _new_payment_link(self, n: int) -> str:
        st = self.state
        payment = await self.payments.register(order_number=f"{st.wf_id}~e{n}")
        st.note("payment_registered", f"Новая ссылка на оплату {format_money(st.totals.total)} (mdOrder "
                                      f"{payment.md_order}), окно оплаты заново", md_order=payment.md_order)
        return payment.form_url

    async def _undo(self, old_catalog: list[CatalogLine], unpaid: bool, stopped: list[str], n: int) -> None:
        """A step after the stop failed: loyalty back to the old lines, a payment link for the
        unchanged total, the stopped shipments carry on as they were."""
        st = self.state
        try:
            await self.pricing.reprice(old_catalog)
        except STEP_FAILED as err:  # the order still owes its loyalty purchase: say so
            st.note("loyalty_restore_failed", f"Программа лояльности не приняла прежний состав: "
                                              f"{failure_message(err)}; нужна проверка оператором")
        main = st.main_payment
        if unpaid and main is not None and main.closed_by_edit:
            url = await self._new_payment_link(n)
            await self.ports.notify("order_changed_pay", key_suffix=f"e{n}-kept", change="состав не изменился",
                                    total=format_money(st.totals.total), payment_url=url)
        await self._resume(stopped, n, "состав не изменился, соберите по новому заданию")


async def _carry_on(stopped: EditAnswer, n: int, note: str) -> None:
    """A stopped shipment goes on with the lines and holds it answered with (a new store task)."""
    await signal(stopped.shipment_id, FulfillmentWorkflow.revise, ShipmentRevision(
        n=n, lines=list(stopped.lines), reservation_keys=list(stopped.reservation_keys), note=note, new_task=True))


def _edited(catalog: list[CatalogLine], edits: list[LineEdit]) -> list[CatalogLine]:
    want = {e.sku: e for e in edits}
    out = [dataclasses.replace(c, qty=want[c.sku].qty) if c.sku in want else c for c in catalog]
    out = [c for c in out if c.qty > 0]
    next_pos = max((c.pos_id for c in catalog), default=0) + 1
    for e in edits:
        if e.sku not in {c.sku for c in catalog} and e.qty > 0:
            out.append(CatalogLine(pos_id=next_pos, sku=e.sku, name=e.name or e.sku, qty=e.qty,
                                   unit_price=e.unit_price or 0))
            next_pos += 1
    return out


def _rows_of(lines: list[OrderLine], keys: list[str]) -> list[Row]:
    return [Row(pos=x.pos_id, sku=x.sku, qty=x.qty, keys=[k for k in keys if line_pos(k) == x.pos_id]) for x in lines]


def _describe(old: list[CatalogLine], new: list[CatalogLine]) -> list[str]:
    before = {c.sku: c for c in old}
    after = {c.sku: c for c in new}
    out = []
    for sku in [*before, *(k for k in after if k not in before)]:
        a, b = before.get(sku), after.get(sku)
        if b is None and a is not None:
            out.append(f"{a.name} ({sku}) удалён")
        elif a is None and b is not None:
            out.append(f"добавлен {b.name} ({sku}) × {b.qty}")
        elif a is not None and b is not None and a.qty != b.qty:
            out.append(f"{a.name} ({sku}): {a.qty} → {b.qty}")
    return out


def _field(edit: OrderEdit, sku: str) -> str:
    i = next((i for i, le in enumerate(edit.lines) if le.sku == sku), None)
    return f"lines[{i}].sku" if i is not None else "lines"
