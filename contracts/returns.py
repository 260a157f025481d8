"""Returns and exchanges: the shapes crossing the API / workflow / activity boundaries.

Frozen dataclasses with a default on every field added later (running workflows keep decoding
their history). The rules of what may be returned and the refund glue are ``domain.returns``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from contracts.order import Address, Customer, Delivery, TimelineEntry
from contracts.stock import LocationInfo


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
    refused = "refused"  # the rules refused it at registration (another return took the units): nothing saved

    @property
    def is_final(self) -> bool:
        return self in (ReturnStatus.completed, ReturnStatus.rejected, ReturnStatus.abandoned, ReturnStatus.refused)


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
    window_days: int = 14  # the return window (checked again when the return registers)


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


def return_workflow_id(return_id: str) -> str:
    return f"return-{return_id}"
