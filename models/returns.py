"""Returns and exchanges: the shapes crossing the API / workflow / activity boundaries, and the
pure rules of what may be returned.

Frozen dataclasses with a default on every field added later (running workflows keep decoding
their history). No I/O here: the money is ``models.refunds`` (exact per-unit refunds); this
module only turns an order's record into its inputs and checks a return request against it.

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

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Mapping, Sequence

from models.order import Address, Customer, Delivery, OrderLine, OrderSnapshot, ShipmentState, TimelineEntry
from models.refunds import PaidLine, ReturnRefund
from models.stock import LocationInfo


class ReturnMethod(StrEnum):
    in_store = "in_store"  # the customer brings it to any store of the chain
    courier_pickup = "courier_pickup"  # a CDEK return shipment from the customer's door
    post = "post"  # Russian Post "easy return": a code shown at any post office


class ReturnStatus(StrEnum):
    registered = "registered"
    awaiting_goods = "awaiting_goods"  # the way back is arranged, nothing moved yet
    in_transit = "in_transit"  # the carrier has the parcel
    received = "received"  # at the receiving location, waiting for inspection
    inspected = "inspected"
    refunded = "refunded"  # money back; loyalty, restock, ERP follow
    completed = "completed"
    rejected = "rejected"  # nothing accepted at inspection: the goods go back to the customer
    abandoned = "abandoned"  # no parcel within the receipt window

    @property
    def is_final(self) -> bool:
        return self in (ReturnStatus.completed, ReturnStatus.rejected, ReturnStatus.abandoned)


class ReturnRefused(Exception):
    """A return request the rules refuse; ``field`` names the request field at fault."""

    def __init__(self, status: int, code: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.code = code
        self.field = field
        self.message = f"{field}: {message}"


@dataclass(frozen=True)
class ReturnLineRequest:
    pos_id: int
    qty: int
    reason: str = ""


@dataclass(frozen=True)
class ReturnLine:
    """A line coming back. ``accepted`` / ``rejected`` are filled by the inspection."""

    pos_id: int
    sku: str
    name: str
    qty: int
    reason: str = ""
    accepted: int = 0
    rejected: int = 0
    reject_reason: str = ""
    unit_price: int = 0  # the catalog price the customer bought at (declared value of a parcel)
    line_qty: int = 0  # the order line's units and the money paid for all of them
    line_amount: int = 0


@dataclass(frozen=True)
class ExchangeRequest:
    """Exchange one returned line for another SKU (size / colour): ``qty`` units of ``sku`` at
    ``unit_price`` (the catalog's price now) replace ``pos_id``'s returned units."""

    pos_id: int
    sku: str
    name: str
    qty: int
    unit_price: int


@dataclass(frozen=True)
class ExchangeView:
    sku: str
    qty: int
    unit_price: int
    difference: int = 0  # > 0: the customer pays it; < 0: refunded on top
    status: str = "requested"  # requested | reserved | paid | shipped | out_of_stock | declined
    order_id: str | None = None  # the replacement order
    payment_url: str | None = None


@dataclass(frozen=True)
class ReturnInput:
    return_id: str
    order_id: str
    method: ReturnMethod
    location: LocationInfo  # where the goods come back to and are inspected
    lines: list[ReturnLine]
    customer: Customer
    address: Address | None = None  # pickup address for a courier; sender's for the post
    md_order: str | None = None
    currency: str = "RUB"
    created_at: datetime | None = None
    #: no parcel within this many days (nothing handed to a carrier or to the store): abandoned
    receipt_days: int = 14
    inspection_reminder_hours: int = 24
    poll_hours: int = 6
    delivery_policy: str = "when_all_returned"
    exchange: ExchangeRequest | None = None
    delivery: Delivery | None = None  # where an exchange's replacement ships (the order's delivery)
    payment_window_hours: int = 72  # an exchange's extra payment must come within this window


@dataclass(frozen=True)
class LineRefundView:
    pos_id: int
    qty: int
    money: int
    bonus: int


@dataclass(frozen=True)
class RefundView:
    """One return's refund, as computed (exactly once, under the order's lock) and paid."""

    money: int  # goods, kopecks back to the card
    bonus: int  # bonus points given back for those units (what the order wrote off for them)
    delivery: int = 0  # delivery refunded with this return (policy: with the last unit)
    lines: list[LineRefundView] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.money + self.delivery


@dataclass(frozen=True)
class ReturnSnapshot:
    """Everything ``GET /v1/returns/{id}`` shows; written whole, with a version."""

    return_id: str
    order_id: str
    status: ReturnStatus
    method: ReturnMethod
    location_id: str
    lines: list[ReturnLine]
    created_at: datetime
    updated_at: datetime
    version: int = 0
    carrier: str | None = None
    tracking_number: str | None = None
    external_id: str | None = None
    return_code: str | None = None
    refund: RefundView | None = None
    refunded: bool = False
    bonus_returned: int = 0
    accrual_reversed: int = 0
    back_to_customer: str | None = None  # tracking of rejected goods sent back
    exchange: ExchangeView | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    currency: str = "RUB"

    def claims(self) -> dict[int, int]:
        """Units of each order line this return holds against the order (see module doc)."""
        if self.status == ReturnStatus.abandoned:
            return {}
        if self.status in (ReturnStatus.registered, ReturnStatus.awaiting_goods, ReturnStatus.in_transit,
                           ReturnStatus.received):
            return {l.pos_id: l.qty for l in self.lines}
        return {l.pos_id: l.accepted for l in self.lines if l.accepted}


# --- activity shapes ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RefundClaim:
    """Compute (once) the refund of ``accepted`` (pos_id, qty) units of ``order_id``."""

    return_id: str
    order_id: str
    accepted: list[tuple[int, int]]
    delivery_policy: str = "when_all_returned"


@dataclass(frozen=True)
class RestockItem:
    key: str  # idempotency: "return-{id}:{pos_id}"
    sku: str
    qty: int


@dataclass(frozen=True)
class RestockRequest:
    location_id: str
    items: list[RestockItem]


# --- pure rules -------------------------------------------------------------------------------------
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


def return_workflow_id(return_id: str) -> str:
    return f"return-{return_id}"
