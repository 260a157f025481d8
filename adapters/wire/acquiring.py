"""Payments (acquiring) shapes that cross the workflow/activity boundary, and the callback checksum.

Pure: no I/O, no adapters, no httpx. Wire shape: ``/work/shared/reference/acquiring.md``
(Sber-style gateway: ``registerPreAuth.do`` / ``deposit.do`` / ``reverse.do`` / ``refund.do`` /
``getOrderStatusExtended.do``, callbacks signed with HMAC-SHA256).

All amounts are integer kopecks (minor units); currencies are ISO 4217 alphabetic codes in our
code ("RUB") and numeric on the gateway's wire ("643").
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import IntEnum
from typing import Mapping

from contracts.order import PaymentState

#: parameters that are not part of the signed string (reference: "drop checksum and sign_alias")
UNSIGNED_PARAMS = frozenset({"checksum", "sign_alias"})

#: ISO 4217 alphabetic -> numeric, for the currencies a Russian/CIS retailer meets
CURRENCY_NUMERIC: dict[str, str] = {
    "RUB": "643",
    "KZT": "398",
    "BYN": "933",
    "AMD": "051",
    "UZS": "860",
    "KGS": "417",
    "USD": "840",
    "EUR": "978",
    "CNY": "156",
}
CURRENCY_ALPHA: dict[str, str] = {v: k for k, v in CURRENCY_NUMERIC.items()}


class BankOrderStatus(IntEnum):
    """The gateway's ``orderStatus`` codes (reference, getOrderStatusExtended.do). Wire only: the
    adapter translates them into :class:`contracts.order.PaymentState` (:func:`payment_state`)."""

    REGISTERED = 0  #: registered, not paid
    HELD = 1  #: amount held (two-stage payment, approved)
    DEPOSITED = 2  #: captured / fully authorised (also after a partial refund)
    REVERSED = 3  #: hold released
    REFUNDED = 4  #: fully refunded
    ACS_STARTED = 5  #: 3-D Secure started
    DECLINED = 6  #: declined (by the issuer, by the payer, or session timeout)


@dataclass(frozen=True)
class BundleItem:
    """One cart position of ``orderBundle.cartItems.items[]`` (needed for the 54-FZ receipt).

    ``item_amount`` is what is charged for the position after discounts (kopecks); the items of
    one bundle must sum to the order (or refund) amount.
    """

    position_id: int
    item_code: str
    name: str
    quantity: int
    item_price: int
    item_amount: int
    tax_type: int = 6
    payment_method: str = "full_prepayment"
    payment_object: str = "commodity"


@dataclass(frozen=True)
class PaymentRegistration:
    md_order: str  #: the gateway's order id (``orderId`` on register, ``mdOrder`` in callbacks)
    form_url: str  #: the payment page to send the customer to


@dataclass(frozen=True)
class SbpQr:
    """A dynamic SBP (fast payment system) QR code for one order (``sbp/c2b/qr/dynamic/get.do``)."""

    qr_id: str
    #: the link the QR encodes (``https://qr.nspk.ru/…``): opens the payer's bank app on a phone
    payload: str
    #: the QR as a PNG when asked for an image
    png: bytes | None = None


@dataclass(frozen=True)
class PaymentStatus:
    """``getOrderStatusExtended.do`` in our terms. Amounts in kopecks."""

    md_order: str
    order_number: str
    state: PaymentState  #: ``orderStatus`` in our terms (:func:`payment_state`)
    approved: int
    deposited: int
    refunded: int
    action_code: int
    action_description: str
    masked_pan: str | None
    amount: int = 0  #: the registered order amount
    currency: str = "RUB"
    #: how it was paid (``paymentWay``): CARD, SBP_C2B (the fast payment system: no hold) ...
    payment_way: str = ""


#: ``orderStatus`` → our payment state (an ACS/3-D Secure in progress is still waiting for the payer)
PAYMENT_STATE: dict[BankOrderStatus, PaymentState] = {
    BankOrderStatus.REGISTERED: PaymentState.registered,
    BankOrderStatus.HELD: PaymentState.held,
    BankOrderStatus.DEPOSITED: PaymentState.captured,
    BankOrderStatus.REVERSED: PaymentState.reversed,
    BankOrderStatus.REFUNDED: PaymentState.refunded,
    BankOrderStatus.ACS_STARTED: PaymentState.registered,
    BankOrderStatus.DECLINED: PaymentState.declined,
}


def payment_state(order_status: int) -> PaymentState:
    """The gateway's ``orderStatus`` code as our :class:`PaymentState`; ``ValueError`` for a code
    the reference does not list."""
    return PAYMENT_STATE[BankOrderStatus(order_status)]


def _signed_string(params: Mapping[str, str]) -> str:
    return "".join(f"{name};{params[name]};" for name in sorted(params) if name not in UNSIGNED_PARAMS)


def callback_checksum(params: Mapping[str, str], secret: str) -> str:
    """The symmetric callback checksum: drop ``checksum`` (and ``sign_alias``), sort the remaining
    parameters by name, join as ``name;value;``, HMAC-SHA256 with the shared secret, uppercase hex."""
    return hmac.new(secret.encode(), _signed_string(params).encode(), hashlib.sha256).hexdigest().upper()


def verify_callback(params: Mapping[str, str], secret: str) -> bool:
    """True when ``params["checksum"]`` is the checksum of the other parameters (constant-time)."""
    given = params.get("checksum")
    if not given:
        return False
    return hmac.compare_digest(given.upper().encode(), callback_checksum(params, secret).encode())
