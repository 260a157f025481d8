"""Simulated Ozon Seller API, FBS (the seller ships from its own warehouses).

Wire shape: Ozon Seller API documentation (docs.ozon.ru/api/seller/, sections «Обработка заказов
FBS и rFBS», «Сборка заказов FBS», «Цены и остатки товаров»; its rate-limit notes for
``/v2/products/stocks``) as the maintained PyPI client ``ozonapi-async`` (pydantic models of
every answer, docstrings citing the documentation) reads it; ``docs/wire/ozon.md``.
``tests/contract/test_ozon_client.py`` drives this simulator with that client, unchanged but for
its base URL. Everything is under ``/ozon`` with ``Client-Id`` + ``Api-Key`` headers
(:data:`ACCOUNTS`); JSON in and out; errors ``{code, message, details[]}`` (gRPC-style codes:
3 invalid argument (HTTP 400), 5 not found (404), 7 permission denied / 16 unauthenticated
(401/403), 8 resource exhausted (429)).

* ``POST /v3/posting/fbs/unfulfilled/list {dir, filter{cutoff_from, cutoff_to | delivering_date_from,
  delivering_date_to, status, warehouse_id[]}, limit ≤ 1000, offset, with}`` → ``{result{postings[],
  count}}``: postings not yet handed over (awaiting_packaging, awaiting_deliver).
* ``POST /v3/posting/fbs/get {posting_number, with{product_exemplars}}`` → ``{result: posting}``.
  A posting: ``posting_number, order_id, order_number, status, substatus, delivery_method{id, name,
  warehouse_id, warehouse, tpl_provider, tpl_provider_id}, tracking_number, tpl_integration_type,
  in_process_at, shipment_date, shipment_date_without_delay, delivering_date, cancellation{…},
  products[{sku, offer_id, name, quantity, price "1390.00", currency_code, is_marketplace_buyout,
  is_blr_traceable}], available_actions[], requirements{products_requiring_mandatory_mark[] …},
  tariffication{…}, is_express, is_multibox``.
* ``POST /v6/fbs/posting/product/exemplar/set {posting_number, multi_box_qty, products[{product_id,
  exemplars[{marks[{mark, mark_type: "mandatory_mark"}]}]}]}`` → ``{}``; ``POST
  /v5/fbs/posting/product/exemplar/status {posting_number}`` → ``{posting_number, status:
  ship_available|ship_not_available, products[{product_id, exemplars[{exemplar_id, marks[{mark,
  mark_type, check_status, error_codes}]}]}]}``. A marked product (the ERP's flag, see
  ``sandbox.demo_data.marked``) needs one valid Честный ЗНАК code per unit before it ships.
* ``POST /v4/posting/fbs/ship {packages[{products[{product_id, quantity}]}], posting_number,
  with{additional_data}}`` → ``{result[posting_number…], additional_data[]}``: the posting is
  packed (awaiting_deliver); packages beyond the first become postings of their own.
* ``POST /v2/posting/fbs/package-label {posting_number[]}`` → ``{content_type: "application/pdf",
  file_name, file_content}`` (``file_content``: the PDF, base64); only packed postings.
* ``POST /v2/posting/fbs/cancel {cancel_reason_id, cancel_reason_message, posting_number}`` →
  ``{result: true}``; reasons 352 (out of stock), 400, 401, 402 (other: message required).
* ``POST /v2/products/stocks {stocks[{offer_id | product_id, stock, warehouse_id}] ≤ 100}`` →
  ``{result[{warehouse_id, product_id, offer_id, updated, errors[{code, message}]}]}``. Limits
  as documented: 80 requests a minute per seller account (429), and one update of a product at
  a warehouse per 30 s (``errors[{code: "TOO_MANY_REQUESTS"}]`` on that item). Every other
  method: 50 requests a second per account. A 429 carries ``Retry-After`` (seconds); Ozon does
  not document one, the sandbox adds it so a client need not guess.

Push notifications (Ozon's ``TYPE_NEW_POSTING`` / ``TYPE_POSTING_CANCELLED``) are POSTed,
through the outbox, to the URL set with ``POST /sandbox/ozon/push {"url"}`` (none by default).

Auto mode: a new posting over the demo catalogue every ``5 × auto_delay_s`` from what the seller
has in stock at its Ozon warehouses (pushed with ``/v2/products/stocks``; a posting reserves
it), at most :data:`AUTO_OPEN_LIMIT` open at once; packed postings go to delivering and then
delivered. Drive (``/sandbox/ozon``): ``POST /postings {items[{offer_id, quantity}],
warehouse_id?}``, ``POST /postings/{n}/cancel {reason?}`` (the customer cancels), ``POST
/postings/{n}/status {status}``, ``GET /postings``, ``GET /stocks``, ``POST /limits
{requests_per_minute, per_second, item_interval_s}``, ``POST /push``, ``/faults`` (operations:
unfulfilled_list, get, ship, package_label, cancel, stocks, exemplar_set, exemplar_status;
``status: 429`` answers with ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from domain.marking import MarkingCodeError, gtin_from_barcode, parse_marking_code
from sandbox.common import Background, Faults, RateLimit, SandboxConfig
from sandbox.demo_data import DemoData, marked, shared
from sandbox.state import Persisted

log = structlog.get_logger("sandbox.ozon")

#: Client-Id -> Api-Key
ACCOUNTS: dict[str, str] = {"orkestr-ozon": "ozon-api-key"}
#: the seller's FBS warehouses at Ozon and the Orkestr location each one is
WAREHOUSES: dict[int, str] = {1020000001: "WH-ONLINE", 1020000002: "MSK-001"}
SKU_BASE, PRODUCT_BASE = 100_000_000, 200_000_000
UNFULFILLED = ("awaiting_packaging", "awaiting_deliver")
CANCELLABLE = ("awaiting_packaging", "awaiting_deliver", "acceptance_in_progress", "awaiting_approve")
SELLER_CANCEL_REASONS = {352: "Товар закончился на складе продавца", 400: "Остался только бракованный товар",
                         401: "Отмена из арбитража", 402: "Другая причина"}
AUTO_OPEN_LIMIT = 20


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any, where: str) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise OzonError(3, f"{where}: not an RFC 3339 date-time: {value!r}") from None


class OzonError(Exception):
    HTTP = {3: 400, 5: 404, 7: 403, 8: 429, 16: 401, 13: 500}

    def __init__(self, code: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after = code, message, retry_after

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(max(1, round(self.retry_after)))} if self.retry_after else None
        return JSONResponse({"code": self.code, "message": self.message, "details": []},
                            status_code=self.HTTP.get(self.code, 400), headers=headers)


@dataclass
class Item:
    sku: int
    offer_id: str
    name: str
    quantity: int
    price: int  # kopecks
    marked: bool
    #: one list of marking codes per packed unit (``exemplar/set``)
    marks: list[str] = field(default_factory=list)


@dataclass
class OzonPosting:
    posting_number: str
    order_id: int
    order_number: str
    warehouse_id: int
    items: list[Item]
    status: str = "awaiting_packaging"
    substatus: str = "posting_created"
    in_process_at: float = field(default_factory=time.time)
    shipment_date: float = 0.0
    tracking_number: str = ""
    cancel_reason_id: int | None = None
    cancel_reason: str = ""
    cancellation_initiator: str = ""
    parent_posting_number: str = ""
    changed_at: float = field(default_factory=time.time)

    def wire(self, *, exemplars: bool = False) -> dict[str, Any]:
        products = []
        for it in self.items:
            p: dict[str, Any] = {
                "sku": it.sku, "offer_id": it.offer_id, "name": it.name, "quantity": it.quantity,
                "price": f"{it.price / 100:.2f}", "currency_code": "RUB",
                "is_marketplace_buyout": False, "is_blr_traceable": False, "imei": [],
                "mandatory_mark": list(it.marks),
            }
            products.append(p)
        cancelled = self.status == "cancelled"
        body: dict[str, Any] = {
            "posting_number": self.posting_number,
            "order_id": self.order_id,
            "order_number": self.order_number,
            "status": self.status,
            "substatus": self.substatus,
            "parent_posting_number": self.parent_posting_number,
            "delivery_method": {
                "id": 21_000 + self.warehouse_id % 1000, "name": f"Ozon Логистика, {WAREHOUSES.get(self.warehouse_id)}",
                "warehouse_id": self.warehouse_id, "warehouse": WAREHOUSES.get(self.warehouse_id, ""),
                "tpl_provider": "Ozon Логистика", "tpl_provider_id": 24,
            },
            "tracking_number": self.tracking_number,
            "tpl_integration_type": "ozon",
            "in_process_at": _iso(self.in_process_at),
            "shipment_date": _iso(self.shipment_date),
            "shipment_date_without_delay": _iso(self.shipment_date),
            "delivering_date": None,
            "cancellation": {
                "cancel_reason_id": self.cancel_reason_id or 0,
                "cancel_reason": self.cancel_reason,
                "cancellation_type": "seller" if self.cancellation_initiator == "Продавец" else ("client" if cancelled else ""),
                "cancelled_after_ship": False,
                "affect_cancellation_rating": self.cancellation_initiator == "Продавец",
                "cancellation_initiator": self.cancellation_initiator,
            },
            "products": products,
            "available_actions": ["cancel", "ship"] if self.status == "awaiting_packaging" else (
                ["cancel", "label_download"] if self.status == "awaiting_deliver" else []),
            "requirements": {
                "products_requiring_change_country": [], "products_requiring_gtd": [],
                "products_requiring_country": [],
                "products_requiring_mandatory_mark": [it.sku for it in self.items if it.marked],
                "products_requiring_jw_uin": [], "products_requiring_rnpt": [],
                "products_requiring_weight": [], "products_requiring_imei": [],
            },
            "tariffication": {
                "current_tariff_rate": 0.0, "current_tariff_type": "", "current_tariff_charge": "0",
                "current_tariff_charge_currency_code": "RUB", "next_tariff_rate": 0.0, "next_tariff_type": "",
                "next_tariff_charge": "0", "next_tariff_charge_currency_code": "RUB",
            },
            "is_express": False,
            "is_multibox": False,
            "multi_box_qty": 1,
            "analytics_data": None,
            "financial_data": None,
        }
        if exemplars:
            body["product_exemplars"] = {"products": [
                {"sku": it.sku, "exemplars": [{"exemplar_id": i + 1, "mandatory_mark": m, "gtd": "", "is_gtd_absent": True,
                                               "rnpt": "", "is_rnpt_absent": True} for i, m in enumerate(it.marks)]}
                for it in self.items
            ]}
        return body


class NewPosting(BaseModel):
    items: list[dict[str, Any]] = Field(min_length=1, description='[{"offer_id": "P000001-M-RED", "quantity": 1}]')
    warehouse_id: int | None = None


class StatusIn(BaseModel):
    status: str


class CancelIn(BaseModel):
    reason: str = "Покупатель отменил заказ"


class LimitsIn(BaseModel):
    requests_per_minute: int = Field(80, ge=1, description="/v2/products/stocks per seller account")
    per_second: int = Field(50, ge=1, description="every other method")
    item_interval_s: float = Field(30.0, ge=0, description="one update of a product at a warehouse per …")


class PushIn(BaseModel):
    url: str | None = None


class OzonSim(Persisted):
    persisted: ClassVar[dict[str, Any]] = {
        "postings": dict[str, OzonPosting],
        "stocks": dict[str, int],
        "seq": int,
        "push_url": str,
    }

    def __init__(self, config: SandboxConfig, bg: Background) -> None:
        self.config = config
        self.bg = bg
        self.faults = Faults("ozon")
        self.accounts = dict(ACCOUNTS)
        self.data: DemoData = shared(config.seed, config.products, config.small_catalog)
        self.rng = random.Random(config.seed * 31 + 7)
        self.postings: dict[str, OzonPosting] = {}
        #: "offer_id@warehouse_id" -> free stock the seller pushed (less what postings reserve)
        self.stocks: dict[str, int] = {}
        self.seq = 0
        self.push_url = ""
        self.limits = LimitsIn()
        self._stock_rl = RateLimit(self.limits.requests_per_minute, 60.0)
        self._rl = RateLimit(self.limits.per_second, 1.0)
        self._item_updates: dict[str, float] = {}
        self.skus = {s.sku: (i, s, p) for i, (s, p) in enumerate((s, p) for p in self.data.products for s in p.skus)}
        self.by_sku_id = {SKU_BASE + i: key for key, (i, _s, _p) in self.skus.items()}
        self.prices = {pr.sku: pr.amount for pr in self.data.prices if pr.price_type == "Retail" and pr.currency == "RUB"}
        bg.outbox.on_done("ozon", lambda *_: None)

    async def start(self) -> None:
        if self.config.auto:
            self.bg.spawn(self._auto())

    # --- plumbing ------------------------------------------------------------------------------

    def auth(self, request: Request) -> str:
        client_id, key = request.headers.get("client-id", ""), request.headers.get("api-key", "")
        if not client_id or not key:
            raise OzonError(16, "Client-Id and Api-Key headers are required")
        if self.accounts.get(client_id) != key:
            raise OzonError(7, "Invalid Api-Key, please contact support")
        return client_id

    def limit(self, client_id: str, operation: str) -> None:
        if operation == "stocks":
            wait = self._stock_rl.hit(client_id)
            if wait:
                raise OzonError(8, "You have reached request rate limit per minute for /v2/products/stocks", wait)
            return
        wait = self._rl.hit(client_id)
        if wait:
            raise OzonError(8, "You have reached request rate limit per second", wait)

    def set_limits(self, limits: LimitsIn) -> None:
        self.limits = limits
        self._stock_rl = RateLimit(limits.requests_per_minute, 60.0)
        self._rl = RateLimit(limits.per_second, 1.0)

    def posting(self, number: Any) -> OzonPosting:
        p = self.postings.get(str(number or ""))
        if p is None:
            raise OzonError(5, "POSTING_NOT_FOUND")
        return p

    def _touch(self, p: OzonPosting) -> None:
        p.changed_at = time.time()
        self.bg.touch("ozon")

    # --- postings ------------------------------------------------------------------------------

    def create_posting(self, lines: list[tuple[str, int]], warehouse_id: int | None = None) -> OzonPosting:
        wh = warehouse_id if warehouse_id is not None else next(iter(WAREHOUSES))
        if wh not in WAREHOUSES:
            raise ValueError(f"unknown warehouse {wh}; the seller's: {sorted(WAREHOUSES)}")
        items = []
        for offer_id, qty in lines:
            found = self.skus.get(offer_id)
            if found is None or qty < 1:
                raise ValueError(f"unknown offer_id {offer_id!r} or quantity < 1")
            i, s, p = found
            items.append(Item(sku=SKU_BASE + i, offer_id=offer_id, name=f"{p.name}, {s.size}, {s.color_name}", quantity=qty,
                              price=self.prices.get(offer_id, 0), marked=marked(p.category)))
        self.seq += 1
        order_number = f"{self.rng.randrange(10**7, 10**8):08d}-{self.seq % 10000:04d}"
        posting = OzonPosting(posting_number=f"{order_number}-1", order_id=4_000_000_000 + self.seq,
                              order_number=order_number, warehouse_id=wh, items=items,
                              shipment_date=time.time() + 24 * 3600)
        for it in items:
            key = f"{it.offer_id}@{wh}"
            if key in self.stocks:
                self.stocks[key] = max(0, self.stocks[key] - it.quantity)
        self.postings[posting.posting_number] = posting
        self._touch(posting)
        self._push({"message_type": "TYPE_NEW_POSTING", "seller_id": 0, "warehouse_id": wh,
                    "posting_number": posting.posting_number, "in_process_at": _iso(posting.in_process_at),
                    "products": [{"sku": it.sku, "quantity": it.quantity} for it in items]}, posting.posting_number)
        log.info("ozon.posting_created", posting=posting.posting_number, items=len(items))
        return posting

    def customer_cancel(self, number: str, reason: str) -> OzonPosting:
        p = self.posting(number)
        if p.status not in CANCELLABLE:
            raise ValueError(f"posting is {p.status}: the customer can no longer cancel it")
        self._cancel(p, 0, reason, "Покупатель")
        return p

    def _cancel(self, p: OzonPosting, reason_id: int, reason: str, initiator: str) -> None:
        old = p.status
        p.status, p.substatus = "cancelled", "posting_canceled"
        p.cancel_reason_id, p.cancel_reason, p.cancellation_initiator = reason_id, reason, initiator
        for it in p.items:  # a cancelled posting frees what it reserved
            key = f"{it.offer_id}@{p.warehouse_id}"
            if key in self.stocks:
                self.stocks[key] += it.quantity
        self._touch(p)
        self._push({"message_type": "TYPE_POSTING_CANCELLED", "posting_number": p.posting_number,
                    "products": [{"sku": it.sku, "quantity": it.quantity} for it in p.items],
                    "old_state": old, "new_state": "cancelled", "changed_state_date": _iso(p.changed_at),
                    "reason": {"id": reason_id, "message": reason}, "warehouse_id": p.warehouse_id, "seller_id": 0},
                   p.posting_number)

    def set_status(self, number: str, status: str) -> OzonPosting:
        p = self.posting(number)
        order = ["awaiting_packaging", "awaiting_deliver", "delivering", "delivered"]
        if status not in order or p.status not in order or order.index(status) <= order.index(p.status):
            raise ValueError(f"posting is {p.status}: cannot move to {status}")
        if status != "awaiting_deliver" and p.status == "awaiting_packaging":
            raise ValueError("a posting is packed (ship) before it is handed over")
        p.status = status
        p.substatus = {"delivering": "posting_in_carriage", "delivered": "posting_delivered"}.get(status, p.substatus)
        if status == "delivering" and not p.tracking_number:
            p.tracking_number = f"OZN{p.order_id}"
        self._touch(p)
        return p

    def _push(self, message: dict[str, Any], key: str) -> None:
        if self.push_url:
            self.bg.outbox.send("ozon", key, {"posting_number": key}, "POST", self.push_url, json_body=message)

    # --- wire operations -----------------------------------------------------------------------

    def unfulfilled(self, body: dict[str, Any]) -> dict[str, Any]:
        flt = body.get("filter") or {}
        if flt.get("cutoff_from") and flt.get("cutoff_to"):
            lo, hi, attr = _parse_time(flt["cutoff_from"], "filter.cutoff_from"), _parse_time(flt["cutoff_to"], "filter.cutoff_to"), "shipment_date"
        elif flt.get("delivering_date_from") and flt.get("delivering_date_to"):
            lo, hi, attr = (_parse_time(flt["delivering_date_from"], "filter.delivering_date_from"),
                            _parse_time(flt["delivering_date_to"], "filter.delivering_date_to"), None)
        else:
            raise OzonError(3, "PERIOD_IS_NOT_SPECIFIED: filter.cutoff_from and cutoff_to, or delivering_date_from and delivering_date_to")
        limit = int(body.get("limit") or 100)
        if not 1 <= limit <= 1000:
            raise OzonError(3, "limit: 1..1000")
        offset = int(body.get("offset") or 0)
        statuses = {flt["status"]} if flt.get("status") else set(UNFULFILLED)
        warehouses = set(flt.get("warehouse_id") or [])
        found = [
            p for p in self.postings.values()
            if p.status in statuses and p.status in UNFULFILLED
            and (not warehouses or p.warehouse_id in warehouses)
            and (attr is None or lo <= getattr(p, attr) <= hi)
        ]
        found.sort(key=lambda p: p.in_process_at, reverse=str(body.get("dir", "ASC")).upper() == "DESC")
        page = found[offset: offset + limit]
        return {"result": {"postings": [p.wire() for p in page], "count": len(found)}}

    def get(self, body: dict[str, Any]) -> dict[str, Any]:
        p = self.posting(body.get("posting_number"))
        with_ = body.get("with") or {}
        return {"result": p.wire(exemplars=bool(with_.get("product_exemplars")))}

    def exemplar_set(self, body: dict[str, Any]) -> dict[str, Any]:
        p = self.posting(body.get("posting_number"))
        if p.status != "awaiting_packaging":
            raise OzonError(3, f"POSTING_STATUS_IS_NOT_AWAITING_PACKAGING: {p.status}")
        by_sku = {it.sku: it for it in p.items}
        staged: dict[int, list[str]] = {}
        for i, prod in enumerate(body.get("products") or []):
            it = by_sku.get(prod.get("product_id"))
            if it is None:
                raise OzonError(3, f"products[{i}].product_id: {prod.get('product_id')} is not in the posting")
            marks = []
            for ex in prod.get("exemplars") or []:
                for m in ex.get("marks") or []:
                    if m.get("mark_type") == "mandatory_mark":
                        marks.append(str(m.get("mark", "")))
            if len(marks) > it.quantity:
                raise OzonError(3, f"products[{i}]: {len(marks)} codes for {it.quantity} units")
            staged[it.sku] = marks
        for sku, marks in staged.items():
            by_sku[sku].marks = marks
        self._touch(p)
        return {}

    def exemplar_status(self, body: dict[str, Any]) -> dict[str, Any]:
        p = self.posting(body.get("posting_number"))
        ok = True
        products = []
        for it in p.items:
            exemplars = []
            for i, mark in enumerate(it.marks):
                try:
                    code = parse_marking_code(mark)
                    errors = [] if code.gtin == gtin_from_barcode(self.skus[it.offer_id][1].barcode) else ["GTIN_MISMATCH"]
                except MarkingCodeError as exc:
                    errors = [f"INVALID_{exc.field.upper()}"]
                ok &= not errors
                exemplars.append({"exemplar_id": i + 1, "marks": [{"mark": mark, "mark_type": "mandatory_mark",
                                                                    "check_status": "failed" if errors else "passed",
                                                                    "error_codes": errors}]})
            if it.marked and len(it.marks) != it.quantity:
                ok = False
            products.append({"product_id": str(it.sku), "exemplars": exemplars})
        return {"posting_number": p.posting_number, "status": "ship_available" if ok else "ship_not_available",
                "products": products}

    def ship(self, body: dict[str, Any]) -> dict[str, Any]:
        p = self.posting(body.get("posting_number"))
        if p.status != "awaiting_packaging":
            raise OzonError(3, "POSTING_ALREADY_SHIPPED" if p.status == "awaiting_deliver" else f"INVALID_POSTING_STATUS: {p.status}")
        packages = body.get("packages") or []
        if not packages:
            raise OzonError(3, "packages: at least one package")
        want = {it.sku: it.quantity for it in p.items}
        got: dict[int, int] = {}
        for k, pkg in enumerate(packages):
            for prod in pkg.get("products") or []:
                sku, qty = prod.get("product_id"), int(prod.get("quantity") or 0)
                if sku not in want or qty < 1:
                    raise OzonError(3, f"packages[{k}]: product_id {sku} is not in the posting")
                got[sku] = got.get(sku, 0) + qty
        if got != want:
            raise OzonError(3, f"PACKAGES_DO_NOT_MATCH_POSTING: packed {got}, the posting has {want}")
        status = self.exemplar_status({"posting_number": p.posting_number})
        if status["status"] != "ship_available":
            raise OzonError(3, "MANDATORY_MARK_REQUIRED: set a valid Честный ЗНАК code for every marked unit (exemplar/set)")
        numbers = [p.posting_number]
        if len(packages) > 1:  # each further package becomes a posting of its own
            by_sku = {it.sku: it for it in p.items}
            p.items = []
            for k, pkg in enumerate(packages):
                items = []
                for prod in pkg["products"]:
                    src = by_sku[prod["product_id"]]
                    take = src.marks[: prod["quantity"]]
                    src.marks = src.marks[prod["quantity"]:]
                    items.append(Item(src.sku, src.offer_id, src.name, prod["quantity"], src.price, src.marked, take))
                if k == 0:
                    p.items = items
                else:
                    child = OzonPosting(posting_number=f"{p.order_number}-{k + 1}", order_id=p.order_id,
                                        order_number=p.order_number, warehouse_id=p.warehouse_id, items=items,
                                        status="awaiting_deliver", substatus="posting_awaiting_passport_data",
                                        in_process_at=p.in_process_at, shipment_date=p.shipment_date,
                                        parent_posting_number=p.posting_number)
                    self.postings[child.posting_number] = child
                    numbers.append(child.posting_number)
        p.status, p.substatus = "awaiting_deliver", "posting_awaiting_passport_data"
        self._touch(p)
        if self.config.auto:
            for n in numbers:
                self.bg.spawn(self._auto_deliver(n))
        additional = [{"posting_number": n, "products": [
            {"sku": it.sku, "offer_id": it.offer_id, "name": it.name, "quantity": it.quantity,
             "price": f"{it.price / 100:.2f}", "currency_code": "RUB", "mandatory_mark": list(it.marks)}
            for it in self.postings[n].items]} for n in numbers]
        answer: dict[str, Any] = {"result": numbers}
        if (body.get("with") or {}).get("additional_data"):
            answer["additional_data"] = additional
        return answer

    def package_label(self, body: dict[str, Any]) -> dict[str, Any]:
        numbers = body.get("posting_number") or []
        if not isinstance(numbers, list) or not numbers or len(numbers) > 20:
            raise OzonError(3, "posting_number: 1..20 posting numbers")
        postings = [self.posting(n) for n in numbers]
        for p in postings:
            if p.status not in ("awaiting_deliver", "delivering"):
                raise OzonError(3, f"POSTING_NOT_READY_FOR_LABEL: {p.posting_number} is {p.status}")
        pdf = label_pdf([f"OZON {p.posting_number}  {WAREHOUSES.get(p.warehouse_id, '')}" for p in postings])
        return {"content_type": "application/pdf", "file_name": f"{numbers[0]}.pdf",
                "file_content": base64.b64encode(pdf).decode("ascii")}

    def seller_cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        p = self.posting(body.get("posting_number"))
        reason_id = body.get("cancel_reason_id")
        if reason_id not in SELLER_CANCEL_REASONS:
            raise OzonError(3, f"cancel_reason_id: one of {sorted(SELLER_CANCEL_REASONS)}")
        if reason_id == 402 and not body.get("cancel_reason_message"):
            raise OzonError(3, "cancel_reason_message: required for reason 402")
        if p.status == "cancelled":
            return {"result": True}
        if p.status not in CANCELLABLE:
            raise OzonError(3, f"POSTING_CANNOT_BE_CANCELLED: {p.status}")
        self._cancel(p, reason_id, body.get("cancel_reason_message") or SELLER_CANCEL_REASONS[reason_id], "Продавец")
        return {"result": True}

    def update_stocks(self, body: dict[str, Any]) -> dict[str, Any]:
        stocks = body.get("stocks")
        if not isinstance(stocks, list) or not stocks or len(stocks) > 100:
            raise OzonError(3, "stocks: 1..100 items")
        now = time.monotonic()
        result = []
        for i, s in enumerate(stocks):
            offer_id = s.get("offer_id") or (self.by_sku_id.get(int(s["product_id"]) - PRODUCT_BASE + SKU_BASE) if s.get("product_id") else None)
            wh = s.get("warehouse_id")
            stock = s.get("stock")
            errors = []
            if offer_id not in self.skus:
                errors.append({"code": "NOT_FOUND", "message": "Product not found"})
            elif wh not in WAREHOUSES:
                errors.append({"code": "WAREHOUSE_NOT_FOUND", "message": f"warehouse {wh} is not the seller's"})
            elif not isinstance(stock, int) or stock < 0:
                errors.append({"code": "INVALID_STOCK", "message": "stock: a non-negative integer"})
            else:
                key = f"{offer_id}@{wh}"
                last = self._item_updates.get(key)
                if last is not None and now - last < self.limits.item_interval_s:
                    errors.append({"code": "TOO_MANY_REQUESTS", "message": f"one update of a product at a warehouse per {self.limits.item_interval_s:g} s"})
                else:
                    self._item_updates[key] = now
                    # the seller sends what is available; postings not yet packed are already deducted by Ozon
                    self.stocks[key] = stock
            idx = self.skus[offer_id][0] if offer_id in self.skus else None
            result.append({"warehouse_id": wh, "product_id": PRODUCT_BASE + idx if idx is not None else s.get("product_id", 0),
                           "offer_id": offer_id or "", "updated": not errors, "errors": errors})
        self.bg.touch("ozon")
        return {"result": result}

    # --- auto mode -----------------------------------------------------------------------------

    async def _auto(self) -> None:
        while True:
            await asyncio.sleep(5 * self.config.auto_delay_s)
            try:
                open_ = sum(1 for p in self.postings.values() if p.status == "awaiting_packaging")
                candidates = [k for k, v in self.stocks.items() if v > 0]
                if open_ < AUTO_OPEN_LIMIT and candidates:
                    offer_id, wh = self.rng.choice(sorted(candidates)).split("@")
                    self.create_posting([(offer_id, 1)], int(wh))
            except Exception:  # keep the loop alive
                log.exception("ozon.auto_failed")

    async def _auto_deliver(self, number: str) -> None:
        for status in ("delivering", "delivered"):
            await asyncio.sleep(3 * self.config.auto_delay_s)
            p = self.postings.get(number)
            if p is None or p.status == "cancelled":
                return
            try:
                self.set_status(number, status)
            except ValueError:
                return


def label_pdf(lines: list[str]) -> bytes:
    """A one-page PDF 1.4 (58×40 mm label) with ``lines`` of text: a real PDF a viewer opens."""
    def esc(s: str) -> str:
        return s.encode("latin-1", "replace").decode("latin-1").replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = "BT /F1 9 Tf 8 95 Td " + " ".join(f"({esc(ln)}) Tj 0 -12 Td" for ln in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 164 113] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(text)} >>\nstream\n{text}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{obj}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# --- HTTP ---------------------------------------------------------------------------------------

WIRE_PREFIXES = ("/ozon/",)


def wire_error(path: str, status: int, message: str) -> JSONResponse:
    """An unknown route, a wrong method or an injected fault in Ozon's shape (HTTP status kept;
    an injected 429 carries ``Retry-After``)."""
    code = {400: 3, 401: 16, 403: 7, 404: 5, 429: 8}.get(status, 13)
    headers = {"Retry-After": "1"} if status == 429 else None
    return JSONResponse({"code": code, "message": message, "details": []}, status_code=status, headers=headers)


def router(sim: OzonSim) -> APIRouter:
    r = APIRouter(tags=["ozon"])

    def method(path: str, operation: str, act: Any, summary: str) -> None:
        async def handler(request: Request) -> JSONResponse:
            await sim.faults.check(operation)
            try:
                client_id = sim.auth(request)
                sim.limit(client_id, operation)
                try:
                    body = await request.json()
                except ValueError:
                    raise OzonError(3, "the body is not JSON") from None
                if not isinstance(body, dict):
                    raise OzonError(3, "the body is a JSON object")
                return JSONResponse(act(body))
            except OzonError as exc:
                return exc.response()

        r.add_api_route(f"/ozon{path}", handler, methods=["POST"], summary=summary, name=f"ozon_{operation}")

    method("/v3/posting/fbs/unfulfilled/list", "unfulfilled_list", sim.unfulfilled, "Postings not yet handed over")
    method("/v3/posting/fbs/get", "get", sim.get, "One posting")
    method("/v6/fbs/posting/product/exemplar/set", "exemplar_set", sim.exemplar_set, "Marking codes of the units")
    method("/v5/fbs/posting/product/exemplar/status", "exemplar_status", sim.exemplar_status, "Check of the marking codes")
    method("/v4/posting/fbs/ship", "ship", sim.ship, "Pack a posting (ready to hand over)")
    method("/v2/posting/fbs/package-label", "package_label", sim.package_label, "Labels of packed postings (PDF)")
    method("/v2/posting/fbs/cancel", "cancel", sim.seller_cancel, "The seller cancels a posting")
    method("/v2/products/stocks", "stocks", sim.update_stocks, "Stock per product and warehouse")

    d = APIRouter(prefix="/sandbox/ozon", tags=["sandbox:ozon"])

    @d.post("/postings", summary="A customer orders (a new posting)")
    async def new_posting(body: NewPosting) -> dict[str, Any]:
        try:
            lines = [(str(x["offer_id"]), int(x.get("quantity", 1))) for x in body.items]
            return sim.create_posting(lines, body.warehouse_id).wire()
        except (KeyError, ValueError, TypeError) as exc:
            raise HTTPException(422, str(exc)) from None

    @d.post("/postings/{number}/cancel", summary="The customer cancels")
    async def customer_cancel(number: str, body: CancelIn | None = None) -> dict[str, Any]:
        try:
            return sim.customer_cancel(number, (body or CancelIn()).reason).wire()
        except OzonError:
            raise HTTPException(404, "no such posting") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @d.post("/postings/{number}/status", summary="Move a packed posting on (delivering, delivered)")
    async def status(number: str, body: StatusIn) -> dict[str, Any]:
        try:
            return sim.set_status(number, body.status).wire()
        except OzonError:
            raise HTTPException(404, "no such posting") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @d.get("/postings")
    async def postings(status: str | None = None) -> list[dict[str, Any]]:
        return [p.wire(exemplars=True) for p in sorted(sim.postings.values(), key=lambda p: p.in_process_at)
                if status is None or p.status == status]

    @d.get("/stocks", summary="What the seller pushed, per offer_id@warehouse_id")
    async def stocks() -> dict[str, Any]:
        return {"warehouses": {str(k): v for k, v in WAREHOUSES.items()}, "stocks": dict(sim.stocks)}

    @d.post("/limits", summary="Rate limits (tests shorten them)")
    async def limits(body: LimitsIn) -> dict[str, Any]:
        sim.set_limits(body)
        return body.model_dump()

    @d.post("/push", summary="Where push notifications go (none: off)")
    async def push(body: PushIn) -> dict[str, Any]:
        sim.push_url = body.url or ""
        return {"url": sim.push_url}

    r.include_router(d)
    return r
