"""Shapes of an order crossing the API / workflow / activity boundaries.

Plain frozen dataclasses with defaults on every field added later, so running
workflows keep decoding their history (samples-python style: one dataclass in,
one dataclass out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    web = "web"
    app = "app"
    store = "store"
    marketplace = "marketplace"


class DeliveryMethod(StrEnum):
    courier = "courier"
    pickup_point = "pickup_point"
    post = "post"
    pickup = "pickup"  # click & collect at a store


class PaymentMethod(StrEnum):
    card = "card"
    on_pickup = "on_pickup"


class OrderStatus(StrEnum):
    """The order's life. `rejected` means placement was refused and nothing is held."""

    pending = "pending"  # workflow started, pricing and reserving
    awaiting_payment = "awaiting_payment"
    paid = "paid"
    assembling = "assembling"
    ready_for_pickup = "ready_for_pickup"
    shipped = "shipped"
    delivered = "delivered"
    completed = "completed"
    cancelled = "cancelled"
    rejected = "rejected"
    on_hold = "on_hold"  # parked on a refusal, waiting for an operator

    @property
    def is_final(self) -> bool:
        return self in (OrderStatus.completed, OrderStatus.cancelled, OrderStatus.rejected)


class PaymentState(StrEnum):
    none = "none"
    registered = "registered"
    held = "held"
    declined = "declined"
    reversed = "reversed"
    captured = "captured"
    refunded = "refunded"
    partially_refunded = "partially_refunded"


class ShipmentState(StrEnum):
    planned = "planned"
    assembling = "assembling"
    assembled = "assembled"
    booked = "booked"
    handed_over = "handed_over"
    in_transit = "in_transit"
    ready_for_pickup = "ready_for_pickup"
    delivered = "delivered"
    not_delivered = "not_delivered"
    cancelled = "cancelled"


@dataclass(frozen=True)
class Customer:
    phone: str
    name: str
    email: str | None = None


@dataclass(frozen=True)
class Address:
    region: str
    city: str
    line: str
    postcode: str


@dataclass(frozen=True)
class Delivery:
    method: DeliveryMethod
    address: Address | None = None
    store_id: str | None = None
    carrier: str | None = None  # chosen option; None: the cheapest that serves the region
    #: the chosen option as quoted at placement (``POST /v1/delivery-options``): the price the
    #: customer pays for delivery (kopecks; None: the default price) and the promised dates (ISO)
    price: int | None = None
    promised_from: str | None = None
    promised_to: str | None = None


@dataclass(frozen=True)
class LineRequest:
    sku: str
    qty: int


@dataclass(frozen=True)
class CatalogLine:
    """A requested line with what the catalog says about it (validated before the workflow)."""

    pos_id: int
    sku: str
    name: str
    qty: int
    unit_price: int


@dataclass(frozen=True)
class OrderInput:
    order_id: str
    channel: Channel
    customer: Customer
    lines: list[CatalogLine]
    delivery: Delivery
    payment_method: PaymentMethod = PaymentMethod.card
    bonus_to_spend: int = 0
    promo_code: str | None = None
    currency: str = "RUB"
    placed_at: datetime | None = None
    payment_window_minutes: int = 20
    payment_poll_minutes: int = 5
    assembly_sla_minutes: int = 120
    return_window_days: int = 14
    post_poll_minutes: int = 240  # Russian Post has no webhooks: its tracking is polled (settings.post_poll_minutes)


@dataclass(frozen=True)
class OrderLine:
    pos_id: int
    sku: str
    name: str
    qty: int
    unit_price: int
    discount: int = 0
    bonus: int = 0

    @property
    def gross(self) -> int:
        return self.unit_price * self.qty

    @property
    def amount(self) -> int:
        return self.gross - self.discount - self.bonus


def line_portion(line: OrderLine, qty: int) -> OrderLine:
    """The part of a line shipped from one location (discount and bonus scale with the quantity)."""
    if qty == line.qty:
        return line
    return OrderLine(pos_id=line.pos_id, sku=line.sku, name=line.name, qty=qty, unit_price=line.unit_price,
                     discount=line.discount * qty // line.qty, bonus=line.bonus * qty // line.qty)


@dataclass(frozen=True)
class Totals:
    subtotal: int = 0
    discount: int = 0
    bonus_spent: int = 0
    delivery: int = 0
    total: int = 0
    currency: str = "RUB"


@dataclass(frozen=True)
class Placement:
    """The synchronous answer to the storefront (returned by the `placement` update)."""

    order_id: str
    status: OrderStatus
    totals: Totals | None = None
    payment_url: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_field: str | None = None  # the request field at fault (e.g. ``delivery.method``)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentEvent:
    """An acquiring callback (checksum verified by the API) or a polled status."""

    md_order: str
    operation: str  # approved | deposited | reversed | refunded | declinedByTimeout
    success: bool
    amount: int | None = None


@dataclass(frozen=True)
class ShipmentView:
    shipment_id: str
    location_id: str
    lines: list[LineRequest]
    status: ShipmentState = ShipmentState.planned
    carrier: str | None = None
    tracking_number: str | None = None
    external_id: str | None = None
    reason: str = ""
    transfer_to: str | None = None
    promised_from: str | None = None
    promised_to: str | None = None
    delivered_at: datetime | None = None
    late: bool = False


@dataclass(frozen=True)
class ShipmentUpdate:
    """A fulfillment child tells its order what happened to its shipment."""

    shipment_id: str
    status: ShipmentState
    message: str
    carrier: str | None = None
    tracking_number: str | None = None
    external_id: str | None = None
    at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaymentView:
    state: PaymentState = PaymentState.none
    md_order: str | None = None
    held: int = 0
    captured: int = 0
    refunded: int = 0


@dataclass(frozen=True)
class OrderSnapshot:
    """Everything the projection and `GET /v1/orders/{id}` show. Written whole, with a version."""

    order_id: str
    status: OrderStatus
    channel: Channel
    customer: Customer
    delivery: Delivery
    lines: list[OrderLine]
    totals: Totals
    payment: PaymentView
    shipments: list[ShipmentView]
    timeline: list[TimelineEntry]
    created_at: datetime
    updated_at: datetime
    version: int
    payment_url: str | None = None
    store_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AddressChange:
    """An operator changes where a not-yet-booked order is delivered."""

    address: Address
    by: str


@dataclass(frozen=True)
class CancelRequest:
    reason: str
    by: str = "customer"


def order_workflow_id(order_id: str) -> str:
    return f"order-{order_id}"


def fulfillment_workflow_id(order_id: str, n: int) -> str:
    return f"fulfillment-{order_id}-{n}"


@dataclass(frozen=True)
class StoreEvent:
    """A store POS event routed to the workflow that owns the task (see ``PosTaskRequest.task_id``)."""

    event: str  # assembled | shortage | ready | issued | received | inspected | put_back
    task_id: str
    event_id: str = ""
    lines: list[LineRequest] = field(default_factory=list)
    sku: str | None = None
    missing_qty: int | None = None
    paid_amount: int | None = None
    accepted: list[LineRequest] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    at: datetime | None = None


@dataclass(frozen=True)
class CourierEvent:
    """A carrier status (CDEK webhook, or a polled tracking record), normalised."""

    status: str  # adapters.wire.couriers.ShipmentStatus value
    code: str = ""
    at: datetime | None = None
    city: str | None = None
