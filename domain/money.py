"""Money arithmetic: integer minor units (kopecks, tiyn) only, never floats.

Pure and deterministic (no I/O, no clock, no randomness): safe to call inside Temporal
workflows. ARCHITECTURE.md rule 7: discounts and bonus write-offs are spread over lines by
largest-remainder rounding so the parts always add up to the total.
"""

from __future__ import annotations

import operator
from typing import Sequence

__all__ = ["prorate", "format_money", "CURRENCY_SIGNS", "NBSP"]

#: The non-breaking space used between digit groups and before the currency sign, so a
#: phone never wraps "1 234,50 ₽" across two lines of an SMS.
NBSP = "\u00a0"

#: Signs used in customer-facing Russian text; unknown currencies fall back to the ISO code.
CURRENCY_SIGNS: dict[str, str] = {"RUB": "₽", "KZT": "₸", "BYN": "Br", "USD": "$", "EUR": "€"}


def prorate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` so that the parts sum exactly to ``total``.

    Largest-remainder (Hamilton) method, integers only: every part first gets
    ``floor(total * w / W)``; the kopecks left over go one each to the parts with the largest
    remainder ``total * w mod W``, ties to the lower index. The result is therefore fully
    determined by the input, and each part is within one unit of its exact share
    (``floor`` or ``ceil`` of ``total * w / W``), so a part never exceeds ``total * w / W``
    rounded up — e.g. a prorated discount never exceeds its line's weight when
    ``total <= sum(weights)``.

    All-zero weights split ``total`` evenly by the same rule (the first ``total mod n``
    parts get one more). ``prorate(0, [])`` is ``[]``.

    Raises ``ValueError`` for a negative total or weight, or for ``total > 0`` with no weights.

    >>> prorate(100, [1, 1, 1])
    [34, 33, 33]
    >>> prorate(10, [0, 0])
    [5, 5]
    """
    total = operator.index(total)
    ws = [operator.index(w) for w in weights]
    if total < 0:
        raise ValueError(f"prorate: total must be >= 0, got {total}")
    if any(w < 0 for w in ws):
        raise ValueError(f"prorate: weights must be >= 0, got {ws}")
    if not ws:
        if total == 0:
            return []
        raise ValueError(f"prorate: cannot split {total} over no weights")
    wsum = sum(ws)
    if wsum == 0:
        ws = [1] * len(ws)
        wsum = len(ws)
    parts: list[int] = []
    remainders: list[int] = []
    for w in ws:
        q, r = divmod(total * w, wsum)
        parts.append(q)
        remainders.append(r)
    left = total - sum(parts)  # 0 <= left < len(ws)
    if left:
        order = sorted(range(len(ws)), key=lambda i: (-remainders[i], i))
        for i in order[:left]:
            parts[i] += 1
    return parts


def format_money(amount: int, currency: str = "RUB") -> str:
    """Format minor units for a Russian customer message: ``123450`` → ``"1 234,50 ₽"``.

    Digit groups of three are separated by a non-breaking space (U+00A0, as CLDR ``ru``
    does), the decimal separator is a comma, two decimals are always shown, and the
    currency sign follows after a non-breaking space (₽ for RUB, ₸ for KZT; an unknown
    currency is written as its ISO code). Negative amounts get a leading ``-``.
    """
    amount = operator.index(amount)
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    digits = str(units)
    groups = []
    while digits:
        groups.append(digits[-3:])
        digits = digits[:-3]
    whole = NBSP.join(reversed(groups))
    symbol = CURRENCY_SIGNS.get(currency.upper(), currency.upper())
    return f"{sign}{whole},{cents:02d}{NBSP}{symbol}"
