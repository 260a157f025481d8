"""Simulated loyalty processing (Loymax-style programme, JSON phases modelled on Mindbox).

Wire shape: ``/work/shared/reference/loyalty.md`` (calculate → begin transaction → commit /
rollback → return). Wire base ``/loyalty/v1``, HTTP Basic auth (:data:`ACCOUNTS`, the defaults of
``settings.loyalty_user`` / ``loyalty_password``). All money is integer kopecks, RUB (the real
Loymax cash-desk protocol speaks decimal roubles; this JSON API does not).

Customers are identified by phone (the path/body string as given). A phone seen for the first
time creates a customer with a welcome balance of :data:`WELCOME_BALANCE` = 50 000 kopecks
(500.00 RUB) and a card number ``7000 00** **** <last 4 digits of the phone>``.

Pricing rules (``POST /loyalty/v1/calculate`` and ``begin``):

1. ``subtotal`` = Σ price × qty.
2. Discount: promo code ``WELCOME10`` (case-insensitive) = 10 % of the subtotal; a cart with
   subtotal ≥ 10 000 RUB (1 000 000 kopecks) gets 5 % automatically. They are not combined: the
   larger applies. Percentages round down. ``promo_code_status``: Applied | NotApplied (the
   automatic discount was larger) | NotFound.
3. Bonus write-off: at most 30 % (rounded down) of ``subtotal − discount`` and at most the
   spendable balance (``max_bonus_to_spend``); ``bonus_spent = min(bonus_to_spend, max)``.
4. ``total = subtotal − discount − bonus_spent``; accrual ``bonus_to_accrue`` = 5 % of ``total``
   rounded down.
5. The discount is split over lines in proportion to ``price × qty``, the bonus in proportion to
   ``price × qty − line discount``, by largest remainder (ties: larger line first, then the
   earlier line), so lines sum exactly; per line ``amount = price × qty − discount − bonus``.
6. A blocked card gets no bonus write-off and no accrual in a calculation.

Transactions:

* ``begin`` holds ``bonus_spent`` (balance → held) and answers ``Processed``; a repeat with the
  same ``transaction_id`` (and the same request) returns the first answer, a different request
  with that id is refused (409 ``TransactionConflict``). ``PriceHasBeenChanged`` (recomputed
  total ≠ ``expected_total``) holds nothing and is not remembered. Refusals, HTTP 409:
  ``CardBlocked``; ``NotEnoughBonuses`` when ``bonus_to_spend`` exceeds the spendable balance
  (a request within the balance but above the 30 % cap is capped, then the total compared);
  ``TransactionRolledBack`` for an id already rolled back.
* ``commit`` makes the write-off final; with ``lines`` (final quantities; lines not listed are
  removed) each line's bonus and discount scale by kept/original quantity, the total being
  rounded down and shared by largest remainder, the unused held bonus goes back to the balance,
  and the accrual is recomputed on the kept lines (5 % of what they cost). The accrual is
  *pending* (not spendable) until ``activate``. Repeats return the first answer. One committed
  transaction per purchase (``PurchaseAlreadyCommitted``).
* ``rollback`` returns the hold; repeats are no-ops; an unknown id is recorded as rolled back so
  a late ``begin`` with it is refused; a committed transaction is refused (``AlreadyCommitted``).
* ``returns`` (idempotent by ``return_id``) give back, per line, ``bonus × returned/qty`` and take
  back ``accrual × returned/qty``, computed cumulatively (floor of the running total minus what
  was already given), so returning every unit in any number of returns gives back exactly what
  was written off. The accrual is taken from the purchase's pending accrual while not
  activated, else from the balance but never below zero (``accrual_not_reversed`` reports the
  rest). The returned bonus is credited before the accrual is taken back.
* ``activate`` moves the purchase's remaining pending accrual to the balance (a repeat: 0).

Drive: ``GET /sandbox/loyalty/customers/{phone}`` (balances, purchases, operations history),
``POST /sandbox/loyalty/customers/{phone}`` ``{"balance"?, "blocked"?}``, plus ``/faults``.
Fault operation names: balance, calculate, begin, commit, rollback, return, activate.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar, Literal

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.common import Background, Faults, SandboxConfig
from sandbox.state import Persisted

log = structlog.get_logger("sandbox.loyalty")

ACCOUNTS: dict[str, str] = {"orkestr": "orkestr"}
WELCOME_BALANCE = 50_000
CURRENCY = "RUB"
PROMO_CODES = {"WELCOME10": 10}
AUTO_DISCOUNT_THRESHOLD = 1_000_000
AUTO_DISCOUNT_PCT = 5
MAX_BONUS_PCT = 30
ACCRUAL_PCT = 5


class LoyaltyError(Exception):
    def __init__(self, http_status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message


# --- pure arithmetic -------------------------------------------------------------------------------


def split(total: int, weights: list[int]) -> list[int]:
    """Share ``total`` in proportion to ``weights`` by largest remainder (exact sum)."""
    w_sum = sum(weights)
    if w_sum == 0:
        if total:
            raise ValueError("cannot share a non-zero total over zero weights")
        return [0] * len(weights)
    base = [total * w // w_sum for w in weights]
    rest = total - sum(base)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % w_sum), -weights[i], i))
    for i in order[:rest]:
        base[i] += 1
    return base


def scale(values: list[int], kept: list[int], qty: list[int]) -> list[int]:
    """Each value × kept/qty; the total rounded down and shared by largest remainder."""
    exact = [Fraction(v * k, q) if q else Fraction(0) for v, k, q in zip(values, kept, qty)]
    out = [int(e) for e in exact]  # floor (non-negative)
    rest = int(sum(exact, Fraction(0))) - sum(out)
    order = sorted(range(len(values)), key=lambda i: (-(exact[i] - out[i]), -values[i], i))
    for i in order[:rest]:
        out[i] += 1
    return out


@dataclass
class Line:
    pos_id: int
    sku: str
    price: int
    qty: int
    discount: int = 0
    bonus: int = 0

    @property
    def gross(self) -> int:
        return self.price * self.qty

    @property
    def amount(self) -> int:
        return self.gross - self.discount - self.bonus

    def view(self) -> dict[str, Any]:
        return {
            "pos_id": self.pos_id,
            "sku": self.sku,
            "qty": self.qty,
            "price": self.price,
            "discount": self.discount,
            "bonus": self.bonus,
            "amount": self.amount,
        }


def calculate(
    lines: list[Line], *, bonus_to_spend: int, promo_code: str | None, balance: int, blocked: bool
) -> dict[str, Any]:
    subtotal = sum(line.gross for line in lines)
    promo_pct = PROMO_CODES.get((promo_code or "").strip().upper())
    promo_discount = subtotal * promo_pct // 100 if promo_pct else 0
    auto_discount = subtotal * AUTO_DISCOUNT_PCT // 100 if subtotal >= AUTO_DISCOUNT_THRESHOLD else 0
    discount = max(promo_discount, auto_discount)
    promo_status: str | None = None
    if promo_code:
        promo_status = "NotFound" if promo_pct is None else ("Applied" if promo_discount >= auto_discount else "NotApplied")
    for line, d in zip(lines, split(discount, [line.gross for line in lines])):
        line.discount = d
    after_discount = subtotal - discount
    max_bonus = 0 if blocked else min(after_discount * MAX_BONUS_PCT // 100, balance)
    bonus = min(max(bonus_to_spend, 0), max_bonus)
    for line, b in zip(lines, split(bonus, [line.gross - line.discount for line in lines])):
        line.bonus = b
    total = after_discount - bonus
    return {
        "lines": [line.view() for line in lines],
        "subtotal": subtotal,
        "discount": discount,
        "bonus_spent": bonus,
        "total": total,
        "max_bonus_to_spend": max_bonus,
        "bonus_to_accrue": 0 if blocked else total * ACCRUAL_PCT // 100,
        "balance": balance,
        "promo_code_status": promo_status,
    }


# --- state -----------------------------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Customer:
    phone: str
    balance: int
    card: str
    blocked: bool = False
    operations: list[dict[str, Any]] = field(default_factory=list)

    def record(self, type_: str, amount: int, **refs: Any) -> None:
        self.operations.append({"at": _now(), "type": type_, "amount": amount, **refs, "balance_after": self.balance})


@dataclass
class Transaction:
    transaction_id: str
    purchase_id: str
    phone: str
    fingerprint: tuple[Any, ...]
    state: Literal["held", "committed", "rolled_back"]
    lines: list[Line] = field(default_factory=list)
    held: int = 0
    answer: dict[str, Any] | None = None
    commit_answer: dict[str, Any] | None = None


@dataclass
class PurchaseLine:
    pos_id: int
    qty: int  #: units bought (after commit adjustments)
    bonus: int  #: bonus written off for those units
    accrual: int  #: accrual for those units
    returned: int = 0
    bonus_returned: int = 0
    accrual_reversed: int = 0


@dataclass
class Purchase:
    purchase_id: str
    phone: str
    transaction_id: str
    order_id: str
    lines: dict[int, PurchaseLine]
    accrual: int
    pending: int
    activated: bool = False
    returns: dict[str, dict[str, Any]] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {
            "purchase_id": self.purchase_id,
            "transaction_id": self.transaction_id,
            "order_id": self.order_id,
            "accrual": self.accrual,
            "pending": self.pending,
            "activated": self.activated,
            "lines": [vars(pl) for pl in self.lines.values()],
            "returns": sorted(self.returns),
        }


class LoyaltySim(Persisted):
    """The loyalty programme. Handlers do not await between reading and writing state, so the
    event loop serialises them. Kept across restarts: customers (balances, operations),
    transactions, purchases."""

    persisted: ClassVar[dict[str, Any]] = {
        "customers": dict[str, Customer],
        "transactions": dict[str, Transaction],
        "purchases": dict[str, Purchase],
    }

    def __init__(self, config: SandboxConfig, bg: Background) -> None:
        self.config = config
        self.bg = bg
        self.faults = Faults("loyalty")
        self.accounts = dict(ACCOUNTS)
        self.customers: dict[str, Customer] = {}
        self.transactions: dict[str, Transaction] = {}
        self.purchases: dict[str, Purchase] = {}

    def customer(self, phone: str) -> Customer:
        c = self.customers.get(phone)
        if c is None:
            digits = re.sub(r"\D", "", phone)[-4:].rjust(4, "0")
            c = Customer(phone=phone, balance=WELCOME_BALANCE, card=f"7000 00** **** {digits}")
            c.record("welcome", WELCOME_BALANCE)
            self.customers[phone] = c
            log.info("loyalty.customer_created", phone=phone)
        return c

    def held(self, phone: str) -> int:
        return sum(t.held for t in self.transactions.values() if t.phone == phone and t.state == "held")

    def pending(self, phone: str) -> int:
        return sum(p.pending for p in self.purchases.values() if p.phone == phone)

    def balance_view(self, phone: str) -> dict[str, Any]:
        c = self.customer(phone)
        return {
            "phone": c.phone,
            "balance": c.balance,
            "pending": self.pending(phone),
            "held": self.held(phone),
            "currency": CURRENCY,
            "card": c.card,
            "status": "blocked" if c.blocked else "active",
        }

    def calculate(self, req: "CalculateIn") -> dict[str, Any]:
        c = self.customer(req.phone)
        return calculate(
            _lines(req.lines), bonus_to_spend=req.bonus_to_spend, promo_code=req.promo_code,
            balance=c.balance, blocked=c.blocked,
        )

    def begin(self, req: "BeginIn") -> dict[str, Any]:
        fingerprint = (req.purchase_id, req.phone, tuple((l.pos_id, l.sku, l.price, l.qty) for l in req.lines),
                       req.bonus_to_spend, (req.promo_code or "").upper(), req.expected_total)
        tx = self.transactions.get(req.transaction_id)
        if tx is not None:
            if tx.state == "rolled_back":
                raise LoyaltyError(409, "TransactionRolledBack", "Transaction was rolled back")
            if tx.fingerprint != fingerprint:
                raise LoyaltyError(409, "TransactionConflict", "Transaction id was used for a different request")
            assert tx.answer is not None
            return tx.answer
        c = self.customer(req.phone)
        if c.blocked:
            raise LoyaltyError(409, "CardBlocked", "Card is blocked")
        if req.bonus_to_spend > c.balance:
            raise LoyaltyError(409, "NotEnoughBonuses", f"Not enough bonuses: {c.balance} available")
        lines = _lines(req.lines)
        calc = calculate(lines, bonus_to_spend=req.bonus_to_spend, promo_code=req.promo_code,
                         balance=c.balance, blocked=False)
        if calc["total"] != req.expected_total:
            return {"status": "PriceHasBeenChanged", "calculation": calc}
        tx = Transaction(req.transaction_id, req.purchase_id, req.phone, fingerprint, "held",
                         lines=lines, held=calc["bonus_spent"])
        c.balance -= tx.held
        c.record("hold", -tx.held, purchase_id=req.purchase_id, transaction_id=req.transaction_id)
        tx.answer = {"status": "Processed", "calculation": calc}
        self.transactions[req.transaction_id] = tx
        log.info("loyalty.begin", transaction_id=req.transaction_id, held=tx.held)
        return tx.answer

    def commit(self, transaction_id: str, req: "CommitIn") -> dict[str, Any]:
        tx = self.transactions.get(transaction_id)
        if tx is None:
            raise LoyaltyError(404, "TransactionNotFound", "No such transaction")
        if tx.purchase_id != req.purchase_id:
            raise LoyaltyError(409, "PurchaseMismatch", "Transaction belongs to another purchase")
        if tx.state == "committed":
            assert tx.commit_answer is not None
            return tx.commit_answer
        if tx.state == "rolled_back":
            raise LoyaltyError(409, "AlreadyRolledBack", "Transaction was rolled back")
        if tx.purchase_id in self.purchases:
            raise LoyaltyError(409, "PurchaseAlreadyCommitted", "Another transaction of this purchase is committed")
        orig = [line.qty for line in tx.lines]
        if req.lines is None:
            kept = orig
        else:
            final = {ql.pos_id: ql.qty for ql in req.lines}
            unknown = set(final) - {line.pos_id for line in tx.lines}
            if unknown:
                raise LoyaltyError(422, "UnknownLine", f"No such lines: {sorted(unknown)}")
            kept = [final.get(line.pos_id, 0) for line in tx.lines]
            if any(k > q for k, q in zip(kept, orig)):
                raise LoyaltyError(422, "QuantityIncreased", "Final quantity exceeds the begun quantity")
        bonuses = scale([line.bonus for line in tx.lines], kept, orig)
        discounts = scale([line.discount for line in tx.lines], kept, orig)
        paid = [line.price * k - d - b for line, k, d, b in zip(tx.lines, kept, discounts, bonuses)]
        accrual = sum(paid) * ACCRUAL_PCT // 100
        accruals = split(accrual, paid)
        written_off = sum(bonuses)
        released = tx.held - written_off

        c = self.customer(tx.phone)
        tx.state = "committed"
        tx.held = 0
        c.record("write_off", -written_off, purchase_id=tx.purchase_id, transaction_id=transaction_id)
        if released:
            c.balance += released
            c.record("release", released, purchase_id=tx.purchase_id, transaction_id=transaction_id)
        self.purchases[tx.purchase_id] = Purchase(
            purchase_id=tx.purchase_id, phone=tx.phone, transaction_id=transaction_id, order_id=req.order_id,
            lines={line.pos_id: PurchaseLine(line.pos_id, k, b, a)
                   for line, k, b, a in zip(tx.lines, kept, bonuses, accruals)},
            accrual=accrual, pending=accrual,
        )
        c.record("accrual_pending", accrual, purchase_id=tx.purchase_id)
        tx.commit_answer = {"status": "Success", "bonus_written_off": written_off, "bonus_to_accrue": accrual}
        log.info("loyalty.commit", transaction_id=transaction_id, written_off=written_off, accrual=accrual)
        return tx.commit_answer

    def rollback(self, transaction_id: str, purchase_id: str | None) -> dict[str, Any]:
        tx = self.transactions.get(transaction_id)
        if tx is None:  # never arrived: remember, so a late begin is refused
            self.transactions[transaction_id] = Transaction(transaction_id, purchase_id or "", "", (), "rolled_back")
            return {"status": "Success", "bonus_released": 0}
        if purchase_id is not None and tx.purchase_id != purchase_id:
            raise LoyaltyError(409, "PurchaseMismatch", "Transaction belongs to another purchase")
        if tx.state == "committed":
            raise LoyaltyError(409, "AlreadyCommitted", "Transaction is committed; use a return")
        released = tx.held
        if tx.state == "held":
            c = self.customer(tx.phone)
            c.balance += released
            c.record("release", released, purchase_id=tx.purchase_id, transaction_id=transaction_id)
            tx.state = "rolled_back"
            tx.held = 0
            log.info("loyalty.rollback", transaction_id=transaction_id, released=released)
            return {"status": "Success", "bonus_released": released}
        return {"status": "Success", "bonus_released": 0}

    def _purchase(self, purchase_id: str) -> Purchase:
        p = self.purchases.get(purchase_id)
        if p is None:
            raise LoyaltyError(404, "PurchaseNotFound", "No committed purchase with this id")
        return p

    def return_lines(self, purchase_id: str, req: "ReturnIn") -> dict[str, Any]:
        p = self._purchase(purchase_id)
        if req.return_id in p.returns:
            return p.returns[req.return_id]
        wanted: dict[int, int] = {}
        for ql in req.lines:
            wanted[ql.pos_id] = wanted.get(ql.pos_id, 0) + ql.qty
        for pos_id, qty in wanted.items():
            pl = p.lines.get(pos_id)
            if pl is None:
                raise LoyaltyError(422, "UnknownLine", f"No line {pos_id} in the purchase")
            if pl.returned + qty > pl.qty:
                raise LoyaltyError(409, "TooManyUnits", f"Line {pos_id}: {pl.qty - pl.returned} units left to return")
        bonus_back = accrual_back = 0
        for pos_id, qty in wanted.items():
            pl = p.lines[pos_id]
            pl.returned += qty
            b = pl.bonus * pl.returned // pl.qty - pl.bonus_returned
            a = pl.accrual * pl.returned // pl.qty - pl.accrual_reversed
            pl.bonus_returned += b
            pl.accrual_reversed += a
            bonus_back += b
            accrual_back += a
        c = self.customer(p.phone)
        refs = {"purchase_id": purchase_id, "return_id": req.return_id}
        if bonus_back:
            c.balance += bonus_back
            c.record("return_bonus", bonus_back, **refs)
        if not p.activated:
            taken = min(accrual_back, p.pending)
            p.pending -= taken
        else:
            taken = min(accrual_back, c.balance)
            c.balance -= taken
        if accrual_back:
            c.record("reverse_accrual", -taken, pending=not p.activated, **refs)
        answer = {"status": "Success", "bonus_returned": bonus_back, "accrual_reversed": taken,
                  "accrual_not_reversed": accrual_back - taken}
        p.returns[req.return_id] = answer
        log.info("loyalty.return", purchase_id=purchase_id, return_id=req.return_id, **answer)
        return answer

    def activate(self, purchase_id: str) -> dict[str, Any]:
        p = self._purchase(purchase_id)
        amount = p.pending
        p.pending = 0
        p.activated = True
        if amount:
            c = self.customer(p.phone)
            c.balance += amount
            c.record("activate", amount, purchase_id=purchase_id)
        return {"status": "Success", "activated": amount}


def _lines(lines: list["LineIn"]) -> list[Line]:
    ids = [line.pos_id for line in lines]
    if len(set(ids)) != len(ids):
        raise LoyaltyError(422, "InvalidRequest", "pos_id must be unique")
    return [Line(line.pos_id, line.sku, line.price, line.qty) for line in lines]


# --- HTTP ------------------------------------------------------------------------------------------


class LineIn(BaseModel):
    pos_id: int
    sku: str
    price: int = Field(ge=0)
    qty: int = Field(ge=1)


class CalculateIn(BaseModel):
    phone: str = Field(min_length=1)
    lines: list[LineIn] = Field(min_length=1)
    bonus_to_spend: int = Field(0, ge=0)
    promo_code: str | None = None


class BeginIn(CalculateIn):
    purchase_id: str = Field(min_length=1)
    transaction_id: str = Field(min_length=1)
    expected_total: int


class QtyLine(BaseModel):
    pos_id: int
    qty: int = Field(ge=0)


class ReturnLine(BaseModel):
    pos_id: int
    qty: int = Field(ge=1)


class CommitIn(BaseModel):
    purchase_id: str
    order_id: str
    lines: list[QtyLine] | None = None


class RollbackIn(BaseModel):
    purchase_id: str | None = None


class ReturnIn(BaseModel):
    return_id: str = Field(min_length=1)
    lines: list[ReturnLine] = Field(min_length=1)


class CustomerPatch(BaseModel):
    balance: int | None = Field(None, ge=0)
    blocked: bool | None = None


def router(sim: LoyaltySim) -> APIRouter:
    r = APIRouter(tags=["loyalty"])

    async def wire(request: Request, operation: str, fn: Any, *args: Any) -> JSONResponse:
        await sim.faults.check(operation)
        if not _authorized(request, sim.accounts):
            return JSONResponse(
                {"status": "Error", "code": "Unauthorized", "message": "Bad credentials"},
                status_code=401, headers={"WWW-Authenticate": 'Basic realm="loyalty"'},
            )
        try:
            return JSONResponse(fn(*args))
        except LoyaltyError as exc:
            return JSONResponse({"status": "Error", "code": exc.code, "message": exc.message}, status_code=exc.http_status)

    @r.get("/loyalty/v1/customers/{phone}/balance", summary="Balance of a customer (created on first sight)")
    async def balance(phone: str, request: Request) -> JSONResponse:
        return await wire(request, "balance", sim.balance_view, phone)

    @r.post("/loyalty/v1/calculate", summary="Price a cart: discounts, bonus write-off cap, accrual")
    async def calc(body: CalculateIn, request: Request) -> JSONResponse:
        return await wire(request, "calculate", sim.calculate, body)

    @r.post("/loyalty/v1/transactions/begin", summary="Begin a purchase transaction: hold the write-off")
    async def begin(body: BeginIn, request: Request) -> JSONResponse:
        return await wire(request, "begin", sim.begin, body)

    @r.post("/loyalty/v1/transactions/{transaction_id}/commit", summary="Make the write-off final, schedule accrual")
    async def commit(transaction_id: str, body: CommitIn, request: Request) -> JSONResponse:
        return await wire(request, "commit", sim.commit, transaction_id, body)

    @r.post("/loyalty/v1/transactions/{transaction_id}/rollback", summary="Return the held bonus")
    async def rollback(transaction_id: str, request: Request, body: RollbackIn | None = None) -> JSONResponse:
        return await wire(request, "rollback", sim.rollback, transaction_id, body.purchase_id if body else None)

    @r.post("/loyalty/v1/purchases/{purchase_id}/returns", summary="Return lines: give back bonus, take back accrual")
    async def returns(purchase_id: str, body: ReturnIn, request: Request) -> JSONResponse:
        return await wire(request, "return", sim.return_lines, purchase_id, body)

    @r.post("/loyalty/v1/purchases/{purchase_id}/activate", summary="Pending accrual becomes spendable")
    async def activate(purchase_id: str, request: Request) -> JSONResponse:
        return await wire(request, "activate", sim.activate, purchase_id)

    # --- drive ---------------------------------------------------------------------------------

    def customer_view(phone: str) -> dict[str, Any]:
        c = sim.customer(phone)
        return {
            **sim.balance_view(phone),
            "purchases": [p.view() for p in sim.purchases.values() if p.phone == phone],
            "operations": list(c.operations),
        }

    @r.get("/sandbox/loyalty/customers/{phone}", tags=["sandbox:loyalty"], summary="A customer in full")
    async def get_customer(phone: str) -> dict[str, Any]:
        return customer_view(phone)

    @r.post("/sandbox/loyalty/customers/{phone}", tags=["sandbox:loyalty"], summary="Set balance / block a card")
    async def set_customer(phone: str, patch: CustomerPatch) -> dict[str, Any]:
        c = sim.customer(phone)
        if patch.balance is not None:
            c.record("adjust", patch.balance - c.balance)
            c.balance = patch.balance
            c.operations[-1]["balance_after"] = c.balance
        if patch.blocked is not None:
            c.blocked = patch.blocked
        return customer_view(phone)

    return r


def _authorized(request: Request, accounts: dict[str, str]) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(token).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return accounts.get(user) == password and bool(user)
