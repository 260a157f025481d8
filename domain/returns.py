"""Returns: the pure rules of what may be returned, and the glue from an order's record to the
exact refund math (``domain.refunds``).

What may be returned (``check_request``)
----------------------------------------
* only lines whose goods reached the customer: a shipment carrying the line's SKU is
  ``delivered`` (a collected click & collect order reports ``delivered`` too);
* within the return window: ``window_days`` from the latest delivery of the line's shipments;
* never more than bought minus what other returns hold: returns in flight hold what they asked
  for, finished returns what was accepted, abandoned returns nothing (``claimed``). The caller
  runs the check under a lock on the order (see ``adapters.returns_repo``), so two concurrent
  returns can never both take the last unit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from contracts.order import OrderLine, OrderSnapshot, ShipmentState
from contracts.returns import (
    ExchangeRequest,
    LineRefundView,
    RefundView,
    ReturnLine,
    ReturnLineRequest,
    ReturnSnapshot,
)
from domain.refunds import PaidLine, ReturnRefund


class ReturnRefused(Exception):
    """A return request the rules refuse; ``field`` names the request field at fault."""

    def __init__(self, status: int, code: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.code = code
        self.field = field
        self.message = f"{field}: {message}"



def paid_lines(lines: Sequence[OrderLine]) -> list[PaidLine]:
    """The order's lines as paid. ``OrderLine.discount`` / ``bonus`` already carry the line's
    share of the order-level discount and bonus write-off (the loyalty calculation prorates them
    by largest remainder, ``shared/reference/loyalty.md``), so they map one to one."""
    return [PaidLine(pos_id=l.pos_id, sku=l.sku, qty=l.qty, unit_price=l.unit_price, discount=l.discount,
                     bonus=l.bonus) for l in lines]


def refund_view(refund: ReturnRefund) -> RefundView:
    return RefundView(money=refund.money, bonus=refund.bonus, delivery=refund.delivery,
                      lines=[LineRefundView(pos_id=x.pos_id, qty=x.qty, money=x.money, bonus=x.bonus)
                             for x in refund.lines])


def refund_bundle_lines(lines: Sequence[ReturnLine], refund: RefundView) -> list[OrderLine]:
    """Lines for the refund's fiscal receipt (``refund.do`` ``orderBundle``): each refunded line
    with ``amount`` equal to the money refunded for it, so the items sum to the refund. The
    gross less that money is carried as ``discount`` (never negative: a unit's money share is at
    most its price)."""
    by_pos = {l.pos_id: l for l in lines}
    out = []
    for x in refund.lines:
        src = by_pos[x.pos_id]
        gross = src.unit_price * x.qty
        out.append(OrderLine(pos_id=src.pos_id, sku=src.sku, name=src.name, qty=x.qty, unit_price=src.unit_price,
                             discount=max(gross - x.money, 0), bonus=0))
    return out


def claimed(returns: Sequence[ReturnSnapshot]) -> dict[int, int]:
    out: dict[int, int] = {}
    for r in returns:
        for pos, q in r.claims().items():
            out[pos] = out.get(pos, 0) + q
    return out


def delivered_lines(order: OrderSnapshot) -> dict[str, tuple[int, datetime | None]]:
    """sku -> (units delivered, latest delivery time) over the order's delivered shipments."""
    out: dict[str, tuple[int, datetime | None]] = {}
    for s in order.shipments:
        if s.status != ShipmentState.delivered:
            continue
        for l in s.lines:
            units, at = out.get(l.sku, (0, None))
            latest = max((t for t in (at, s.delivered_at) if t is not None), default=None)
            out[l.sku] = (units + l.qty, latest)
    return out


def check_request(order: OrderSnapshot, requested: Sequence[ReturnLineRequest], others: Sequence[ReturnSnapshot],
                  *, now: datetime, window_days: int, field_prefix: str = "lines") -> list[ReturnLine]:
    """The return's lines, or ``ReturnRefused`` naming the field (see the module doc)."""
    by_pos = {l.pos_id: l for l in order.lines}
    delivered = delivered_lines(order)
    held = claimed(others)
    seen: dict[int, int] = {}
    out = []
    for i, req in enumerate(requested):
        f = f"{field_prefix}[{i}]"
        line = by_pos.get(req.pos_id)
        if line is None:
            raise ReturnRefused(422, "unknown_line", f"{f}.pos_id", f"order {order.order_id} has no line {req.pos_id}")
        if req.pos_id in seen:
            raise ReturnRefused(422, "duplicate_line", f"{f}.pos_id",
                                f"line {req.pos_id} is already in {field_prefix}[{seen[req.pos_id]}]")
        seen[req.pos_id] = i
        if req.qty <= 0:
            raise ReturnRefused(422, "validation_error", f"{f}.qty", "must be at least 1")
        units, at = delivered.get(line.sku, (0, None))
        if units <= 0:
            raise ReturnRefused(409, "not_delivered", f"{f}.pos_id",
                                f"line {req.pos_id} ({line.sku}) has not been delivered or collected yet")
        if at is not None and now > at + timedelta(days=window_days):
            raise ReturnRefused(409, "return_window_closed", f"{f}.pos_id",
                                f"the {window_days}-day return window for line {req.pos_id} closed on "
                                f"{(at + timedelta(days=window_days)).date().isoformat()}")
        left = min(units, line.qty) - held.get(req.pos_id, 0)
        if req.qty > left:
            raise ReturnRefused(409, "too_many_units", f"{f}.qty",
                                f"line {req.pos_id}: {req.qty} requested, only {max(left, 0)} of {line.qty} "
                                f"can still be returned (the rest is returned or being returned)")
        out.append(ReturnLine(pos_id=line.pos_id, sku=line.sku, name=line.name, qty=req.qty, reason=req.reason,
                              unit_price=line.unit_price, line_qty=line.qty, line_amount=line.amount))
    return out


def inspect(lines: Sequence[ReturnLine], accepted: Sequence[Any], rejected: Sequence[Mapping[str, Any]]) -> list[ReturnLine]:
    """Apply a store's inspection (``accepted``: objects with ``sku``/``qty``; ``rejected``: dicts
    with ``sku``, ``qty``, ``reason``) to the lines: what is not accepted is rejected."""
    ok: dict[str, int] = {}
    for a in accepted:
        ok[a.sku] = ok.get(a.sku, 0) + int(a.qty)
    why = {str(r.get("sku")): str(r.get("reason") or "") for r in rejected}
    out = []
    for l in lines:
        acc = max(0, min(ok.get(l.sku, 0), l.qty))
        out.append(ReturnLine(pos_id=l.pos_id, sku=l.sku, name=l.name, qty=l.qty, reason=l.reason, accepted=acc,
                              rejected=l.qty - acc, reject_reason=why.get(l.sku, "") if acc < l.qty else "",
                              unit_price=l.unit_price, line_qty=l.line_qty, line_amount=l.line_amount))
    return out


def exchange_difference(line: ReturnLine, exchange: ExchangeRequest) -> int:
    """What the customer pays (> 0) or gets back (< 0) to swap ``exchange.qty`` units of ``line``:
    the difference of the catalog prices. The same price costs nothing more, and the discount
    and bonus the customer had on the returned units stay with the replacement. A cheaper
    replacement gives back at most the money paid for the swapped units (floor of their share)."""
    diff = (exchange.unit_price - line.unit_price) * exchange.qty
    if diff < 0 and line.line_qty:
        diff = max(diff, -(line.line_amount * exchange.qty // line.line_qty))
    return diff
