"""Simulated acquiring bank: a Sber-style payment gateway (two-stage and one-stage payments).

Wire shape: ``/work/shared/reference/acquiring.md`` and ``docs/wire/acquiring.md``, from Sber's
public integration wiki (securepayments.sberbank.ru/wiki/doku.php/integration:api:rest:requests:
register, registerpreauth, deposit, reverse, refund, getorderstatus, getorderstatusextended,
getbindings). ``tests/contract/test_sber_clients.py`` drives it with the PyPI clients
``sber-payments`` and ``gocream-pysberbank``, unchanged. Everything is under ``/acquiring``:

* ``POST /acquiring/payment/rest/{registerPreAuth,register,deposit,reverse,refund,decline,
  getOrderStatusExtended,getOrderStatus,getBindings}.do``: form-encoded (query parameters are
  accepted too), credentials as ``userName`` + ``password``, JSON answers that always carry
  ``errorCode`` (``"0"`` = success) and, on failure, ``errorMessage`` in the request's
  ``language`` (``en``; ``ru`` or none: Russian, the sandbox merchant's default). Business
  errors are HTTP 200 like the real gateway; an unknown method (404) or an injected fault (5xx)
  carries ``errorCode`` 7 too (:func:`wire_error`).
  Error codes used: 1 order number already processed · 2 no bindings for the client ·
  3 unknown currency · 4 missing parameter · 5 bad value / access denied / idempotency key
  reused for another request · 6 unknown order · 7 the order is not in a state that allows
  the operation.
* ``getOrderStatusExtended.do`` → ``orderStatus``, ``paymentAmountInfo``, ``cardAuthInfo{pan
  (masked), maskedPan, expiration, cardholderName, approvalCode}``, ``bindingInfo{clientId,
  bindingId}``; ``getOrderStatus.do`` (older, by ``orderId``) → capitalised ``ErrorCode,
  OrderStatus, OrderNumber, Pan, Amount`` (:meth:`AcquiringSim.legacy_status`).
* ``getBindings.do {clientId}`` → ``bindings[{bindingId, maskedPan, expiryDate}]`` (errorCode 2
  when none): an order registered with ``clientId`` and paid binds the payer's card.
* ``deposit.do`` / ``reverse.do`` / ``refund.do`` honour an ``X-Idempotency-Key`` header with
  the newer gateway's semantics (reference; Stripe's in ``fiscal-and-idempotency.md``): the first
  answer (errors included) is stored and a repeat with the same key returns it without doing
  anything; the same key on a different request (operation, order, amount, bundle) is refused
  with errorCode 5. Keys are kept for the sandbox's lifetime (the real gateway: 24 h).
  Without the header the classic semantics apply (every call acts).
* The payment page (``formUrl``):
  ``GET /acquiring/payment/merchants/sandbox/payment_ru.html?mdOrder=...`` shows the order
  with *Pay* / *Decline* buttons; they POST to the same address and are redirected to
  ``returnUrl`` / ``failUrl`` with ``orderId`` appended, like the real page.

SBP (the fast payment system, «Система быстрых платежей»; the RBS/Sber gateway's SBP section,
e.g. mts.rbsuat.com/sandbox/ru/integration/api/sbp.html and sandbox.vtb.ru/…/sbp.html of the
same gateway, and the public clients that call it): a one-stage order (``register.do``) gets a
dynamic QR with ``POST sbp/c2b/qr/dynamic/get.do {mdOrder, qrFormat: matrix|image, qrWidth,
qrHeight}`` → ``{qrId, payload (the https://qr.nspk.ru/… link), renderedQr (base64 PNG, image
only), qrStatus}``; ``sbp/c2b/qr/status.do {mdOrder, qrId}`` → ``qrStatus`` STARTED | ACCEPTED |
REJECTED; ``sbp/c2b/qr/dynamic/reject.do`` closes an unpaid QR. A two-stage order gets no QR
(errorCode 7). An SBP payment has no hold: ``deposit.do`` and ``reverse.do`` are refused
(errorCode 7), ``refund.do`` (partial, repeated) is the way money goes back; callbacks and
``getOrderStatusExtended.do`` as for a one-stage card payment, with ``paymentWay: "SBP_C2B"``
(``CARD`` otherwise) and no ``cardAuthInfo``. The payer's bank app is the drive endpoint
``…/orders/{mdOrder}/pay`` (or auto mode), as for cards.

Callbacks: HTTP GET to the order's ``dynamicCallbackUrl`` (or, when none was given,
``{config.orkestr_url}/callbacks/acquiring``) with ``mdOrder``, ``orderNumber``,
``operation`` (approved | deposited | reversed | refunded | declinedByTimeout), ``status``
(1 success / 0 failure; a declined payment is ``approved`` + ``0``, ``deposited`` + ``0`` for a
one-stage order), ``amount`` and ``checksum`` (:func:`adapters.wire.acquiring.callback_checksum` with
``config.acquiring_callback_secret``). Sent through :class:`sandbox.state.Outbox` (persisted, retried), one
at a time per order so they arrive in order.

``decline.do`` ("Запрос отмены неоплаченного заказа" of the public Sber client libraries, e.g. the
``sberbank_acquiring`` package's ``DeclineRequest``: ``orderId`` or ``orderNumber``) closes an order
nobody paid yet: it becomes declined (6) and its payment page refuses to pay. A repeat answers
success; an order already paid (held or deposited) is refused with errorCode 7. No callback: the
merchant asked for it.

Session timeout: an order not paid within ``sessionTimeoutSecs`` (default 1200) becomes
declined (6, actionCode -2007) and a ``declinedByTimeout`` callback with status 0 is sent.
Auto mode: an order is approved by itself after ``config.auto_delay_s``.

Drive endpoints (``/sandbox/acquiring``): ``GET /orders``, ``GET /orders/{mdOrder}``,
``POST /orders/{mdOrder}/pay`` ``{"outcome": "approve"|"decline", "action_code"?: int}``,
``POST /orders/{mdOrder}/expire`` (session timeout now), plus ``/faults``. Fault operation
names: registerPreAuth, register, deposit, reverse, refund, decline, getOrderStatusExtended, payment_page,
sbp/c2b/qr/dynamic/get, sbp/c2b/qr/status.

Merchant accounts accepted: :data:`ACCOUNTS` (the defaults of ``settings.acquiring_user`` /
``acquiring_password``); ``sim.accounts`` can be changed by a test.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel

from adapters.wire.acquiring import CURRENCY_ALPHA, BankOrderStatus, callback_checksum
from sandbox.common import Background, Faults, SandboxConfig
from sandbox.state import Persisted

log = structlog.get_logger("sandbox.acquiring")

#: merchant API accounts the sandbox gateway accepts (userName -> password)
ACCOUNTS: dict[str, str] = {"orkestr-api": "orkestr"}
PAYMENT_PAGE_PATH = "/acquiring/payment/merchants/sandbox/payment_ru.html"
DEFAULT_CALLBACK_PATH = "/callbacks/acquiring"
DEFAULT_SESSION_TIMEOUT_S = 1200
SANDBOX_MASKED_PAN = "411111**1111"
SANDBOX_EXPIRY = "203012"
SANDBOX_CARDHOLDER = "SANDBOX CARDHOLDER"
SANDBOX_APPROVAL_CODE = "123456"

ACTION_REGISTERED = (-100, "No payment attempts")
ACTION_APPROVED = (0, "Payment approved")
ACTION_DECLINED = (116, "Declined: insufficient funds")
ACTION_TIMEOUT = (-2007, "Payment session timed out")

PAYMENT_STATE_NAMES = {
    BankOrderStatus.REGISTERED: "CREATED",
    BankOrderStatus.HELD: "APPROVED",
    BankOrderStatus.DEPOSITED: "DEPOSITED",
    BankOrderStatus.REVERSED: "REVERSED",
    BankOrderStatus.REFUNDED: "REFUNDED",
    BankOrderStatus.ACS_STARTED: "STARTED",
    BankOrderStatus.DECLINED: "DECLINED",
}


class GatewayError(Exception):
    """A business error: ``errorCode`` and the message in English and Russian (``language``)."""

    def __init__(self, code: str, message: str, message_ru: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_ru = message_ru

    def answer(self) -> dict[str, str]:
        return {"errorCode": self.code, "errorMessage": self.message, "errorMessageRu": self.message_ru}


def localised(answer: dict[str, Any], language: str) -> dict[str, Any]:
    """The wire answer in the request's ``language`` (ISO 639-1: ``ru``, ``en``; anything else,
    or none, is the sandbox merchant's default, Russian): ``errorMessage`` is that language's."""
    out = {k: v for k, v in answer.items() if k != "errorMessageRu"}
    if language != "en" and "errorMessage" in answer:
        out["errorMessage"] = answer.get("errorMessageRu") or SUCCESS_RU.get(answer["errorMessage"], answer["errorMessage"])
    return out


SUCCESS_RU = {"Success": "Успешно"}


def _no_hold_for_sbp(order: Order, operation: str) -> None:
    """SBP moves money at once (no hold): deposit and reverse are refused, refund is the way back."""
    if order.sbp_qr_id:
        raise GatewayError("7", f"{operation} is not available for an SBP payment (no hold): use refund.do",
                           f"Операция {operation} недоступна для оплаты через СБП (нет холдирования): используйте refund.do")


def zlib_crc(text: str) -> str:
    import zlib

    return f"{zlib.crc32(text.encode()) & 0xFFFF:04x}"


#: a 1×1 PNG standing in for the rendered QR (``renderedQr`` of qrFormat=image)
SANDBOX_QR_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a5b50000000049454e44ae426082"
)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class CallbackRecord:
    operation: str
    status: int
    amount: int
    url: str
    params: dict[str, str]
    state: Literal["pending", "delivered", "failed"] = "pending"
    http_status: int | None = None
    sent_at_ms: int | None = None

    def view(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "status": self.status,
            "amount": self.amount,
            "url": self.url,
            "state": self.state,
            "http_status": self.http_status,
            "sent_at": self.sent_at_ms,
        }


@dataclass
class Order:
    md_order: str
    order_number: str
    amount: int
    currency: str  # ISO numeric
    two_stage: bool
    description: str
    return_url: str
    fail_url: str
    phone: str
    email: str
    session_timeout_s: int
    callback_url: str
    bundle: dict[str, Any] | None
    json_params: dict[str, Any]
    created_ms: int = field(default_factory=_now_ms)
    status: BankOrderStatus = BankOrderStatus.REGISTERED
    action_code: int = ACTION_REGISTERED[0]
    action_description: str = ACTION_REGISTERED[1]
    approved: int = 0
    deposited: int = 0
    refunded: int = 0
    deposited_ms: int | None = None
    masked_pan: str | None = None
    #: the merchant's customer id (``clientId``): a paid order binds the card to it
    client_id: str = ""
    binding_id: str | None = None
    #: a dynamic SBP QR was issued for the order (``sbp/c2b/qr/dynamic/get.do``): it is paid
    #: through the fast payment system, one stage, no hold
    sbp_qr_id: str = ""
    sbp_qr_status: str = ""
    operations: list[dict[str, Any]] = field(default_factory=list)
    refund_bundles: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[CallbackRecord] = field(default_factory=list)

    def op(self, type_: str, amount: int) -> None:
        self.operations.append({"type": type_, "amount": amount, "date": _now_ms()})

    def summary(self) -> dict[str, Any]:
        return {
            "md_order": self.md_order,
            "order_number": self.order_number,
            "status": int(self.status),
            "state": self.status.name.lower(),
            "amount": self.amount,
            "currency": CURRENCY_ALPHA.get(self.currency, self.currency),
            "approved": self.approved,
            "deposited": self.deposited,
            "refunded": self.refunded,
            "payment_way": self.payment_way,
        }

    @property
    def payment_way(self) -> str:
        return "SBP_C2B" if self.sbp_qr_id else "CARD"

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "two_stage": self.two_stage,
            "description": self.description,
            "action_code": self.action_code,
            "action_description": self.action_description,
            "masked_pan": self.masked_pan,
            "session_timeout_secs": self.session_timeout_s,
            "callback_url": self.callback_url,
            "return_url": self.return_url,
            "fail_url": self.fail_url,
            "bundle": self.bundle,
            "refund_bundles": self.refund_bundles,
            "created_at": self.created_ms,
            "operations": list(self.operations),
            "callbacks": [c.view() for c in self.callbacks],
        }


def _int_param(params: dict[str, str], name: str, *, required: bool = True, default: int | None = None) -> int:
    raw = params.get(name, "")
    if raw == "":
        if required:
            raise GatewayError("4", f"[{name}] is empty", f"Не указан параметр [{name}]")
        assert default is not None
        return default
    try:
        return int(raw)
    except ValueError:
        raise GatewayError("5", f"[{name}] is not an integer: {raw!r}", f"[{name}] не целое число: {raw!r}") from None


def _parse_bundle(raw: str, amount: int) -> dict[str, Any] | None:
    """Validate ``orderBundle`` (JSON string): ``cartItems.items[].itemAmount`` sums to ``amount``."""
    if not raw:
        return None
    try:
        bundle = json.loads(raw)
        items = bundle["cartItems"]["items"]
        if not isinstance(items, list) or not items:
            raise ValueError("no items")
        total = sum(int(item["itemAmount"]) for item in items)
    except (ValueError, KeyError, TypeError) as exc:
        raise GatewayError("5", f"[orderBundle] is invalid: {exc}", f"Неверный [orderBundle]: {exc}") from None
    if total != amount:
        raise GatewayError(
            "5",
            f"[orderBundle] items sum to {total}, amount is {amount}",
            f"Сумма позиций [orderBundle] {total} не равна сумме заказа {amount}",
        )
    parsed: dict[str, Any] = bundle
    return parsed


class AcquiringSim(Persisted):
    """State of the simulated gateway. Handlers mutate state without awaiting in between,
    so the event loop serialises them; callbacks go out through the outbox. Kept across
    restarts: orders, the order-number index, idempotency answers, bindings."""

    persisted: ClassVar[dict[str, Any]] = {
        "orders": dict[str, Order],
        "by_number": dict[str, str],
        "idempotency": dict[str, tuple[tuple[Any, ...], dict[str, Any]]],
        "bindings": dict[str, dict[str, str]],
    }

    def __init__(self, config: SandboxConfig, bg: Background) -> None:
        self.config = config
        self.bg = bg
        self.faults = Faults("acquiring")
        self.accounts = dict(ACCOUNTS)
        self.orders: dict[str, Order] = {}
        self.by_number: dict[str, str] = {}
        #: idempotency key -> (request fingerprint, stored answer)
        self.idempotency: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        #: bindingId -> {bindingId, clientId, maskedPan, expiryDate}: cards saved for a clientId
        self.bindings: dict[str, dict[str, str]] = {}
        bg.outbox.on_done("acquiring", self._delivered)

    async def start(self) -> None:
        """After a restart: the session timers of unpaid orders run on (from their creation
        time), and auto mode pays what it had not paid yet."""
        now = _now_ms()
        for order in self.orders.values():
            if order.status == BankOrderStatus.REGISTERED:
                left_s = max(0.0, (order.created_ms + order.session_timeout_s * 1000 - now) / 1000)
                self.bg.spawn(self._expire_later(order.md_order, left_s))
                if self.config.auto:
                    self.bg.spawn(self._auto_pay(order.md_order))

    # --- wire operations ------------------------------------------------------------------------

    def _auth(self, params: dict[str, str]) -> None:
        user, password = params.get("userName", ""), params.get("password", "")
        if not user or self.accounts.get(user) != password:
            raise GatewayError("5", "Access denied", "Доступ запрещён")

    def _order(self, params: dict[str, str]) -> Order:
        md = params.get("orderId", "")
        if not md:
            raise GatewayError("4", "[orderId] is empty", "Не указан номер заказа [orderId]")
        order = self.orders.get(md)
        if order is None:
            raise GatewayError("6", "Unregistered orderId", "Незарегистрированный orderId")
        return order

    def register(self, params: dict[str, str], *, two_stage: bool) -> dict[str, Any]:
        self._auth(params)
        order_number = params.get("orderNumber", "")
        if not order_number:
            raise GatewayError("4", "[orderNumber] is empty", "Не указан номер заказа [orderNumber]")
        amount = _int_param(params, "amount")
        if amount <= 0:
            raise GatewayError("5", "[amount] must be positive", "Сумма [amount] должна быть больше нуля")
        if not params.get("returnUrl"):
            raise GatewayError("4", "[returnUrl] is empty", "Не указан адрес возврата [returnUrl]")
        currency = params.get("currency") or "643"
        if currency not in CURRENCY_ALPHA:
            raise GatewayError("3", f"Unknown currency {currency}", f"Неизвестная валюта {currency}")
        timeout = _int_param(params, "sessionTimeoutSecs", required=False, default=DEFAULT_SESSION_TIMEOUT_S)
        if timeout <= 0:
            raise GatewayError("5", "[sessionTimeoutSecs] must be positive", "[sessionTimeoutSecs] должен быть больше нуля")
        bundle = _parse_bundle(params.get("orderBundle", ""), amount)
        try:
            json_params = json.loads(params["jsonParams"]) if params.get("jsonParams") else {}
            if not isinstance(json_params, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise GatewayError("5", f"[jsonParams] is invalid: {exc}", f"Неверный [jsonParams]: {exc}") from None
        if order_number in self.by_number:
            raise GatewayError("1", "Order number already processed", "Заказ с таким номером уже обработан")

        order = Order(
            md_order=str(uuid.uuid4()),
            order_number=order_number,
            amount=amount,
            currency=currency,
            two_stage=two_stage,
            description=params.get("description", ""),
            return_url=params["returnUrl"],
            fail_url=params.get("failUrl", ""),
            phone=params.get("phone", ""),
            email=params.get("email", ""),
            session_timeout_s=timeout,
            callback_url=params.get("dynamicCallbackUrl") or f"{self.config.orkestr_url}{DEFAULT_CALLBACK_PATH}",
            bundle=bundle,
            json_params=json_params,
            client_id=params.get("clientId", ""),
        )
        self.orders[order.md_order] = order
        self.by_number[order_number] = order.md_order
        log.info("acquiring.registered", md_order=order.md_order, order_number=order_number, amount=amount)
        self.bg.spawn(self._expire_later(order.md_order, timeout))
        if self.config.auto:
            self.bg.spawn(self._auto_pay(order.md_order))
        return {"errorCode": "0", "orderId": order.md_order, "formUrl": self.form_url(order.md_order)}

    def form_url(self, md_order: str) -> str:
        return f"{self.config.public_url}{PAYMENT_PAGE_PATH}?mdOrder={md_order}"

    def _idempotent(self, key: str | None, fingerprint: tuple[Any, ...], act: Any) -> dict[str, Any]:
        """Run ``act()`` once per key; a repeat returns the stored answer (errors included)."""
        if key:
            stored = self.idempotency.get(key)
            if stored is not None:
                if stored[0] != fingerprint:
                    raise GatewayError(
                        "5",
                        "Idempotency key was already used for a different request",
                        "Ключ идемпотентности уже использован для другого запроса",
                    )
                log.info("acquiring.idempotent_repeat", key=key, operation=fingerprint[0])
                return stored[1]
        try:
            answer: dict[str, Any] = act()
        except GatewayError as exc:
            answer = exc.answer()
        if key:
            self.idempotency[key] = (fingerprint, answer)
        return answer

    def deposit(self, params: dict[str, str], key: str | None) -> dict[str, Any]:
        self._auth(params)
        order = self._order(params)
        amount = _int_param(params, "amount")

        def act() -> dict[str, Any]:
            _no_hold_for_sbp(order, "deposit")
            if order.status != BankOrderStatus.HELD:
                raise GatewayError("7", "Payment must be in correct state", "Платёж должен быть в корректном состоянии")
            value = amount or order.approved
            if value < 0 or value > order.approved:
                raise GatewayError(
                    "5",
                    f"Deposit amount must be between 0 and the approved {order.approved}",
                    f"Сумма списания должна быть от 0 до одобренной {order.approved}",
                )
            order.deposited = value
            order.status = BankOrderStatus.DEPOSITED
            order.deposited_ms = _now_ms()
            order.op("deposited", value)
            self._callback(order, "deposited", 1, value)
            return {"errorCode": "0", "errorMessage": "Success"}

        return self._idempotent(key, ("deposit", order.md_order, amount), act)

    def reverse(self, params: dict[str, str], key: str | None) -> dict[str, Any]:
        self._auth(params)
        order = self._order(params)

        def act() -> dict[str, Any]:
            _no_hold_for_sbp(order, "reverse")
            if order.status != BankOrderStatus.HELD:
                raise GatewayError("7", "Payment must be in correct state", "Платёж должен быть в корректном состоянии")
            order.status = BankOrderStatus.REVERSED
            order.op("reversed", order.approved)
            self._callback(order, "reversed", 1, order.approved)
            return {"errorCode": "0", "errorMessage": "Success"}

        return self._idempotent(key, ("reverse", order.md_order), act)

    def decline(self, params: dict[str, str]) -> dict[str, Any]:
        self._auth(params)
        if params.get("orderId"):
            order = self._order(params)
        else:
            md = self.by_number.get(params.get("orderNumber", ""))
            if md is None:
                raise GatewayError("6", "No such order", "Заказ не найден")
            order = self.orders[md]
        if order.status == BankOrderStatus.REGISTERED:
            order.status = BankOrderStatus.DECLINED  # actionCode stays "no payment attempts"
            order.op("declined", order.amount)
            log.info("acquiring.declined_by_merchant", md_order=order.md_order)
        elif order.status != BankOrderStatus.DECLINED:
            raise GatewayError(
                "7",
                "Order is already paid: reverse or refund it instead",
                "Заказ уже оплачен: отмените (reverse) или верните (refund) платёж",
            )
        return {"errorCode": "0", "errorMessage": "Success"}

    def refund(self, params: dict[str, str], key: str | None) -> dict[str, Any]:
        self._auth(params)
        order = self._order(params)
        amount = _int_param(params, "amount")
        raw_bundle = params.get("orderBundle", "")

        def act() -> dict[str, Any]:
            if order.status != BankOrderStatus.DEPOSITED:
                raise GatewayError("7", "Payment must be in correct state", "Платёж должен быть в корректном состоянии")
            if amount <= 0 or amount > order.deposited - order.refunded:
                raise GatewayError(
                    "5",
                    f"Refund amount must be between 1 and {order.deposited - order.refunded}",
                    f"Сумма возврата должна быть от 1 до {order.deposited - order.refunded}",
                )
            bundle = _parse_bundle(raw_bundle, amount)
            order.refunded += amount
            if bundle is not None:
                order.refund_bundles.append(bundle)
            if order.refunded == order.deposited:
                order.status = BankOrderStatus.REFUNDED
            order.op("refunded", amount)
            self._callback(order, "refunded", 1, amount)
            return {"errorCode": "0", "errorMessage": "Success"}

        return self._idempotent(key, ("refund", order.md_order, amount, raw_bundle), act)

    def _order_by_id_or_number(self, params: dict[str, str]) -> Order:
        if params.get("orderId"):
            order = self._order(params)
        elif params.get("orderNumber"):
            md = self.by_number.get(params["orderNumber"])
            if md is None:
                raise GatewayError("6", "No such order", "Заказ не найден")
            order = self.orders[md]
        else:
            raise GatewayError("4", "[orderId] is empty", "Не указан номер заказа [orderId]")
        return order

    def status(self, params: dict[str, str]) -> dict[str, Any]:
        """``getOrderStatusExtended.do``."""
        self._auth(params)
        order = self._order_by_id_or_number(params)
        answer: dict[str, Any] = {
            "errorCode": "0",
            "errorMessage": "Success",
            "orderNumber": order.order_number,
            "orderStatus": int(order.status),
            "actionCode": order.action_code,
            "actionCodeDescription": order.action_description,
            "amount": order.amount,
            "currency": order.currency,
            "date": order.created_ms,
            "orderDescription": order.description,
            "attributes": [{"name": "mdOrder", "value": order.md_order}],
            "paymentAmountInfo": {
                "approvedAmount": order.approved,
                "depositedAmount": order.deposited,
                "refundedAmount": order.refunded,
                "paymentState": PAYMENT_STATE_NAMES[order.status],
            },
            "operations": list(order.operations),
            "paymentWay": order.payment_way,
        }
        if order.deposited_ms is not None:
            answer["depositedDate"] = order.deposited_ms
        if order.masked_pan is not None and not order.sbp_qr_id:
            answer["cardAuthInfo"] = {
                "maskedPan": order.masked_pan,
                "pan": order.masked_pan,  # masked too: the gateway never shows a full card number
                "expiration": SANDBOX_EXPIRY,
                "cardholderName": SANDBOX_CARDHOLDER,
                "approvalCode": SANDBOX_APPROVAL_CODE if order.approved else "",
                "paymentSystem": "VISA",
            }
        if order.client_id:
            answer["bindingInfo"] = {"clientId": order.client_id, **({"bindingId": order.binding_id} if order.binding_id else {})}
        return answer

    def legacy_status(self, params: dict[str, str]) -> dict[str, Any]:
        """``getOrderStatus.do``: the older status method, by ``orderId``. Its documented keys
        are capitalised (``ErrorCode``, ``ErrorMessage``, ``OrderStatus``, ``OrderNumber``, ``Pan``,
        ``Amount``); the answer also carries ``errorCode``/``errorMessage`` like every other
        method, so a client reading either spelling sees an error as one."""
        self._auth(params)
        order = self._order(params)
        answer: dict[str, Any] = {
            "errorCode": "0",
            "errorMessage": "Success",
            "ErrorCode": "0",
            "ErrorMessage": "Success",
            "OrderStatus": int(order.status),
            "OrderNumber": order.order_number,
            "Amount": order.amount,
            "currency": order.currency,
            "Ip": "127.0.0.1",
        }
        if order.masked_pan is not None:
            answer.update(
                Pan=order.masked_pan,
                expiration=SANDBOX_EXPIRY,
                cardholderName=SANDBOX_CARDHOLDER,
                approvalCode=SANDBOX_APPROVAL_CODE if order.approved else "",
            )
        if order.client_id:
            answer["clientId"] = order.client_id
        if order.binding_id:
            answer["bindingId"] = order.binding_id
        return answer

    def get_bindings(self, params: dict[str, str]) -> dict[str, Any]:
        """``getBindings.do``: the cards saved for ``clientId``; none → errorCode 2."""
        self._auth(params)
        client_id = params.get("clientId", "")
        if not client_id:
            raise GatewayError("4", "[clientId] is empty", "Не указан [clientId]")
        found = [
            {k: b[k] for k in ("bindingId", "maskedPan", "expiryDate")}
            for b in self.bindings.values()
            if b["clientId"] == client_id
        ]
        if not found:
            raise GatewayError("2", "No bindings found for this clientId", "Связки для этого clientId не найдены")
        return {"errorCode": "0", "errorMessage": "Success", "bindings": found}

    def _bind(self, order: Order) -> None:
        """A paid order of a known customer (``clientId``) saves the card: one binding a card."""
        if not order.client_id or order.masked_pan is None:
            return
        for b in self.bindings.values():
            if b["clientId"] == order.client_id and b["maskedPan"] == order.masked_pan:
                order.binding_id = b["bindingId"]
                return
        binding_id = str(uuid.uuid4())
        self.bindings[binding_id] = {
            "bindingId": binding_id,
            "clientId": order.client_id,
            "maskedPan": order.masked_pan,
            "expiryDate": SANDBOX_EXPIRY,
        }
        order.binding_id = binding_id

    # --- SBP (the fast payment system) ---------------------------------------------------------

    def sbp_qr(self, params: dict[str, str]) -> dict[str, Any]:
        """``sbp/c2b/qr/dynamic/get.do``: a dynamic QR for a one-stage order not yet paid; asked
        again, the same QR (its ``qrId`` does not change)."""
        self._auth(params)
        md = params.get("mdOrder", "")
        if not md:
            raise GatewayError("4", "[mdOrder] is empty", "Не указан [mdOrder]")
        order = self.orders.get(md)
        if order is None:
            raise GatewayError("6", "Unregistered mdOrder", "Незарегистрированный mdOrder")
        if order.two_stage:
            raise GatewayError("7", "SBP payments are one-stage: register the order with register.do",
                               "Оплата через СБП только одностадийная: зарегистрируйте заказ через register.do")
        if order.status != BankOrderStatus.REGISTERED:
            raise GatewayError("7", "Payment must be in correct state", "Платёж должен быть в корректном состоянии")
        fmt = params.get("qrFormat", "matrix")
        if fmt not in ("matrix", "image"):
            raise GatewayError("5", "[qrFormat] is matrix or image", "[qrFormat]: matrix или image")
        self.bg.touch("acquiring")
        if not order.sbp_qr_id:
            order.sbp_qr_id = "AD1" + uuid.uuid5(uuid.NAMESPACE_URL, order.md_order).hex[:29].upper()
            order.sbp_qr_status = "STARTED"
            order.op("sbpQrIssued", order.amount)
        payload = (f"https://qr.nspk.ru/{order.sbp_qr_id}?type=02&bank=100000000111"
                   f"&sum={order.amount}&cur=RUB&crc={zlib_crc(order.sbp_qr_id + str(order.amount))}")
        answer: dict[str, Any] = {"errorCode": "0", "errorMessage": "Success", "qrId": order.sbp_qr_id,
                                  "payload": payload, "qrStatus": order.sbp_qr_status}
        if fmt == "image":
            answer["renderedQr"] = base64.b64encode(SANDBOX_QR_PNG).decode("ascii")
        return answer

    def _sbp_order(self, params: dict[str, str]) -> Order:
        """The order of ``mdOrder`` whose QR is ``qrId`` (errorCode 6 otherwise)."""
        self._auth(params)
        order = self.orders.get(params.get("mdOrder", ""))
        if order is None or not order.sbp_qr_id or params.get("qrId", order.sbp_qr_id) != order.sbp_qr_id:
            raise GatewayError("6", "No such QR for this order", "QR-код для этого заказа не найден")
        return order

    def sbp_status(self, params: dict[str, str]) -> dict[str, Any]:
        """``sbp/c2b/qr/status.do``: STARTED (waiting), ACCEPTED (paid), REJECTED (declined or
        closed)."""
        order = self._sbp_order(params)
        return {"errorCode": "0", "errorMessage": "Success", "qrType": "DYNAMIC", "qrStatus": order.sbp_qr_status,
                "transactionState": PAYMENT_STATE_NAMES[order.status]}

    def sbp_reject(self, params: dict[str, str]) -> dict[str, Any]:
        """``sbp/c2b/qr/dynamic/reject.do``: close an unpaid QR (the order cannot be paid by it)."""
        order = self._sbp_order(params)
        if order.status == BankOrderStatus.REGISTERED:
            self.bg.touch("acquiring")
            order.status = BankOrderStatus.DECLINED
            order.sbp_qr_status = "REJECTED"
            order.op("declined", order.amount)
        elif order.status != BankOrderStatus.DECLINED:
            raise GatewayError("7", "The QR is already paid: refund it instead", "QR-код уже оплачен: сделайте возврат")
        return {"errorCode": "0", "errorMessage": "Success"}

    # --- the payer's side (payment page, drive, auto mode, timeout) -------------------------------

    def pay(self, md_order: str, outcome: Literal["approve", "decline"], action_code: int | None = None) -> Order:
        self.bg.touch("acquiring")
        order = self.orders.get(md_order)
        if order is None:
            raise KeyError(md_order)
        if order.status != BankOrderStatus.REGISTERED:
            raise ValueError(f"order is {order.status.name.lower()}, not awaiting payment")
        order.masked_pan = None if order.sbp_qr_id else SANDBOX_MASKED_PAN
        if order.sbp_qr_id:
            order.sbp_qr_status = "ACCEPTED" if outcome == "approve" else "REJECTED"
        operation = "approved" if order.two_stage else "deposited"
        if outcome == "approve":
            order.approved = order.amount
            order.action_code, order.action_description = ACTION_APPROVED
            if order.two_stage:
                order.status = BankOrderStatus.HELD
                order.op("approved", order.amount)
            else:
                order.status = BankOrderStatus.DEPOSITED
                order.deposited = order.amount
                order.deposited_ms = _now_ms()
                order.op("deposited", order.amount)
            self._bind(order)
            self._callback(order, operation, 1, order.amount)
        else:
            order.status = BankOrderStatus.DECLINED
            order.action_code, order.action_description = ACTION_DECLINED
            if action_code is not None:
                order.action_code, order.action_description = action_code, f"Declined (action code {action_code})"
            order.op("declined", order.amount)
            self._callback(order, operation, 0, order.amount)
        log.info("acquiring.paid", md_order=md_order, outcome=outcome, status=int(order.status))
        return order

    def expire(self, md_order: str) -> bool:
        self.bg.touch("acquiring")
        order = self.orders.get(md_order)
        if order is None or order.status != BankOrderStatus.REGISTERED:
            return False
        order.status = BankOrderStatus.DECLINED
        if order.sbp_qr_id:
            order.sbp_qr_status = "REJECTED"
        order.action_code, order.action_description = ACTION_TIMEOUT
        order.op("declinedByTimeout", order.amount)
        self._callback(order, "declinedByTimeout", 0, order.amount)
        log.info("acquiring.session_timeout", md_order=md_order)
        return True

    async def _expire_later(self, md_order: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.expire(md_order)

    async def _auto_pay(self, md_order: str) -> None:
        await asyncio.sleep(self.config.auto_delay_s)
        order = self.orders.get(md_order)
        if order is not None and order.status == BankOrderStatus.REGISTERED:
            self.pay(md_order, "approve")

    # --- callbacks ------------------------------------------------------------------------------

    def _callback(self, order: Order, operation: str, status: int, amount: int) -> None:
        params = {
            "mdOrder": order.md_order,
            "orderNumber": order.order_number,
            "operation": operation,
            "status": str(status),
            "amount": str(amount),
        }
        params["checksum"] = callback_checksum(params, self.config.acquiring_callback_secret)
        record = CallbackRecord(operation, status, amount, order.callback_url, params)
        order.callbacks.append(record)
        # persisted and retried; one at a time per order, in order (sandbox.state.Outbox)
        ref = {"md_order": order.md_order, "index": len(order.callbacks) - 1}
        self.bg.outbox.send("acquiring", order.md_order, ref, "GET", record.url, params=record.params)

    def _delivered(self, ref: dict[str, Any], state: str, http_status: int | None) -> None:
        """The outbox's word on one callback: record it on the order."""
        self.bg.touch("acquiring")
        order = self.orders.get(ref["md_order"])
        if order is None or ref["index"] >= len(order.callbacks):
            return
        record = order.callbacks[ref["index"]]
        record.sent_at_ms = _now_ms()
        record.http_status = http_status
        if state != "pending":
            record.state = "delivered" if state == "delivered" else "failed"
        log.debug(
            "acquiring.callback",
            md_order=order.md_order,
            operation=record.operation,
            status=record.status,
            http_status=http_status,
            state=state,
        )


# --- HTTP ---------------------------------------------------------------------------------------


#: wire paths whose errors answer in the gateway's shape (see :func:`sandbox.app._wire_errors`)
WIRE_PREFIXES = ("/acquiring/payment/rest/",)


def wire_error(path: str, status: int, message: str) -> JSONResponse:
    """Every gateway answer carries ``errorCode``: an unknown method (404), a wrong HTTP method
    (405) or an injected fault (5xx) too, with code 7 (system error) and the HTTP status kept."""
    return JSONResponse({"errorCode": "7", "errorMessage": message}, status_code=status)


class PayCommand(BaseModel):
    outcome: Literal["approve", "decline"]
    action_code: int | None = None


async def _params(request: Request) -> dict[str, str]:
    params = {k: v for k, v in request.query_params.items()}
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _page(order: Order | None, md_order: str) -> str:
    if order is None:
        body = f"<p>Unknown order <code>{html.escape(md_order)}</code>.</p>"
    else:
        amount = f"{order.amount // 100}.{order.amount % 100:02d} {CURRENCY_ALPHA.get(order.currency, order.currency)}"
        rows = (
            f"<p>Order <b>{html.escape(order.order_number)}</b></p>"
            f"<p>{html.escape(order.description)}</p>"
            f"<p class='amount'>Amount: <b>{html.escape(amount)}</b></p>"
        )
        if order.status == BankOrderStatus.REGISTERED:
            md = html.escape(order.md_order)
            buttons = (
                f"<form method='post' action='{PAYMENT_PAGE_PATH}'>"
                f"<input type='hidden' name='mdOrder' value='{md}'>"
                "<button name='outcome' value='approve'>Pay</button> "
                "<button name='outcome' value='decline'>Decline</button></form>"
            )
        else:
            buttons = f"<p>Status: <b>{order.status.name.lower()}</b> ({html.escape(order.action_description)})</p>"
        body = rows + buttons
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sandbox payment</title></head>"
        f"<body><h1>Sandbox bank: payment</h1>{body}</body></html>"
    )


def router(sim: AcquiringSim) -> APIRouter:
    r = APIRouter(tags=["acquiring"])

    def answer(params: dict[str, str], fn: Any, *args: Any) -> JSONResponse:
        language = params.get("language", "").strip().lower()
        try:
            return JSONResponse(localised(fn(*args), language))
        except GatewayError as exc:
            return JSONResponse(localised(exc.answer(), language))

    @r.post("/acquiring/payment/rest/registerPreAuth.do", summary="Register a two-stage payment (hold)")
    async def register_preauth(request: Request) -> JSONResponse:
        await sim.faults.check("registerPreAuth")
        params = await _params(request)
        return answer(params, lambda: sim.register(params, two_stage=True))

    @r.post("/acquiring/payment/rest/register.do", summary="Register a one-stage payment")
    async def register(request: Request) -> JSONResponse:
        await sim.faults.check("register")
        params = await _params(request)
        return answer(params, lambda: sim.register(params, two_stage=False))

    @r.post("/acquiring/payment/rest/deposit.do", summary="Capture a held amount (partial allowed; 0 = all)")
    async def deposit(request: Request) -> JSONResponse:
        await sim.faults.check("deposit")
        params = await _params(request)
        return answer(params, sim.deposit, params, request.headers.get("x-idempotency-key"))

    @r.post("/acquiring/payment/rest/reverse.do", summary="Release a hold")
    async def reverse(request: Request) -> JSONResponse:
        await sim.faults.check("reverse")
        params = await _params(request)
        return answer(params, sim.reverse, params, request.headers.get("x-idempotency-key"))

    @r.post("/acquiring/payment/rest/refund.do", summary="Refund (part of) a deposited amount")
    async def refund(request: Request) -> JSONResponse:
        await sim.faults.check("refund")
        params = await _params(request)
        return answer(params, sim.refund, params, request.headers.get("x-idempotency-key"))

    def read_method(name: str, act: Any, summary: str) -> None:
        """A method that takes the parameters only (no idempotency key)."""

        async def handler(request: Request) -> JSONResponse:
            await sim.faults.check(name)
            params = await _params(request)
            return answer(params, act, params)

        r.add_api_route(f"/acquiring/payment/rest/{name}.do", handler, methods=["POST"], summary=summary, name=name.replace("/", "_"))

    read_method("decline", sim.decline, "Close an order nobody has paid yet")
    read_method("getOrderStatusExtended", sim.status, "Order status by orderId or orderNumber")
    read_method("getOrderStatus", sim.legacy_status, "Order status (the older method) by orderId")
    read_method("getBindings", sim.get_bindings, "Cards saved for a clientId")
    read_method("sbp/c2b/qr/dynamic/get", sim.sbp_qr, "SBP: a dynamic QR (and its link) for a one-stage order")
    read_method("sbp/c2b/qr/status", sim.sbp_status, "SBP: the QR's state")
    read_method("sbp/c2b/qr/dynamic/status", sim.sbp_status, "SBP: the QR's state (the path some gateways use)")
    read_method("sbp/c2b/qr/dynamic/reject", sim.sbp_reject, "SBP: close an unpaid QR")

    @r.get(PAYMENT_PAGE_PATH, response_class=HTMLResponse, summary="The payment page (formUrl)")
    async def payment_page(mdOrder: str = "") -> HTMLResponse:
        await sim.faults.check("payment_page")
        order = sim.orders.get(mdOrder)
        return HTMLResponse(_page(order, mdOrder), status_code=200 if order else 404)

    @r.post(PAYMENT_PAGE_PATH, summary="The payer presses Pay or Decline")
    async def payment_page_submit(request: Request) -> Any:
        await sim.faults.check("payment_page")
        params = await _params(request)
        md = params.get("mdOrder", "")
        outcome = params.get("outcome", "")
        order = sim.orders.get(md)
        if order is None or outcome not in ("approve", "decline"):
            return HTMLResponse(_page(order, md), status_code=404 if order is None else 400)
        if order.status != BankOrderStatus.REGISTERED:
            return HTMLResponse(_page(order, md), status_code=409)
        sim.pay(md, "approve" if outcome == "approve" else "decline")
        target = order.return_url if outcome == "approve" else (order.fail_url or order.return_url)
        url = str(httpx.URL(target).copy_merge_params({"orderId": md}))
        return RedirectResponse(url, status_code=303)

    # --- drive ---------------------------------------------------------------------------------

    @r.get("/sandbox/acquiring/orders", tags=["sandbox:acquiring"], summary="All orders, newest first")
    async def list_orders() -> list[dict[str, Any]]:
        return [o.summary() for o in sorted(sim.orders.values(), key=lambda o: o.created_ms, reverse=True)]

    @r.get("/sandbox/acquiring/orders/{md_order}", tags=["sandbox:acquiring"], summary="One order in full")
    async def get_order(md_order: str) -> dict[str, Any]:
        order = sim.orders.get(md_order)
        if order is None:
            raise HTTPException(404, "no such order")
        return order.detail()

    @r.post("/sandbox/acquiring/orders/{md_order}/pay", tags=["sandbox:acquiring"], summary="Act as the payer")
    async def drive_pay(md_order: str, cmd: PayCommand) -> dict[str, Any]:
        try:
            return sim.pay(md_order, cmd.outcome, cmd.action_code).detail()
        except KeyError:
            raise HTTPException(404, "no such order") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @r.post("/sandbox/acquiring/orders/{md_order}/expire", tags=["sandbox:acquiring"], summary="Time the session out now")
    async def drive_expire(md_order: str) -> dict[str, Any]:
        order = sim.orders.get(md_order)
        if order is None:
            raise HTTPException(404, "no such order")
        if not sim.expire(md_order):
            raise HTTPException(409, f"order is {order.status.name.lower()}, not awaiting payment")
        return order.detail()

    return r
