"""Simulated fiscal service: an ATOL Online-shaped cloud cash register (54-FZ receipts).

Wire shape: ATOL Online API v4 (FFD 1.05) and v5 (FFD 1.2), as described in ATOL's protocol
documents (atol.online/library/?tab=devs: «API_atol_online_v4.pdf», «API сервиса АТОЛ
Онлайн_v5.pdf»), and as the clients that follow them send it (``ili/atol-online`` (C#),
``django-atol``, ``MyBook/django-atol``; ``docs/wire/fiscal.md`` lists what is imitated).
Everything is under ``/fiscal/possystem/{v4|v5}``:

* ``POST|GET getToken`` ``{login, pass}`` → ``{error: null, token, timestamp}``; the token
  (24 h) goes in a ``Token`` header (or ``?token=``) of every other call.
* ``POST {group_code}/sell`` and ``{group_code}/sell_refund`` ``{timestamp, external_id,
  service{callback_url}, receipt{client{email|phone}, company{email, sno, inn,
  payment_address}, items[], payments[{type, sum}], vats?, total}}`` → ``{uuid, status:
  "wait", error: null, timestamp}``. Money is in roubles with two decimals. Items:
  ``name, price, quantity, sum, payment_method, payment_object, vat{type, sum?}`` and
  - v4: ``measurement_unit``, ``payment_object`` as a name (``commodity``...),
    ``nomenclature_code`` (FFD 1.05 tag 1162 in hex, :func:`domain.marking.nomenclature_code`);
  - v5: ``measure`` (0 = pieces), ``payment_object`` as the FFD 1.2 number (1 commodity, 4
    service, 33 a marked commodity with its code...), ``mark_code{gs1m}`` (the DataMatrix text
    in base64; plain text is accepted too), ``mark_processing_mode: "0"``, ``mark_quantity``.
  A marked unit is one item of quantity 1 with its own code.
  ``payment_method``: full_prepayment, prepayment, advance, full_payment, partial_payment,
  credit, credit_payment. ``payments[].type``: 0 cash, 1 electronic, 2 prepaid (offsets an
  earlier prepayment), 3 credit, 4 other.
* ``GET {group_code}/report/{uuid}`` → ``{uuid, status: wait|done|fail, error, payload{total,
  fns_site, fn_number, shift_number, receipt_datetime, fiscal_receipt_number,
  fiscal_document_number, ecr_registration_number, fiscal_document_attribute, ofd_inn,
  ofd_receipt_url}, timestamp, group_code, daemon_code, device_code, external_id,
  callback_url}``. When ``service.callback_url`` was given the same body is POSTed there once the
  receipt is done or failed (through :class:`sandbox.state.Outbox`, retried).

Errors (``{error: {error_id, code, text, type}, status: "fail", timestamp}``); the codes the
sandbox uses: 12 wrong login or password (HTTP 401), 11 missing or expired token (401), 32
validation failed (400, the text names the field), 33 a receipt with this external_id exists
(400, with its ``uuid``: a repeat is answered with the first receipt), 34 no such receipt
(400); a receipt the fiscal drive refused reports ``status: "fail"`` with ``error.code`` 1
(processing failed: send it again under a new external_id). Business errors are HTTP 400 as
ATOL's clients expect (``django-atol`` treats any other status but 200/201/401 as an outage).

A receipt is fiscalised ``FISCALISE_AFTER_S`` after it is accepted (the real service takes
seconds). Drive (``/sandbox/fiscal``): ``GET /receipts?order=`` (receipts whose external_id is
the order id or starts with it and ``:``), ``GET /receipts/{uuid}``, ``POST /reject-next
{"count", "text"}`` (the next receipts end ``fail``, as when the fiscal drive refuses), plus
``/faults`` (operations: getToken, sell, sell_refund, report). Kept across restarts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from domain.marking import MarkingCodeError, decode_gs1m, from_nomenclature_code
from sandbox.common import Background, Faults, SandboxConfig
from sandbox.state import Persisted

log = structlog.get_logger("sandbox.fiscal")

ACCOUNTS: dict[str, str] = {"orkestr-fiscal": "orkestr"}
GROUP_CODE = "orkestr-group"
TOKEN_TTL_S = 24 * 3600
FISCALISE_AFTER_S = 0.2
MSK = timezone(timedelta(hours=3))

OPERATIONS = ("sell", "sell_refund")
PAYMENT_METHODS = {"full_prepayment", "prepayment", "advance", "full_payment", "partial_payment", "credit", "credit_payment"}
#: v4 names of the payment object (FFD 1.05 tag 1212)
PAYMENT_OBJECTS_V4 = {"commodity", "excise", "job", "service", "payment", "another"}
#: v5 numbers (FFD 1.2 tag 1212): 30-33 are the marked ones (33: a commodity with a marking code)
PAYMENT_OBJECTS_V5 = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 30, 31, 32, 33}
MARKED_WITH_CODE_V5 = {31, 33}
VAT_TYPES = {"none", "vat0", "vat10", "vat110", "vat20", "vat120", "vat5", "vat7", "vat105", "vat107", "vat22", "vat122"}
SNO = {"osn", "usn_income", "usn_income_outcome", "esn", "patent"}
PAYMENT_TYPES = set(range(0, 10))


def _ts() -> str:
    return datetime.now(MSK).strftime("%d.%m.%Y %H:%M:%S")


def kopecks(value: Any, where: str) -> int:
    """Roubles with at most two decimals → kopecks; anything else is a validation error."""
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise AtolError(32, f"{where}: not a number: {value!r}") from None
    if d != d.quantize(Decimal("0.01")) or d < 0:
        raise AtolError(32, f"{where}: money has at most two decimals and is not negative: {value!r}")
    return int((d * 100).to_integral_value(ROUND_HALF_UP))


class AtolError(Exception):
    def __init__(self, code: int, text: str, status: int = 400, uuid_: str | None = None) -> None:
        super().__init__(text)
        self.code, self.text, self.status, self.uuid = code, text, status, uuid_

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {
            "error": {"error_id": str(uuid.uuid4()), "code": self.code, "text": self.text, "type": "system"},
            "status": "fail",
            "timestamp": _ts(),
        }
        if self.uuid:
            body["uuid"] = self.uuid
        return JSONResponse(body, status_code=self.status)


@dataclass
class Receipt:
    uuid: str
    api_version: str
    group_code: str
    operation: str
    external_id: str
    body: dict[str, Any]
    total: int  # kopecks
    #: per item: the unit's identity (01…21…) when the item carries a marking code
    marks: list[str | None]
    callback_url: str = ""
    status: str = "wait"
    error: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    doc_number: int = 0
    #: set at acceptance when ``/sandbox/fiscal/reject-next`` is armed: the receipt ends "fail"
    reject_text: str = ""

    def report(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "error": self.error,
            "status": self.status,
            "payload": self.payload,
            "timestamp": _ts(),
            "group_code": self.group_code,
            "daemon_code": "sandbox-daemon",
            "device_code": "KKT-SANDBOX-1",
            "external_id": self.external_id,
            "callback_url": self.callback_url,
        }

    def view(self) -> dict[str, Any]:
        receipt = self.body.get("receipt") or self.body.get("correction") or {}
        items = []
        for item, mark in zip(receipt.get("items", []), self.marks):
            items.append({
                "name": item.get("name"),
                "quantity": item.get("quantity"),
                "price": kopecks(item.get("price"), "price"),
                "sum": kopecks(item.get("sum"), "sum"),
                "payment_method": item.get("payment_method"),
                "payment_object": item.get("payment_object"),
                "vat": (item.get("vat") or {}).get("type"),
                "marking_code": mark,
            })
        return {
            "uuid": self.uuid,
            "external_id": self.external_id,
            "operation": self.operation,
            "api_version": self.api_version,
            "status": self.status,
            "total": self.total,
            "items": items,
            "payments": [{"type": p.get("type"), "sum": kopecks(p.get("sum"), "payments.sum")} for p in receipt.get("payments", [])],
            "client": receipt.get("client"),
            "payload": self.payload,
            "error": self.error,
        }


class RejectNext(BaseModel):
    count: int = Field(1, ge=0, le=1000)
    text: str = "ФН: ошибка формирования фискального документа"


class FiscalSim(Persisted):
    """ATOL Online-shaped receipts; see the module docstring."""

    persisted: ClassVar[dict[str, Any]] = {
        "receipts": dict[str, Receipt],
        "tokens": dict[str, float],
        "doc_counter": int,
        "reject": tuple[int, str],
    }

    def __init__(self, config: SandboxConfig, bg: Background) -> None:
        self.config = config
        self.bg = bg
        self.faults = Faults("fiscal")
        self.accounts = dict(ACCOUNTS)
        self.receipts: dict[str, Receipt] = {}
        self.by_external: dict[tuple[str, str], str] = {}
        self.tokens: dict[str, float] = {}  # token -> expires at
        self.doc_counter = 0
        self.reject: tuple[int, str] = (0, "")
        bg.outbox.on_done("fiscal", lambda *_: None)

    def restored(self) -> None:
        self.by_external = {(r.group_code, r.external_id): r.uuid for r in self.receipts.values()}

    async def start(self) -> None:
        for r in self.receipts.values():
            if r.status == "wait":
                self.bg.spawn(self._fiscalise_later(r.uuid))

    # --- wire ----------------------------------------------------------------------------------

    def get_token(self, login: str, password: str) -> dict[str, Any]:
        if not login or self.accounts.get(login) != password:
            raise AtolError(12, "Неверный логин или пароль", 401)
        token = uuid.uuid4().hex
        self.tokens[token] = time.time() + TOKEN_TTL_S
        return {"error": None, "token": token, "timestamp": _ts()}

    def check_token(self, token: str | None) -> None:
        if not token or self.tokens.get(token, 0) < time.time():
            raise AtolError(11, "Передан некорректный или просроченный токен", 401)

    def accept(self, version: str, group: str, operation: str, body: Any) -> dict[str, Any]:
        if operation not in OPERATIONS:
            raise AtolError(32, f"operation {operation!r} is not supported by the sandbox (sell, sell_refund)", 404)
        if not isinstance(body, dict):
            raise AtolError(32, "the body is a JSON object")
        external_id = str(body.get("external_id") or "")
        if not external_id:
            raise AtolError(32, "external_id: required")
        existing = self.by_external.get((group, external_id))
        if existing is not None:
            raise AtolError(33, f"В системе существует чек с external_id : {external_id} и group_code: {group}", 400, existing)
        total, marks = validate_receipt(version, body)
        self.bg.touch("fiscal")
        receipt = Receipt(
            uuid=str(uuid.uuid4()),
            api_version=version,
            group_code=group,
            operation=operation,
            external_id=external_id,
            body=body,
            total=total,
            marks=marks,
            callback_url=str((body.get("service") or {}).get("callback_url") or ""),
        )
        count, text = self.reject
        if count > 0:
            self.reject = (count - 1, text)
            receipt.reject_text = text
        self.receipts[receipt.uuid] = receipt
        self.by_external[(group, external_id)] = receipt.uuid
        self.bg.spawn(self._fiscalise_later(receipt.uuid))
        log.info("fiscal.accepted", uuid=receipt.uuid, operation=operation, external_id=external_id, total=total)
        return {"uuid": receipt.uuid, "status": "wait", "error": None, "timestamp": _ts()}

    def report(self, group: str, receipt_uuid: str) -> dict[str, Any]:
        r = self.receipts.get(receipt_uuid)
        if r is None or r.group_code != group:
            raise AtolError(34, f"Не найден чек с uuid {receipt_uuid}", 400)
        return r.report()

    # --- fiscalisation ---------------------------------------------------------------------------

    async def _fiscalise_later(self, receipt_uuid: str) -> None:
        await asyncio.sleep(FISCALISE_AFTER_S)
        self.fiscalise(receipt_uuid)

    def fiscalise(self, receipt_uuid: str) -> None:
        r = self.receipts.get(receipt_uuid)
        if r is None or r.status != "wait":
            return
        self.bg.touch("fiscal")
        if r.reject_text:
            r.status = "fail"
            r.error = {"error_id": str(uuid.uuid4()), "code": 1, "text": r.reject_text, "type": "driver"}
        else:
            self.doc_counter += 1
            r.doc_number = self.doc_counter
            now = datetime.now(MSK)
            r.status = "done"
            r.payload = {
                "total": r.total / 100,
                "fns_site": "www.nalog.gov.ru",
                "fn_number": "9999078900004312",
                "shift_number": 1,
                "receipt_datetime": now.strftime("%d.%m.%Y %H:%M:%S"),
                "fiscal_receipt_number": r.doc_number,
                "fiscal_document_number": 1000 + r.doc_number,
                "ecr_registration_number": "0000000001002292",
                "fiscal_document_attribute": 1_000_000_000 + r.doc_number * 7919 % 1_000_000_000,
                "ofd_inn": "7704211201",
                "ofd_receipt_url": f"https://ofd.sandbox/check/{r.uuid}",
            }
        log.info("fiscal.fiscalised", uuid=r.uuid, status=r.status)
        if r.callback_url:
            self.bg.outbox.send("fiscal", r.uuid, {"uuid": r.uuid}, "POST", r.callback_url, json_body=r.report())


def validate_receipt(version: str, body: dict[str, Any]) -> tuple[int, list[str | None]]:
    """The receipt's total in kopecks and each item's marking identity; :class:`AtolError` 32
    naming the field that is wrong."""
    receipt = body.get("receipt")
    if not isinstance(receipt, dict):
        raise AtolError(32, "receipt: required")
    client = receipt.get("client") or {}
    if not (client.get("email") or client.get("phone")):
        raise AtolError(32, "receipt.client: email or phone is required")
    company = receipt.get("company") or {}
    for name in ("inn", "payment_address"):
        if not company.get(name):
            raise AtolError(32, f"receipt.company.{name}: required")
    if company.get("sno") and company["sno"] not in SNO:
        raise AtolError(32, f"receipt.company.sno: one of {sorted(SNO)}")
    items = receipt.get("items")
    if not isinstance(items, list) or not items:
        raise AtolError(32, "receipt.items: at least one item")
    items_total = 0
    marks: list[str | None] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"receipt.items[{i}]"
        if not isinstance(item, dict) or not item.get("name"):
            raise AtolError(32, f"{where}.name: required")
        price = kopecks(item.get("price"), f"{where}.price")
        quantity = item.get("quantity")
        if not isinstance(quantity, (int, float)) or quantity <= 0:
            raise AtolError(32, f"{where}.quantity: a positive number")
        amount = kopecks(item.get("sum"), f"{where}.sum")
        expected = int((Decimal(price) * Decimal(str(quantity))).to_integral_value(ROUND_HALF_UP))
        if abs(amount - expected) > 1:
            raise AtolError(32, f"{where}.sum: {amount / 100:.2f} is not price × quantity = {expected / 100:.2f}")
        if item.get("payment_method") not in PAYMENT_METHODS:
            raise AtolError(32, f"{where}.payment_method: one of {sorted(PAYMENT_METHODS)}")
        vat = item.get("vat") or {}
        if vat.get("type") not in VAT_TYPES:
            raise AtolError(32, f"{where}.vat.type: one of {sorted(VAT_TYPES)}")
        mark = _item_mark(version, item, where)
        if mark is not None:
            if quantity != 1:
                raise AtolError(32, f"{where}.quantity: a marked unit is one item of quantity 1 with its own code")
            if mark in seen:
                raise AtolError(32, f"{where}.mark_code: the same code twice in one receipt")
            seen.add(mark)
        marks.append(mark)
        items_total += amount
    payments = receipt.get("payments")
    if not isinstance(payments, list) or not payments:
        raise AtolError(32, "receipt.payments: at least one payment")
    paid = 0
    for i, p in enumerate(payments):
        if not isinstance(p, dict) or p.get("type") not in PAYMENT_TYPES:
            raise AtolError(32, f"receipt.payments[{i}].type: 0..9 (0 cash, 1 electronic, 2 prepaid, 3 credit, 4 other)")
        paid += kopecks(p.get("sum"), f"receipt.payments[{i}].sum")
    total = kopecks(receipt.get("total"), "receipt.total")
    if total != items_total:
        raise AtolError(32, f"receipt.total: {total / 100:.2f} is not the items' sum {items_total / 100:.2f}")
    if paid != total:
        raise AtolError(32, f"receipt.payments: they sum to {paid / 100:.2f}, the total is {total / 100:.2f}")
    return total, marks


def _item_mark(version: str, item: dict[str, Any], where: str) -> str | None:
    po = item.get("payment_object")
    try:
        if version == "v4":
            if po not in PAYMENT_OBJECTS_V4:
                raise AtolError(32, f"{where}.payment_object: one of {sorted(PAYMENT_OBJECTS_V4)} (v4)")
            nc = item.get("nomenclature_code")
            return from_nomenclature_code(nc).identity if nc else None
        if po not in PAYMENT_OBJECTS_V5:
            raise AtolError(32, f"{where}.payment_object: an FFD 1.2 number, e.g. 1 commodity, 33 marked commodity (v5)")
        if item.get("measure") not in (None, 0) and not isinstance(item.get("measure"), int):
            raise AtolError(32, f"{where}.measure: an FFD 1.2 unit code (0 = pieces)")
        mark_code = item.get("mark_code")
        if po in MARKED_WITH_CODE_V5 and not mark_code:
            raise AtolError(32, f"{where}.mark_code: required for payment_object {po} (a marked commodity)")
        if not mark_code:
            return None
        if po not in MARKED_WITH_CODE_V5:
            raise AtolError(32, f"{where}.payment_object: {po} is not a marked commodity, yet mark_code is given (33 is)")
        if not isinstance(mark_code, dict) or not mark_code.get("gs1m"):
            raise AtolError(32, f"{where}.mark_code.gs1m: the DataMatrix code (base64) of a marked unit")
        if str(item.get("mark_processing_mode", "")) != "0":
            raise AtolError(32, f"{where}.mark_processing_mode: \"0\" for a marked unit")
        return decode_gs1m(str(mark_code["gs1m"])).identity
    except MarkingCodeError as exc:
        raise AtolError(32, f"{where}.mark_code: {exc}") from None


# --- HTTP ---------------------------------------------------------------------------------------

#: wire paths whose errors answer in ATOL's shape (see :func:`sandbox.app._wire_errors`)
WIRE_PREFIXES = ("/fiscal/possystem/",)


def wire_error(path: str, status: int, message: str) -> JSONResponse:
    return AtolError(32 if status < 500 else 1, message, status).response()


def router(sim: FiscalSim) -> APIRouter:
    r = APIRouter(tags=["fiscal"])
    base = "/fiscal/possystem/{version}"

    def version_ok(version: str) -> None:
        if version not in ("v4", "v5"):
            raise HTTPException(404, f"API version {version} is not served (v4, v5)")

    async def token_call(version: str, request: Request) -> JSONResponse:
        version_ok(version)
        await sim.faults.check("getToken")
        creds: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            try:
                body = await request.json()
            except ValueError:
                body = {}
            if isinstance(body, dict):
                creds.update(body)
        try:
            return JSONResponse(sim.get_token(str(creds.get("login", "")), str(creds.get("pass", ""))))
        except AtolError as exc:
            return exc.response()

    r.add_api_route(base + "/getToken", token_call, methods=["GET", "POST"], summary="Token for the other calls (24 h)")

    @r.post(base + "/{group_code}/{operation}", summary="Register a receipt (sell, sell_refund)")
    async def register(version: str, group_code: str, operation: str, request: Request) -> JSONResponse:
        version_ok(version)
        await sim.faults.check(operation)
        try:
            sim.check_token(request.headers.get("token") or request.query_params.get("token"))
            try:
                body = await request.json()
            except ValueError:
                raise AtolError(32, "the body is not JSON") from None
            return JSONResponse(sim.accept(version, group_code, operation, body))
        except AtolError as exc:
            return exc.response()

    @r.get(base + "/{group_code}/report/{receipt_uuid}", summary="A receipt's state and fiscal data")
    async def report(version: str, group_code: str, receipt_uuid: str, request: Request) -> JSONResponse:
        version_ok(version)
        await sim.faults.check("report")
        try:
            sim.check_token(request.headers.get("token") or request.query_params.get("token"))
            return JSONResponse(sim.report(group_code, receipt_uuid))
        except AtolError as exc:
            return exc.response()

    d = APIRouter(prefix="/sandbox/fiscal", tags=["sandbox:fiscal"])

    @d.get("/receipts", summary="Receipts of an order (external_id = order or order:…), oldest first")
    async def receipts(order: str | None = None) -> list[dict[str, Any]]:
        found = [
            rc for rc in sim.receipts.values()
            if order is None or rc.external_id == order or rc.external_id.startswith(f"{order}:")
        ]
        return [rc.view() for rc in sorted(found, key=lambda rc: rc.created_at)]

    @d.get("/receipts/{receipt_uuid}")
    async def one(receipt_uuid: str) -> dict[str, Any]:
        rc = sim.receipts.get(receipt_uuid)
        if rc is None:
            raise HTTPException(404, "no such receipt")
        return rc.view()

    @d.post("/reject-next", summary="The next receipts accepted end 'fail' (the fiscal drive refuses)")
    async def reject_next(body: RejectNext) -> dict[str, Any]:
        sim.reject = (body.count, body.text)
        return {"count": body.count, "text": body.text}

    r.include_router(d)
    return r
