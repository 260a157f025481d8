"""Shapes of 54-FZ receipts crossing the activity boundary (fiscal service, ATOL Online-shaped).

Money is integer kopecks; ``adapters.fiscal`` converts to the wire's roubles. A marked unit is
one :class:`ReceiptItem` of quantity 1 carrying its scanned ``marking_code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ReceiptOperation(StrEnum):
    SELL = "sell"  # «Приход»
    SELL_REFUND = "sell_refund"  # «Возврат прихода»


class PaymentMethod(StrEnum):
    """FFD tag 1214 (признак способа расчёта)."""

    FULL_PREPAYMENT = "full_prepayment"  # the customer paid before getting the goods
    PREPAYMENT = "prepayment"
    ADVANCE = "advance"
    FULL_PAYMENT = "full_payment"  # settlement when the goods are handed over (offsets a prepayment)
    PARTIAL_PAYMENT = "partial_payment"
    CREDIT = "credit"
    CREDIT_PAYMENT = "credit_payment"


class PaymentKind(StrEnum):
    """``payments[].type`` of the receipt (FFD tags 1031, 1081, 1215, 1216, 1217)."""

    CASH = "cash"
    ELECTRONIC = "electronic"
    PREPAID = "prepaid"  # offsets an earlier prepayment (the second receipt of a prepaid order)
    CREDIT = "credit"
    OTHER = "other"


@dataclass(frozen=True)
class ReceiptItem:
    name: str
    price: int  # kopecks per unit
    quantity: int
    amount: int  # kopecks, price × quantity after discounts
    payment_method: PaymentMethod = PaymentMethod.FULL_PAYMENT
    payment_object: str = "commodity"  # commodity | service | payment | another ...
    vat: str = "vat20"  # none | vat0 | vat10 | vat20 | vat110 | vat120 ...
    #: the scanned DataMatrix text of a marked unit (quantity 1); None for unmarked goods
    marking_code: str | None = None


@dataclass(frozen=True)
class ReceiptPayment:
    kind: PaymentKind
    amount: int  # kopecks


@dataclass(frozen=True)
class ReceiptRequest:
    #: unique per receipt: "{order_id}:{purpose}", e.g. "B36B69DE7587:prepayment"
    external_id: str
    operation: ReceiptOperation
    items: tuple[ReceiptItem, ...]
    payments: tuple[ReceiptPayment, ...]
    customer_email: str | None = None
    customer_phone: str | None = None
    callback_url: str | None = None

    @property
    def total(self) -> int:
        return sum(i.amount for i in self.items)


@dataclass(frozen=True)
class ReceiptRegistration:
    uuid: str
    #: True when the service already had a receipt with this external_id (a repeat)
    repeated: bool = False


@dataclass(frozen=True)
class FiscalReport:
    uuid: str
    status: str  # wait | done | fail
    external_id: str = ""
    total: int | None = None  # kopecks, once done
    fiscal_document_number: int | None = None
    fiscal_document_attribute: int | None = None
    fn_number: str | None = None
    receipt_datetime: str | None = None
    ofd_receipt_url: str | None = None
    error_code: int | None = None
    error_text: str | None = None
