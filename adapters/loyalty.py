"""Client of the loyalty processing (Loymax-style programme, JSON phases modelled on Mindbox).

Wire shape: ``/work/shared/reference/loyalty.md``; the sandbox's rules are in
``sandbox/loyalty.py``. The client's base URL is the service root (``settings.loyalty_url``,
e.g. ``http://127.0.0.1:8100/loyalty``); requests go to ``v1/...`` with HTTP Basic auth.
Amounts on this JSON API are integer kopecks already (no conversion).

Idempotency keys: ``transaction_id`` (begin / commit / rollback), ``return_id`` (returns), the
purchase itself for ``activate``. Refusals (HTTP 4xx, or ``PriceHasBeenChanged``) raise
:class:`ExternalRefusal` with the system's ``code`` (``PriceHasBeenChanged``, ``CardBlocked``,
``NotEnoughBonuses``, ``AlreadyCommitted``, ...).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from adapters.errors import ExternalRefusal
from adapters.http import request
from adapters.wire.loyalty import (
    Calculation,
    CartLine,
    CommitResult,
    LoyaltyBalance,
    LoyaltyReturn,
    PricedLine,
)

SYSTEM = "loyalty"


def _calculation(body: dict[str, Any]) -> Calculation:
    return Calculation(
        lines=tuple(
            PricedLine(
                pos_id=int(l["pos_id"]),
                sku=str(l["sku"]),
                qty=int(l["qty"]),
                price=int(l["price"]),
                discount=int(l["discount"]),
                bonus=int(l["bonus"]),
                amount=int(l["amount"]),
            )
            for l in body["lines"]
        ),
        subtotal=int(body["subtotal"]),
        discount=int(body["discount"]),
        bonus_spent=int(body["bonus_spent"]),
        total=int(body["total"]),
        max_bonus_to_spend=int(body["max_bonus_to_spend"]),
        bonus_to_accrue=int(body["bonus_to_accrue"]),
        promo_code_status=body.get("promo_code_status"),
    )


def _lines(lines: list[CartLine]) -> list[dict[str, Any]]:
    return [{"pos_id": l.pos_id, "sku": l.sku, "price": l.price, "qty": l.qty} for l in lines]


class LoyaltyClient:
    def __init__(self, http: httpx.AsyncClient, *, user: str, password: str) -> None:
        self._http = http
        self._auth = httpx.BasicAuth(user, password)

    async def _call(self, operation: str, method: str, url: str, json: Any = None) -> dict[str, Any]:
        resp = await request(self._http, SYSTEM, operation, method, url, json=json, auth=self._auth)
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code >= 400 or not isinstance(body, dict):
            code = body.get("code") if isinstance(body, dict) else None
            message = (body.get("message") if isinstance(body, dict) else None) or f"HTTP {resp.status_code}: {resp.text[:200]}"
            raise ExternalRefusal(SYSTEM, operation, str(message), code=str(code or f"HTTP{resp.status_code}"))
        return body

    async def balance(self, phone: str) -> LoyaltyBalance:
        body = await self._call("balance", "GET", f"v1/customers/{quote(phone, safe='')}/balance")
        return LoyaltyBalance(
            phone=str(body["phone"]),
            balance=int(body["balance"]),
            pending=int(body["pending"]),
            held=int(body["held"]),
            status=str(body["status"]),
        )

    async def calculate(
        self, *, phone: str, lines: list[CartLine], bonus_to_spend: int, promo_code: str | None = None
    ) -> Calculation:
        body = await self._call(
            "calculate", "POST", "v1/calculate",
            {"phone": phone, "lines": _lines(lines), "bonus_to_spend": bonus_to_spend, "promo_code": promo_code},
        )
        return _calculation(body)

    async def begin(
        self,
        *,
        purchase_id: str,
        transaction_id: str,
        phone: str,
        lines: list[CartLine],
        bonus_to_spend: int,
        expected_total: int,
        promo_code: str | None = None,
    ) -> Calculation:
        """Begin the purchase transaction (the write-off is held). Idempotent by ``transaction_id``.
        ``PriceHasBeenChanged`` (nothing held: recalculate and begin with a new id) is a refusal."""
        body = await self._call(
            "begin", "POST", "v1/transactions/begin",
            {
                "purchase_id": purchase_id,
                "transaction_id": transaction_id,
                "phone": phone,
                "lines": _lines(lines),
                "bonus_to_spend": bonus_to_spend,
                "promo_code": promo_code,
                "expected_total": expected_total,
            },
        )
        if body.get("status") != "Processed":
            status = str(body.get("status"))
            total = (body.get("calculation") or {}).get("total")
            raise ExternalRefusal(SYSTEM, "begin", f"{status}: total is now {total}, expected {expected_total}", code=status)
        return _calculation(body["calculation"])

    async def commit(
        self, *, purchase_id: str, transaction_id: str, order_id: str, lines: list[tuple[int, int]] | None = None
    ) -> CommitResult:
        """Make the write-off final. ``lines``: final ``(pos_id, qty)`` of every kept line (lines not
        listed are treated as removed); ``None`` keeps the begun quantities."""
        payload: dict[str, Any] = {"purchase_id": purchase_id, "order_id": order_id}
        if lines is not None:
            payload["lines"] = [{"pos_id": p, "qty": q} for p, q in lines]
        body = await self._call("commit", "POST", f"v1/transactions/{quote(transaction_id, safe='')}/commit", payload)
        return CommitResult(bonus_written_off=int(body["bonus_written_off"]), bonus_to_accrue=int(body["bonus_to_accrue"]))

    async def rollback(self, *, purchase_id: str, transaction_id: str) -> None:
        """Return the held bonus. Safe to repeat, and safe for a transaction that never began."""
        await self._call(
            "rollback", "POST", f"v1/transactions/{quote(transaction_id, safe='')}/rollback", {"purchase_id": purchase_id}
        )

    async def return_lines(self, *, purchase_id: str, return_id: str, lines: list[tuple[int, int]]) -> LoyaltyReturn:
        """Return ``(pos_id, qty)`` units of a committed purchase. Idempotent by ``return_id``."""
        body = await self._call(
            "return", "POST", f"v1/purchases/{quote(purchase_id, safe='')}/returns",
            {"return_id": return_id, "lines": [{"pos_id": p, "qty": q} for p, q in lines]},
        )
        return LoyaltyReturn(
            bonus_returned=int(body["bonus_returned"]),
            accrual_reversed=int(body["accrual_reversed"]),
            accrual_not_reversed=int(body.get("accrual_not_reversed", 0)),
        )

    async def activate(self, *, purchase_id: str) -> int:
        """Make the purchase's pending accrual spendable; returns the amount activated (0 on repeat)."""
        body = await self._call("activate", "POST", f"v1/purchases/{quote(purchase_id, safe='')}/activate")
        return int(body["activated"])
