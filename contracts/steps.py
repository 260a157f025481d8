"""Inputs and results of activities: one dataclass in, one dataclass out.

Every side-effecting step carries the idempotency key the outside system
recognises (acquiring orderNumber, courier number, POS task id, loyalty
transaction id, message id), derived from the workflow id and the step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.order import Address, CatalogLine, Customer, LineRequest, OrderLine, PaymentState
from contracts.stock import Allocation


# --- errors (ApplicationError.type) -----------------------------------------------------------
class ErrorType:
    OUT_OF_STOCK = "OutOfStock"
    PAYMENT_REFUSED = "PaymentRefused"
    ALREADY_PAID = "AlreadyPaid"
    LOYALTY_REFUSED = "LoyaltyRefused"
    PRICE_CHANGED = "PriceHasBeenChanged"
    COURIER_REFUSED = "CourierRefused"
    POS_REFUSED = "PosRefused"
    ERP_REFUSED = "ErpRefused"
    NOTIFY_REFUSED = "NotificationRefused"


# --- stock --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StockViewRequest:
    skus: list[str]
    region: str | None = None


@dataclass(frozen=True)
class ReserveRequest:
    owner: str
    allocations: list[Allocation]


@dataclass(frozen=True)
class SettleRequest:
    owner: str
    keys: list[str] | None = None  # None: everything the owner holds


@dataclass(frozen=True)
class ReholdRequest:
    """Release ``release_keys`` and hold ``allocations`` of ``owner`` in one transaction."""

    owner: str
    release_keys: list[str]
    allocations: list[Allocation]


# --- loyalty --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceRequest:
    phone: str
    lines: list[CatalogLine]
    bonus_to_spend: int = 0
    promo_code: str | None = None


@dataclass(frozen=True)
class Priced:
    lines: list[OrderLine]
    subtotal: int
    discount: int
    bonus_spent: int
    bonus_to_accrue: int


@dataclass(frozen=True)
class LoyaltyBegin:
    purchase_id: str
    transaction_id: str
    phone: str
    lines: list[CatalogLine]
    bonus_to_spend: int
    expected_total: int
    promo_code: str | None = None


@dataclass(frozen=True)
class LoyaltyCommit:
    purchase_id: str
    transaction_id: str
    order_id: str
    kept: list[tuple[int, int]] | None = None  # (pos_id, qty) finally sold; None: all


@dataclass(frozen=True)
class LoyaltyRef:
    purchase_id: str
    transaction_id: str = ""


@dataclass(frozen=True)
class LoyaltyReturnRequest:
    purchase_id: str
    return_id: str
    lines: list[tuple[int, int]]


@dataclass(frozen=True)
class LoyaltyReturnResult:
    bonus_returned: int
    accrual_reversed: int


# --- payments --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegisterPayment:
    order_number: str  # unique per merchant: the idempotency key of the hold
    amount: int
    currency: str
    description: str
    lines: list[OrderLine]
    delivery_amount: int = 0
    phone: str | None = None
    email: str | None = None
    session_timeout_secs: int = 1200


@dataclass(frozen=True)
class PaymentRegistered:
    md_order: str
    form_url: str


@dataclass(frozen=True)
class PaymentStatusResult:
    md_order: str
    state: PaymentState  # the bank's orderStatus in our terms (translated by the acquiring adapter)
    approved: int = 0
    deposited: int = 0
    refunded: int = 0


@dataclass(frozen=True)
class CaptureRequest:
    md_order: str
    amount: int
    idempotency_key: str


@dataclass(frozen=True)
class ReverseRequest:
    md_order: str
    idempotency_key: str


@dataclass(frozen=True)
class RefundRequest:
    md_order: str
    amount: int
    idempotency_key: str
    lines: list[OrderLine] = field(default_factory=list)  # the refunded items (fiscal receipt)
    delivery_amount: int = 0  # delivery refunded too: a "Доставка" item in the receipt


# --- ERP ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ErpOrderExport:
    number: str
    created_at: datetime
    currency: str
    amount: int
    customer_name: str
    customer_phone: str
    channel: str
    lines: list[OrderLine]


@dataclass(frozen=True)
class ErpMovement:
    number: str  # document number (idempotency)
    location_id: str
    items: list[tuple[str, int]]


@dataclass(frozen=True)
class ImportResult:
    rows: int
    version: int = 0


# --- POS ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PosTaskRequest:
    task_id: str  # "<workflow id>:<kind>[:n]": the POS event names it, the API routes it back
    location_id: str
    kind: str  # assemble | set_aside | put_back | receive_return
    order_id: str
    lines: list[LineRequest]
    names: dict[str, str] = field(default_factory=dict)
    due_at: datetime | None = None
    customer_name: str = ""
    phone_masked: str = ""
    note: str = ""


@dataclass(frozen=True)
class PosCancel:
    task_id: str
    location_id: str
    reason: str


@dataclass(frozen=True)
class StoreMessage:
    message_id: str
    location_id: str
    text: str
    task_id: str | None = None


# --- couriers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShipmentBookingRequest:
    shipment_id: str  # the merchant's number at the carrier: the fulfillment workflow id
    carrier: str
    from_location_id: str
    from_city: str
    address: Address
    recipient: Customer
    lines: list[OrderLine]
    is_return: bool = False


@dataclass(frozen=True)
class BookedShipment:
    carrier: str
    external_id: str
    tracking_number: str | None = None


@dataclass(frozen=True)
class TrackingResult:
    status: str  # adapters.wire.couriers.ShipmentStatus value
    code: str = ""
    at: datetime | None = None
    city: str | None = None


# --- notifications ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomerNotice:
    key: str  # one message per status change: "<workflow id>:<event>"
    phone: str
    email: str | None
    event: str  # domain.messages template name
    params: dict[str, Any] = field(default_factory=dict)


# --- delivery ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CarrierRulesRequest:
    region: str  # the destination region (ISO 3166-2, e.g. RU-MOW)


@dataclass(frozen=True)
class CarrierRuleRow:
    """A carrier rule as it crosses into a workflow (``domain.promise.CarrierRule`` once there)."""

    carrier: str
    method: str  # courier | pickup_point | post
    region: str
    price: int  # minor units, for the whole order
    days_min: int
    days_max: int
    cutoff: str  # "HH:MM", the sending location's local time
    from_location_ids: list[str] | None = None
    currency: str = "RUB"
