"""Loyalty shapes that cross the workflow/activity boundary (pure: no I/O).

Wire shape: ``/work/shared/reference/loyalty.md`` (Loymax-style programme, Mindbox-style
phases: calculate → begin → commit / rollback → return). Money is integer kopecks (RUB).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CartLine:
    """A cart line as the loyalty system sees it: ``price`` per unit, before any discount."""

    pos_id: int
    sku: str
    price: int
    qty: int


@dataclass(frozen=True)
class PricedLine:
    """A line after the programme's discount and bonus: ``amount = price*qty - discount - bonus``."""

    pos_id: int
    sku: str
    qty: int
    price: int
    discount: int
    bonus: int
    amount: int


@dataclass(frozen=True)
class Calculation:
    lines: tuple[PricedLine, ...]
    subtotal: int
    discount: int
    bonus_spent: int
    total: int
    max_bonus_to_spend: int
    bonus_to_accrue: int
    #: Applied | NotApplied | NotFound, or None when no promo code was given
    promo_code_status: str | None = None


@dataclass(frozen=True)
class LoyaltyBalance:
    phone: str
    balance: int  #: spendable
    pending: int  #: accrued, not yet spendable
    held: int  #: held by begun, not yet committed transactions
    status: str  #: active | blocked


@dataclass(frozen=True)
class CommitResult:
    bonus_written_off: int
    bonus_to_accrue: int


@dataclass(frozen=True)
class LoyaltyReturn:
    bonus_returned: int
    accrual_reversed: int
    #: accrual that could not be taken back (already spent after activation)
    accrual_not_reversed: int = 0
