"""Exact refund math for returns: what the customer actually paid for each returned unit.

Pure and deterministic; integers (kopecks, bonus points 1:1 with kopecks) only.

How an order's money reaches a unit
-----------------------------------
1. ``allocate``: the order-level discount is prorated over the lines by their gross (the
   line amount after its own line discount) and the bonus write-off by what is left of each
   line after that discount, both by largest remainder (``domain.money.prorate``), so the
   parts add up exactly and no line is discounted or written off below zero.
2. A ``PaidLine`` then carries the line's totals: ``discount`` (line + its share of the
   order discount) and ``bonus``; the customer paid ``paid = unit_price*qty - discount - bonus``
   in money and ``bonus`` in points.
3. Units of a line are worth ``paid`` split evenly by largest remainder: the first
   ``paid mod qty`` units carry one kopeck more (``unit_split``). ``cumulative(total, qty, n)``
   is the worth of the first ``n`` units. Returning ``k`` units after ``r`` were already
   returned refunds ``cumulative(r+k) - cumulative(r)``, for the money and for the bonus.
   The sum telescopes: whatever the partition of a line's units into returns and whatever
   their order, all returns together refund exactly ``paid`` and exactly ``bonus``; the
   refunded total after any set of returns depends only on how many units came back.
4. Delivery follows ``DeliveryRefundPolicy`` (see ``refund_return``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Mapping, Sequence

from domain.money import prorate

__all__ = [
    "PaidLine",
    "RefundPart",
    "LineRefund",
    "ReturnRefund",
    "DeliveryRefundPolicy",
    "allocate",
    "unit_split",
    "cumulative",
    "refund_for",
    "refund_return",
]


@dataclass(frozen=True)
class PaidLine:
    """An order line as paid. ``discount`` and ``bonus`` are the line's totals, already allocated."""

    pos_id: int
    sku: str
    qty: int
    unit_price: int
    discount: int
    bonus: int

    def __post_init__(self) -> None:
        if self.qty < 0 or self.unit_price < 0 or self.discount < 0 or self.bonus < 0:
            raise ValueError(f"PaidLine pos {self.pos_id}: negative qty, price, discount or bonus")
        if self.discount + self.bonus > self.unit_price * self.qty:
            raise ValueError(f"PaidLine pos {self.pos_id}: discount + bonus exceed the line's gross")

    @property
    def gross(self) -> int:
        return self.unit_price * self.qty

    @property
    def paid(self) -> int:
        """Money actually captured for the line (kopecks)."""
        return self.unit_price * self.qty - self.discount - self.bonus


@dataclass(frozen=True)
class RefundPart:
    money: int  # kopecks back to the card
    bonus: int  # bonus points back to the loyalty account


@dataclass(frozen=True)
class LineRefund:
    pos_id: int
    qty: int
    money: int
    bonus: int


class DeliveryRefundPolicy(StrEnum):
    WHEN_ALL_RETURNED = "when_all_returned"  # with the return that makes the whole order returned
    NEVER = "never"


@dataclass(frozen=True)
class ReturnRefund:
    """One return's refund. ``money`` is for the goods only; ``delivery`` is separate."""

    lines: tuple[LineRefund, ...]
    money: int
    bonus: int
    delivery: int

    @property
    def money_total(self) -> int:
        """What goes back to the card: goods plus delivery."""
        return self.money + self.delivery


def allocate(lines: Sequence[tuple[int, int]], *, discount: int, bonus: int) -> list[tuple[int, int]]:
    """Spread an order-level ``discount`` and ``bonus`` write-off over ``lines``.

    ``lines`` are ``(pos_id, gross)`` with gross the line amount after its own line discount.
    Returns ``(discount_i, bonus_i)`` per line in the same order: the discount prorated by
    gross, the bonus by ``gross - discount_i``; both sum exactly to the totals and
    ``discount_i + bonus_i <= gross_i`` for every line. Raises ``ValueError`` if the discount
    exceeds the order's gross or the bonus exceeds what is left after the discount.
    """
    gross = [g for _, g in lines]
    if any(g < 0 for g in gross) or discount < 0 or bonus < 0:
        raise ValueError("allocate: negative gross, discount or bonus")
    total = sum(gross)
    if discount > total:
        raise ValueError(f"allocate: discount {discount} exceeds the order's gross {total}")
    if bonus > total - discount:
        raise ValueError(f"allocate: bonus {bonus} exceeds what is left to pay {total - discount}")
    if not lines:
        return []
    d = prorate(discount, gross) if total else [0] * len(gross)
    rest = [g - di for g, di in zip(gross, d)]
    b = prorate(bonus, rest) if sum(rest) else [0] * len(gross)
    return list(zip(d, b))


def unit_split(total: int, qty: int, nth: int) -> int:
    """The worth of the ``nth`` unit (0-based) when ``total`` is split over ``qty`` units by
    largest remainder: ``total // qty``, plus one for the first ``total % qty`` units."""
    if qty <= 0 or not 0 <= nth < qty or total < 0:
        raise ValueError(f"unit_split: need total >= 0 and 0 <= nth < qty, got {total}, {qty}, {nth}")
    base, extra = divmod(total, qty)
    return base + (1 if nth < extra else 0)


def cumulative(total: int, qty: int, n: int) -> int:
    """The worth of the first ``n`` units: ``sum(unit_split(total, qty, i) for i in range(n))``.

    ``cumulative(total, qty, 0) == 0`` and ``cumulative(total, qty, qty) == total``; it never
    decreases in ``n``."""
    if total < 0 or not 0 <= n <= qty or (qty == 0 and total != 0):
        raise ValueError(f"cumulative: need total >= 0 and 0 <= n <= qty, got {total}, {qty}, {n}")
    if qty == 0:
        return 0
    base, extra = divmod(total, qty)
    return n * base + min(n, extra)


def refund_for(line: PaidLine, *, already_returned: int, qty: int) -> RefundPart:
    """Money and bonus to give back for ``qty`` more units of ``line`` when
    ``already_returned`` units came back before. Raises ``ValueError`` if ``qty`` is negative
    or more than the units still not returned."""
    if not 0 <= already_returned <= line.qty:
        raise ValueError(f"pos {line.pos_id}: already_returned {already_returned} out of 0..{line.qty}")
    if qty < 0:
        raise ValueError(f"pos {line.pos_id}: cannot return {qty} units")
    if qty > line.qty - already_returned:
        raise ValueError(
            f"pos {line.pos_id}: cannot return {qty} units, only {line.qty - already_returned} not yet returned"
        )
    r, n = already_returned, already_returned + qty
    return RefundPart(
        money=cumulative(line.paid, line.qty, n) - cumulative(line.paid, line.qty, r),
        bonus=cumulative(line.bonus, line.qty, n) - cumulative(line.bonus, line.qty, r),
    )


def refund_return(
    lines: Sequence[PaidLine],
    returned_so_far: Mapping[int, int],
    request: Mapping[int, int],
    *,
    delivery_paid: int,
    delivery_policy: DeliveryRefundPolicy = DeliveryRefundPolicy.WHEN_ALL_RETURNED,
) -> ReturnRefund:
    """The refund for one return: ``request`` maps pos_id → units returned now,
    ``returned_so_far`` pos_id → units returned by earlier returns (missing = 0).

    Delivery policy: with ``WHEN_ALL_RETURNED`` (the default) the delivery the customer paid
    (``delivery_paid``) is refunded only by the return that makes the whole order returned —
    every unit of every line, counting earlier returns — and so at most once; with
    ``NEVER`` it is not refunded. ``ReturnRefund.money`` covers the goods only.

    Raises ``ValueError`` for an unknown pos_id, a negative quantity, or more units than
    remain. Lines appear in ``ReturnRefund.lines`` in the order of ``lines``, only those
    with units returned now.
    """
    if delivery_paid < 0:
        raise ValueError("delivery_paid must be >= 0")
    policy = DeliveryRefundPolicy(delivery_policy)
    by_pos: dict[int, PaidLine] = {}
    for ln in lines:
        if ln.pos_id in by_pos:
            raise ValueError(f"duplicate pos_id {ln.pos_id}")
        by_pos[ln.pos_id] = ln
    for pos in list(request) + list(returned_so_far):
        if pos not in by_pos:
            raise ValueError(f"unknown pos_id {pos}")

    out: list[LineRefund] = []
    all_before = True
    all_after = True
    for ln in lines:
        before = returned_so_far.get(ln.pos_id, 0)
        now = request.get(ln.pos_id, 0)
        part = refund_for(ln, already_returned=before, qty=now)
        if now:
            out.append(LineRefund(ln.pos_id, now, part.money, part.bonus))
        all_before = all_before and before == ln.qty
        all_after = all_after and before + now == ln.qty

    delivery = 0
    if policy is DeliveryRefundPolicy.WHEN_ALL_RETURNED and all_after and not all_before:
        delivery = delivery_paid
    return ReturnRefund(
        lines=tuple(out),
        money=sum(x.money for x in out),
        bonus=sum(x.bonus for x in out),
        delivery=delivery,
    )
