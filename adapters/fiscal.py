"""Client of the fiscal service: ATOL Online API v4 (FFD 1.05) / v5 (FFD 1.2), 54-FZ receipts.

Wire shape: ATOL's protocol documents («API_atol_online_v4.pdf», «API сервиса АТОЛ Онлайн_v5.pdf»
at atol.online/library/?tab=devs) and ``docs/wire/fiscal.md``; the sandbox imitates it in
``sandbox/fiscal.py``. The base URL is the versioned root (``…/possystem/v5``); calls:

* ``POST getToken {login, pass}`` → ``token`` (kept and renewed when the service answers
  401 / code 11: one renewal per call, not a retry of the receipt);
* ``POST {group}/sell`` / ``{group}/sell_refund`` with ``Token`` → ``uuid``;
* ``GET {group}/report/{uuid}`` → status and the fiscal data.

Marked goods: v5 sends each marked unit as its own item (quantity 1) with ``payment_object``
33 («товар, подлежащий маркировке средством идентификации, имеющим код маркировки», FFD 1.2
tag 1212), ``mark_code.gs1m`` = the scanned DataMatrix text in base64 and
``mark_processing_mode: "0"``; v4 sends the FFD 1.05 tag 1162 as ``nomenclature_code``
(:func:`domain.marking.nomenclature_code`). A receipt's ``external_id`` is its idempotency key:
a repeat is answered by the service with error 33 and the first receipt's ``uuid``, which this
client returns as ``ReceiptRegistration(repeated=True)``.

Errors: a validation refusal (code 32), wrong credentials (12) and the like are
:class:`ExternalRefusal` with ``code`` = ATOL's code; transport errors and 5xx are
:class:`ExternalUnavailable` (``adapters.http.request``). No retries here: Temporal retries.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx

from adapters.errors import ExternalRefusal
from adapters.http import request
from contracts.fiscal import FiscalReport, PaymentKind, ReceiptRegistration, ReceiptRequest
from domain.marking import nomenclature_code, parse_marking_code

SYSTEM = "fiscal"
#: the service's clock for ``timestamp`` ("dd.mm.yyyy HH:MM:SS", Moscow time)
MSK = timezone(timedelta(hours=3))

#: ``payments[].type``
PAYMENT_TYPES = {PaymentKind.CASH: 0, PaymentKind.ELECTRONIC: 1, PaymentKind.PREPAID: 2, PaymentKind.CREDIT: 3, PaymentKind.OTHER: 4}
#: FFD 1.2 numbers of ``payment_object`` (v5); v4 sends the names
PAYMENT_OBJECTS_V5 = {"commodity": 1, "excise": 2, "job": 3, "service": 4, "payment": 10, "another": 13}
MARKED_COMMODITY_V5 = 33
#: VAT included in a price: the rate's fraction of the gross amount
VAT_FRACTIONS = {"vat20": Decimal(20) / 120, "vat10": Decimal(10) / 110, "vat120": Decimal(20) / 120, "vat110": Decimal(10) / 110}


def roubles(kopecks: int) -> float:
    return float(Decimal(kopecks) / 100)


class FiscalClient:
    """Async client of an ATOL Online-shaped fiscal service.

    ``http.base_url`` is the versioned root (``https://online.atol.ru/possystem/v5`` or the
    sandbox's ``…/fiscal/possystem/v5``); ``api_version`` says which shape to send (``v4``,
    ``v5``). ``company`` gives the seller's ``inn``, ``sno``, ``payment_address``, ``email``.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        login: str,
        password: str,
        group_code: str,
        company: dict[str, str],
        api_version: str = "v5",
    ) -> None:
        if api_version not in ("v4", "v5"):
            raise ValueError("api_version is v4 or v5")
        self._http = http
        self._login = login
        self._password = password
        self._group = group_code
        self._company = company
        self._version = api_version
        self._token: str | None = None

    # --- plumbing ----------------------------------------------------------------------------

    async def _new_token(self) -> str:
        resp = await request(self._http, SYSTEM, "getToken", "POST", "getToken", json={"login": self._login, "pass": self._password})
        body = _json(resp)
        if resp.status_code >= 400 or body.get("error") or not body.get("token"):
            raise _refusal("getToken", resp, body)
        self._token = str(body["token"])
        return self._token

    async def _call(self, operation: str, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, dict[str, Any]]:
        token = self._token or await self._new_token()
        resp = await request(self._http, SYSTEM, operation, method, path, headers={"Token": token}, **kwargs)
        body = _json(resp)
        if resp.status_code == 401 or _code(body) == 11:  # expired token: renew once
            token = await self._new_token()
            resp = await request(self._http, SYSTEM, operation, method, path, headers={"Token": token}, **kwargs)
            body = _json(resp)
        return resp, body

    # --- operations --------------------------------------------------------------------------

    async def register(self, receipt: ReceiptRequest) -> ReceiptRegistration:
        """Send a receipt (``sell`` or ``sell_refund``); idempotent by ``external_id``."""
        operation = receipt.operation.value
        resp, body = await self._call(operation, "POST", f"{self._group}/{operation}", json=self.wire(receipt))
        if _code(body) == 33 and body.get("uuid"):
            return ReceiptRegistration(uuid=str(body["uuid"]), repeated=True)
        if resp.status_code >= 400 or body.get("error") or not body.get("uuid"):
            raise _refusal(operation, resp, body)
        return ReceiptRegistration(uuid=str(body["uuid"]))

    async def report(self, receipt_uuid: str) -> FiscalReport:
        """The receipt's state: ``wait``, ``done`` (with the fiscal data) or ``fail``."""
        resp, body = await self._call("report", "GET", f"{self._group}/report/{receipt_uuid}")
        if "uuid" not in body or (resp.status_code >= 400 and body.get("status") != "fail"):
            raise _refusal("report", resp, body)
        payload = body.get("payload") or {}
        error = body.get("error") or {}
        total = payload.get("total")
        return FiscalReport(
            uuid=str(body["uuid"]),
            status=str(body.get("status")),
            external_id=str(body.get("external_id") or ""),
            total=int(round(Decimal(str(total)) * 100)) if total is not None else None,
            fiscal_document_number=payload.get("fiscal_document_number"),
            fiscal_document_attribute=payload.get("fiscal_document_attribute"),
            fn_number=payload.get("fn_number"),
            receipt_datetime=payload.get("receipt_datetime"),
            ofd_receipt_url=payload.get("ofd_receipt_url"),
            error_code=error.get("code"),
            error_text=error.get("text"),
        )

    # --- the wire shape ------------------------------------------------------------------------

    def wire(self, receipt: ReceiptRequest) -> dict[str, Any]:
        client = {k: v for k, v in (("email", receipt.customer_email), ("phone", receipt.customer_phone)) if v}
        body: dict[str, Any] = {
            "timestamp": datetime.now(MSK).strftime("%d.%m.%Y %H:%M:%S"),
            "external_id": receipt.external_id,
            "receipt": {
                "client": client,
                "company": dict(self._company),
                "items": [self._item(i) for i in receipt.items],
                "payments": [{"type": PAYMENT_TYPES[p.kind], "sum": roubles(p.amount)} for p in receipt.payments],
                "total": roubles(receipt.total),
            },
        }
        if receipt.callback_url:
            body["service"] = {"callback_url": receipt.callback_url}
        return body

    def _item(self, item: Any) -> dict[str, Any]:
        vat: dict[str, Any] = {"type": item.vat}
        if item.vat in VAT_FRACTIONS:
            vat["sum"] = roubles(int((Decimal(item.amount) * VAT_FRACTIONS[item.vat]).quantize(Decimal(1))))
        wire: dict[str, Any] = {
            "name": item.name[:128],
            "price": roubles(item.price),
            "quantity": item.quantity,
            "sum": roubles(item.amount),
            "payment_method": str(item.payment_method),
            "vat": vat,
        }
        code = parse_marking_code(item.marking_code) if item.marking_code else None
        if code is not None and item.quantity != 1:
            raise ValueError("a marked unit is one receipt item of quantity 1")
        if self._version == "v4":
            wire.update(measurement_unit="шт", payment_object=item.payment_object)
            if code is not None:
                wire["nomenclature_code"] = nomenclature_code(code)
        else:
            wire["measure"] = 0
            if code is not None:
                wire.update(payment_object=MARKED_COMMODITY_V5, mark_code={"gs1m": code.base64()}, mark_processing_mode="0")
            else:
                wire["payment_object"] = PAYMENT_OBJECTS_V5.get(item.payment_object, 1)
        return wire


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _code(body: dict[str, Any]) -> int | None:
    error = body.get("error")
    return error.get("code") if isinstance(error, dict) else None


def _refusal(operation: str, resp: httpx.Response, body: dict[str, Any]) -> ExternalRefusal:
    raw = body.get("error")
    error: dict[str, Any] = raw if isinstance(raw, dict) else {}
    text = error.get("text") or f"HTTP {resp.status_code}: {resp.text[:200]}"
    return ExternalRefusal(SYSTEM, operation, str(text), code=str(error.get("code", f"HTTP{resp.status_code}")))
