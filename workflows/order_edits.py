"""An operator edits an order's lines before assembly starts (mixed into ``OrderWorkflow``).

``edit_lines`` is a Temporal Update: its validator refuses at once (nothing changes) when the
order can no longer change or the edit is malformed; the handler then does, in this order:

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
after step 3 (``_dearer_edit``): the extra units are held beside the old ones (nothing released),
a link for the difference goes to the customer (``order-<id>~<n>``), the Update answers at once
with ``pending_payment``, and a workflow task waits for the bank: paid → steps 4-5 and 7 (the
difference is captured with the rest at the end); unpaid in the payment window → the extra units
are released, the link closed, the stores resume the old lines; cancelled → the link is closed or
the difference reversed. No other edit is taken meanwhile.

A step failing after step 3 undoes what was done (loyalty re-priced back; an unpaid order gets a
link for its unchanged total; stopped shipments resume with their old lines) and the Update fails
with the reason. Nothing is held twice or lost: stock changes are one keyed transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.edits import EditAnswer, EditHold, EditOutcome, LineEdit, OrderEdit
    from domain.money import format_money
    from contracts.order import (
        CatalogLine,
        DeliveryMethod,
        LineRequest,
        OrderLine,
        OrderStatus,
        PaymentEvent,
        PaymentState,
        PaymentView,
        ShipmentState,
        line_portion,
    )
    from contracts.steps import (
        ErrorType,
        PaymentRegistered,
        PriceRequest,
        Priced,
        ReholdRequest,
        RegisterPayment,
        ReserveRequest,
        ReverseRequest,
        SettleRequest,
        StockViewRequest,
    )
    from contracts.stock import Allocation, StockView
    from contracts.tasks import ShipmentRevision

from workflows.common import call, failure_message, failure_type, local, signal_workflow
from workflows.human import invalid
from workflows.order_changes import line_pos

#: ApplicationError.type of an edit the order cannot take now (the API answers 409)
EDIT_REFUSED = "EditRefused"
#: how long the order waits for its shipments to stop their stores
HOLD_ANSWER_TIMEOUT = timedelta(minutes=2)
NOT_STARTED = (ShipmentState.planned, ShipmentState.assembling)


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


@dataclass
class Edits:
    n: int = 0
    active: bool = False
    pending: bool = False  # a dearer edit of a paid order waits for the payment of the difference
    pending_task: "asyncio.Task[None] | None" = None
    children_starting: bool = False
    answers: dict[str, EditAnswer] = field(default_factory=dict)
    declined: list[str] = field(default_factory=list)  # payment registrations closed by an edit
    payment_deadline: datetime | None = None


class OrderEdits:
    """Mixin: needs the OrderWorkflow state and the ``OrderChanges`` helpers (``_reprice``,
    ``_changes``)."""

    @property
    def _edits(self) -> Edits:
        if "_edits_state" not in self.__dict__:
            self.__dict__["_edits_state"] = Edits()
        return self.__dict__["_edits_state"]

    # ------------------------------------------------------------------ the Update
    @workflow.update
    async def edit_lines(self, edit: OrderEdit) -> EditOutcome:
        st = self._edits
        if st.active:  # two edits validated in one activation: the first one to run wins
            raise refused("another edit of this order is in progress: try again when it is done")
        st.active, st.n = True, st.n + 1
        try:
            return await self._apply_edit(edit, st.n)
        finally:
            st.active = st.pending  # a dearer edit of a paid order stays in progress until the customer pays

    @edit_lines.validator
    def _validate_edit_lines(self, edit: OrderEdit) -> None:
        s: Any = self
        inp = s._require_input()
        if s._status.is_final or s._cancel is not None:
            raise refused(f"the order is {'being cancelled' if s._cancel else s._status.value}: its lines cannot change")
        if self._edits.active:
            raise refused("another edit of this order is in progress: try again when it is done")
        if s._status == OrderStatus.awaiting_payment:
            pass
        elif s._status in (OrderStatus.paid, OrderStatus.assembling) and inp.delivery.method != DeliveryMethod.pickup:
            started = [sid for sid, v in s._shipments.items() if v.status not in NOT_STARTED]
            if started:
                raise refused(f"assembly has finished for {', '.join(started)}: the lines can no longer change")
            if self._edits.children_starting and len(s._children) < len(s._shipments):
                raise refused("the stores are being given the order right now: try again in a moment")
            if s._changes.board.open:
                raise refused("a missing item is being agreed with the customer: finish that task first")
            if s._changes.extras:
                raise refused("the order has a payment of a difference: its lines can no longer change")
        else:
            raise refused(f"the order is {s._status.value}: lines change only before assembly starts"
                          + (" (a click & collect order, once paid, is set aside at the store)"
                             if inp.delivery.method == DeliveryMethod.pickup else ""))
        if not edit.by.strip():
            raise invalid("by", "say who edits the order")
        if not edit.lines:
            raise invalid("lines", "name at least one line to change")
        catalog = self._catalog()
        in_order = {c.sku for c in catalog}
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
            elif len([sid for sid, v in s._shipments.items() if any(l.sku == le.sku for l in v.lines)]) > 1:
                raise invalid(f"{where}.sku", f"{le.sku} ships from several locations: change it by cancelling "
                                              "and placing the order again")
        new = _edited(catalog, edit.lines)
        if [(c.sku, c.qty) for c in new] == [(c.sku, c.qty) for c in catalog]:
            raise invalid("lines", "the edit changes nothing")
        if not new:
            raise invalid("lines", "the edit removes every line: cancel the order instead")

    # ------------------------------------------------------------------ the handler
    async def _apply_edit(self, edit: OrderEdit, n: int) -> EditOutcome:
        s: Any = self
        inp = s._require_input()
        old_catalog = self._catalog()
        catalog = _edited(old_catalog, edit.lines)
        old_qty = {c.pos_id: c.qty for c in old_catalog}
        changed = [c for c in catalog if old_qty.get(c.pos_id) != c.qty]
        removed = [c for c in old_catalog if c.pos_id not in {x.pos_id for x in catalog}]
        # 1. where each changed line lives
        home = {c.pos_id: sid for c in old_catalog for sid, v in s._shipments.items()
                if any(l.sku == c.sku for l in v.lines)}
        await self._check_stock(changed, old_qty, edit, home)
        touched = sorted({home[c.pos_id] for c in [*changed, *removed]})
        # 2. the new price
        priced = await call("price_cart", PriceRequest(phone=inp.customer.phone, lines=catalog,
                                                          bonus_to_spend=inp.bonus_to_spend,
                                                          promo_code=inp.promo_code), result_type=Priced)
        total = priced.subtotal - priced.discount - priced.bonus_spent + s._totals.delivery
        unpaid = s._status == OrderStatus.awaiting_payment
        dearer = not unpaid and total > s._payment.held  # the bank cannot raise a hold: a payment of the difference
        # 3. stop what must stop
        running = {h.id for h in s._children}
        stopped: list[str] = []
        rows = {sid: self._rows(sid) for sid in touched}
        if unpaid:
            await self._close_payment_link()
        else:
            answers = await self._stop_shipments([sid for sid in touched if sid in running], n)
            stopped = [a.shipment_id for a in answers if a.ok]
            refusals = [a for a in answers if not a.ok]
            if refusals:
                await self._resume(stopped, n, "состав не изменился")
                raise refused("; ".join(f"{a.shipment_id}: {a.reason}" for a in refusals))
            for a in answers:  # what the running shipment really holds (it may have moved or been revised)
                rows[a.shipment_id] = _rows_of(a.lines, a.reservation_keys)
        if dearer:
            return await self._dearer_edit(edit, n, old_catalog, catalog, priced, rows, home, stopped, total)
        # 4-5. loyalty, then stock
        before = s._totals.total
        try:
            await s._reprice(catalog, quoted=priced)
        except (ActivityError, ApplicationError) as err:
            await self._undo_edit(old_catalog, unpaid, stopped, n)
            raise refused(f"loyalty refused the new lines: {failure_message(err)}") from err
        new_rows, release, allocations = self._rehold_plan(rows, catalog, home, n)
        try:
            await local("rehold_stock", ReholdRequest(owner=s._owner, release_keys=release, allocations=allocations))
        except (ActivityError, ApplicationError) as err:
            await self._undo_edit(old_catalog, unpaid, stopped, n)
            if failure_type(err) == ErrorType.OUT_OF_STOCK:
                sku = next((a.sku for a in allocations if a.sku in failure_message(err)), "")
                raise refused(f"not enough stock: {failure_message(err)}", _field(edit, sku), ErrorType.OUT_OF_STOCK)
            raise refused(f"the stock could not be held: {failure_message(err)}") from err
        self._commit_rows(new_rows)
        # 6. payment
        url = None
        if unpaid:
            url = await self._new_payment_link(n)
        # 7. the stopped shipments carry on with their new lines
        return await self._announce(edit, n, old_catalog, catalog, stopped, before, url)

    async def _announce(self, edit: OrderEdit, n: int, old_catalog: list[CatalogLine], catalog: list[CatalogLine],
                        stopped: list[str], before: int, url: str | None) -> EditOutcome:
        """The edit is in: stopped shipments get their new lines; timeline, projection, customer, ERP."""
        s: Any = self
        s._erp_follows()
        for sid in stopped:
            await signal_workflow(sid, "revise", self._revision(sid, n, "заказ изменён оператором: соберите по "
                                                                       "новому заданию"))
        changes = _describe(old_catalog, catalog)
        what = "; ".join(changes)
        s._event("order_edited", f"Состав изменён ({edit.by}{': ' + edit.reason if edit.reason else ''}): {what}. "
                                 f"Сумма {format_money(before)} → {format_money(s._totals.total)}",
                 by=edit.by, edit=n, total=s._totals.total)
        await s._save()
        params: dict[str, object] = {"change": what, "total": format_money(s._totals.total)}
        if url:
            params["payment_url"] = url
        await s._notify("order_changed_pay" if url else "order_changed", key_suffix=f"e{n}", **params)
        return EditOutcome(order_id=s._require_input().order_id, n=n, lines=list(s._lines), totals=s._totals,
                           message=f"{what}; сумма заказа {format_money(s._totals.total)}", payment_url=url,
                           changes=changes)

    def _commit_rows(self, new_rows: dict[str, list[Row]]) -> None:
        """The order's view of its shipments after the re-hold (a shipment left empty is dropped)."""
        s: Any = self
        for sid, shipment_rows in new_rows.items():
            kept = [r for r in shipment_rows if r.qty > 0]
            if not kept:
                s._shipments.pop(sid, None)
                s._allocation_keys.pop(sid, None)
                continue
            s._shipments[sid] = dataclasses.replace(s._shipments[sid], lines=[LineRequest(sku=r.sku, qty=r.qty)
                                                                              for r in kept])
            s._allocation_keys[sid] = [k for r in kept for k in r.keys]

    # ------------------------------------------------------------------ a paid order made dearer
    async def _dearer_edit(self, edit: OrderEdit, n: int, old_catalog: list[CatalogLine], catalog: list[CatalogLine],
                           priced: Priced, rows: dict[str, list[Row]], home: dict[int, str], stopped: list[str],
                           total: int) -> EditOutcome:
        """The card holds less than the new total: hold the extra units now (nothing is released),
        send a link for the difference, and apply the edit once it is paid (``_finish_dearer_edit``).
        The stopped stores wait; unpaid in the payment window, the order goes on unchanged."""
        s: Any = self
        st = self._edits
        extra_units = []
        for sid, shipment_rows in rows.items():
            loc, have = s._shipments[sid].location_id, {r.pos: r.qty for r in shipment_rows}
            for c in catalog:
                if home.get(c.pos_id) == sid and c.qty > have.get(c.pos_id, 0):
                    extra_units.append(Allocation(key=f"{s._owner}:{c.pos_id}:{loc}:x{n}", sku=c.sku, location_id=loc,
                                                  qty=c.qty - have.get(c.pos_id, 0)))
        try:
            await local("reserve_stock", ReserveRequest(owner=s._owner, allocations=extra_units))
        except (ActivityError, ApplicationError) as err:
            await self._resume(stopped, n, "состав не изменился, соберите по новому заданию")
            if failure_type(err) == ErrorType.OUT_OF_STOCK:
                sku = next((a.sku for a in extra_units if a.sku in failure_message(err)), "")
                raise refused(f"not enough stock: {failure_message(err)}", _field(edit, sku), ErrorType.OUT_OF_STOCK)
            raise refused(f"the stock could not be held: {failure_message(err)}") from err
        extra = await s._register_extra(total - s._payment.held, item="Доплата за изменение заказа")
        changes = _describe(old_catalog, catalog)
        what = "; ".join(changes)
        s._event("order_edit_pending", f"Изменение состава ({edit.by}): {what}. Доплата {format_money(extra.amount)} "
                                       "по ссылке: изменение вступит после оплаты", by=edit.by, edit=n,
                 amount=extra.amount)
        await s._save()
        await s._notify("edit_extra_payment", key_suffix=f"e{n}", change=what, amount=format_money(extra.amount),
                        payment_url=extra.form_url)
        st.pending = True
        st.pending_task = asyncio.create_task(self._finish_dearer_edit(
            edit, n, extra, old_catalog, catalog, priced, rows, home, stopped, [a.key for a in extra_units]))
        return EditOutcome(order_id=s._require_input().order_id, n=n, lines=list(s._lines), totals=s._totals,
                           message=f"{what}: ждём доплату {format_money(extra.amount)}", payment_url=extra.form_url,
                           changes=changes, pending_payment=extra.amount)

    async def _finish_dearer_edit(self, edit: OrderEdit, n: int, extra: Any, old_catalog: list[CatalogLine],
                                  catalog: list[CatalogLine], priced: Priced, rows: dict[str, list[Row]],
                                  home: dict[int, str], stopped: list[str], extra_keys: list[str]) -> None:
        s: Any = self
        st = self._edits
        try:
            await s._wait_for_extra(extra)
            if s._cancel is not None:  # the saga releases the stock and the main hold; the difference goes back
                await self._drop_extra(extra)
                if extra.state != "declined":
                    await call("reverse_payment", ReverseRequest(
                        md_order=extra.md_order, idempotency_key=f"{workflow.info().workflow_id}~{extra.n}:reverse"))
                    extra.state = "reversed"
                return
            if extra.event is None or not extra.event.success:
                await self._drop_extra(extra)
                if extra.state == "declined":
                    await self._edit_not_paid(n, stopped, extra_keys)
                    return
            extra.state = "held"
            s._do("reverse the extra payment", lambda: call("reverse_payment", ReverseRequest(
                md_order=extra.md_order, idempotency_key=f"{workflow.info().workflow_id}~{extra.n}:reverse")))
            s._event("extra_payment_held", f"Доплата {format_money(extra.amount)} удержана банком")
            before = s._totals.total
            try:  # at the total the customer was quoted and paid the difference for
                await s._reprice(catalog, quoted=priced)
            except (ActivityError, ApplicationError) as err:  # paid, but loyalty refused: give the money back
                s._event("order_edit_failed", f"Программа лояльности не приняла новый состав: {failure_message(err)}")
                await self._undo_edit(old_catalog, False, stopped, n)
                await local("release_stock", SettleRequest(owner=s._owner, keys=extra_keys))
                await call("reverse_payment", ReverseRequest(
                    md_order=extra.md_order, idempotency_key=f"{workflow.info().workflow_id}~{extra.n}:reverse"))
                extra.state = "reversed"
                await s._save()
                return
            new_rows, release, allocations = self._rehold_plan(rows, catalog, home, n)
            # everything the new lines need is held already (old holds + the extra units): this always fits
            await local("rehold_stock", ReholdRequest(owner=s._owner, release_keys=release + extra_keys,
                                                      allocations=allocations))
            self._commit_rows(new_rows)
            await self._announce(edit, n, old_catalog, catalog, stopped, before, None)
        finally:
            st.pending = st.active = False

    async def _drop_extra(self, extra: Any) -> None:
        """Close a link for the difference nobody paid; if it was paid meanwhile, keep it held."""
        try:
            await call("decline_payment", extra.md_order)
            extra.state = "declined"
        except (ActivityError, ApplicationError) as err:
            if failure_type(err) != ErrorType.ALREADY_PAID:
                raise
            extra.event = PaymentEvent(md_order=extra.md_order, operation="approved", success=True)

    async def _edit_not_paid(self, n: int, stopped: list[str], extra_keys: list[str]) -> None:
        s: Any = self
        await local("release_stock", SettleRequest(owner=s._owner, keys=extra_keys))
        await self._resume(stopped, n, "доплата не поступила: соберите прежний состав")
        s._event("order_edit_dropped", "Доплата не поступила: состав заказа не изменился")
        await s._save()
        await s._notify("order_changed", key_suffix=f"e{n}-nopay", change="доплата не поступила, состав прежний",
                        total=format_money(s._totals.total))

    async def _edit_settled(self) -> None:
        """Before the order ends: a dearer edit waiting for its payment finishes first (it closes its link)."""
        task = self._edits.pending_task
        if task is not None and not task.done():
            await task

    # ------------------------------------------------------------------ steps
    def _catalog(self) -> list[CatalogLine]:
        s: Any = self
        ch = s._changes
        return list(ch.catalog if ch.catalog is not None else s._require_input().lines)

    async def _check_stock(self, changed: list[CatalogLine], old_qty: dict[int, int], edit: OrderEdit,
                           home: dict[int, str]) -> None:
        """Before anything changes: a new SKU goes to the first of the order's shipments whose
        location has it; a grown line needs the difference free at its location. (Advisory: the
        re-hold in one transaction is what guarantees it.)"""
        s: Any = self
        grown = [c for c in changed if c.qty > old_qty.get(c.pos_id, 0)]
        if not grown:
            return
        view = await local("load_stock_view", StockViewRequest(skus=sorted({c.sku for c in grown})),
                           result_type=StockView)
        free = {(a.sku, a.location_id): a.available for a in view.available}
        for c in grown:
            need = c.qty - old_qty.get(c.pos_id, 0)
            if c.pos_id in home:
                places = [home[c.pos_id]]
            else:
                places = [sid for sid, v in s._shipments.items() if free.get((c.sku, v.location_id), 0) >= need]
            sid = next((sid for sid in places if free.get((c.sku, s._shipments[sid].location_id), 0) >= need), None)
            if sid is None:
                where = ", ".join(sorted({s._shipments[p].location_id for p in places} if places else
                                         {v.location_id for v in s._shipments.values()}))
                raise refused(f"{c.sku}: {need} more not in stock where the order ships from ({where})",
                              _field(edit, c.sku), ErrorType.OUT_OF_STOCK)
            home[c.pos_id] = sid

    def _rows(self, sid: str) -> list[Row]:
        """A shipment's lines as the order knows them (before its fulfillment started)."""
        s: Any = self
        pos_of = {c.sku: c.pos_id for c in self._catalog()}
        keys = s._allocation_keys.get(sid, [])
        return [Row(pos=pos_of[l.sku], sku=l.sku, qty=l.qty, keys=[k for k in keys if line_pos(k) == pos_of[l.sku]])
                for l in s._shipments[sid].lines]

    def _rehold_plan(self, rows: dict[str, list[Row]], catalog: list[CatalogLine], home: dict[int, str],
                     n: int) -> tuple[dict[str, list[Row]], list[str], list[Allocation]]:
        """The shipments' new rows, the keys to release and the holds to take (one per changed line)."""
        s: Any = self
        qty = {c.pos_id: c.qty for c in catalog}
        release: list[str] = []
        allocations: list[Allocation] = []
        out: dict[str, list[Row]] = {}
        for sid, shipment_rows in rows.items():
            loc = s._shipments[sid].location_id
            new_rows = []
            for r in shipment_rows:
                want = qty.get(r.pos, 0)
                if want == r.qty:
                    new_rows.append(r)
                    continue
                release += r.keys
                key = f"{s._owner}:{r.pos}:{loc}:e{n}"
                if want > 0:
                    allocations.append(Allocation(key=key, sku=r.sku, location_id=loc, qty=want))
                new_rows.append(Row(pos=r.pos, sku=r.sku, qty=want, keys=[key] if want else []))
            for c in catalog:
                if home.get(c.pos_id) == sid and all(r.pos != c.pos_id for r in shipment_rows):
                    key = f"{s._owner}:{c.pos_id}:{loc}:e{n}"
                    allocations.append(Allocation(key=key, sku=c.sku, location_id=loc, qty=c.qty))
                    new_rows.append(Row(pos=c.pos_id, sku=c.sku, qty=c.qty, keys=[key]))
            out[sid] = new_rows
        return out, release, allocations

    async def _close_payment_link(self) -> None:
        s: Any = self
        md_order = s._payment.md_order
        if md_order is None:
            return
        try:
            await call("decline_payment", md_order)
        except (ActivityError, ApplicationError) as err:
            if failure_type(err) == ErrorType.ALREADY_PAID:
                raise refused("the customer has just paid: the order goes on as paid; edit it again if needed") from err
            raise refused(f"the bank did not close the payment link: {failure_message(err)}") from err
        self._edits.declined.append(md_order)
        s._event("payment_link_closed", f"Ссылка на оплату закрыта (mdOrder {md_order}): состав заказа меняется",
                 md_order=md_order)

    async def _new_payment_link(self, n: int) -> str:
        s: Any = self
        inp = s._require_input()
        reg = await call("register_payment", RegisterPayment(
            order_number=f"{workflow.info().workflow_id}~e{n}", amount=s._totals.total, currency=inp.currency,
            description=f"Заказ {inp.order_id}", lines=s._lines, delivery_amount=s._totals.delivery,
            phone=inp.customer.phone, email=inp.customer.email,
            session_timeout_secs=inp.payment_window_minutes * 60), result_type=PaymentRegistered)
        s._payment = PaymentView(state=PaymentState.registered, md_order=reg.md_order)
        s._payment_url = reg.form_url
        self._edits.payment_deadline = workflow.now() + timedelta(minutes=inp.payment_window_minutes)
        s._event("payment_registered", f"Новая ссылка на оплату {format_money(s._totals.total)} (mdOrder "
                                       f"{reg.md_order}), окно оплаты заново", md_order=reg.md_order)
        return reg.form_url

    async def _stop_shipments(self, sids: list[str], n: int) -> list[EditAnswer]:
        st = self._edits
        st.answers = {}
        for sid in sids:
            await signal_workflow(sid, "hold_for_edit", EditHold(n=n))
        try:
            await workflow.wait_condition(lambda: all(sid in st.answers for sid in sids), timeout=HOLD_ANSWER_TIMEOUT)
        except TimeoutError:
            pass
        return [st.answers.get(sid) or EditAnswer(shipment_id=sid, n=n, ok=False, reason="the shipment did not answer")
                for sid in sids]

    async def _resume(self, sids: list[str], n: int, note: str) -> None:
        """Stopped shipments carry on with what they had (as they answered)."""
        for sid in sids:
            await _carry_on(self._edits.answers[sid], n, note)

    def _revision(self, sid: str, n: int, note: str) -> ShipmentRevision:
        """What a stopped shipment carries on with: its lines priced from the order, its holds."""
        s: Any = self
        by_sku = {l.sku: l for l in s._lines}
        lines = [line_portion(by_sku[l.sku], l.qty) for l in s._shipments[sid].lines]
        return ShipmentRevision(n=n, lines=lines, reservation_keys=list(s._allocation_keys[sid]), note=note,
                                new_task=True)

    async def _undo_edit(self, old_catalog: list[CatalogLine], unpaid: bool, stopped: list[str], n: int) -> None:
        """A step after the stop failed: loyalty back to the old lines, a payment link for the
        unchanged total, the stopped shipments carry on as they were."""
        s: Any = self
        try:
            await s._reprice(old_catalog)
        except (ActivityError, ApplicationError) as err:  # the order still owes its loyalty purchase: say so
            s._event("loyalty_restore_failed", f"Программа лояльности не приняла прежний состав: "
                                               f"{failure_message(err)}; нужна проверка оператором")
        if unpaid and s._payment.md_order in self._edits.declined:
            url = await self._new_payment_link(n)
            await s._notify("order_changed_pay", key_suffix=f"e{n}-kept", change="состав не изменился",
                            total=format_money(s._totals.total), payment_url=url)
        await self._resume(stopped, n, "состав не изменился, соберите по новому заданию")

    # ------------------------------------------------------------------ messages
    @workflow.signal
    async def edit_answer(self, answer: EditAnswer) -> None:
        st = self._edits
        if st.active and answer.n == st.n:
            st.answers[answer.shipment_id] = answer
        elif answer.ok:  # a late "stopped": nobody waits for it any more, let the shipment carry on
            await _carry_on(answer, answer.n, "состав не изменился")

    def _payment_superseded(self, md_order: str) -> bool:
        """A bank message about a payment link an edit closed (ignored by the order)."""
        return md_order in self._edits.declined


async def _carry_on(stopped: EditAnswer, n: int, note: str) -> None:
    """A stopped shipment goes on with the lines and holds it answered with (a new store task)."""
    await signal_workflow(stopped.shipment_id, "revise", ShipmentRevision(
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
    return [Row(pos=l.pos_id, sku=l.sku, qty=l.qty, keys=[k for k in keys if line_pos(k) == l.pos_id]) for l in lines]


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
