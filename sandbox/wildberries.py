"""Simulated Wildberries marketplace API (FBS: the seller assembles orders from its own stock).

Wire shape: Wildberries API documentation (dev.wildberries.ru/openapi/orders-fbs, «Сборочные
задания», «Поставки FBS», «Метаданные» — marking codes; /openapi/work-with-products «Остатки на
складах продавца»; «Лимиты запросов» with the ``X-Ratelimit-*`` headers), as its OpenAPI
specifications describe it and the PyPI client generated from them (``wildberries-sdk``) reads
it; ``docs/wire/wildberries.md``. ``tests/contract/test_wildberries_client.py`` drives this
simulator with that client. Everything is under ``/wildberries`` with the seller's token in
``Authorization`` (:data:`TOKENS`; ``Bearer`` accepted):

* ``GET /api/v3/orders/new`` → ``{orders[{id, rid, orderUid, article, nmId, chrtId, skus[],
  warehouseId, officeId, offices[], price, finalPrice, salePrice, convertedPrice, currencyCode,
  convertedCurrencyCode, createdAt, deliveryType: "fbs", cargoType, crossBorderType,
  requiredMeta[], optionalMeta[], isZeroOrder, comment, address}]}`` (prices × 100);
  ``GET /api/v3/orders?limit&next&dateFrom&dateTo`` → ``{next, orders}``.
* ``POST /api/v3/orders/status {orders[id ≤ 1000]}`` → ``{orders[{id, supplierStatus (new |
  confirm | complete | cancel), wbStatus (waiting | sorted | sold | canceled |
  canceled_by_client | declined_by_client | defect | ready_for_pickup), isCancellable}]}``;
  ``PATCH /api/v3/orders/{orderId}/cancel`` → 204 (the seller cancels).
* ``PUT /api/v3/orders/{orderId}/meta/sgtin {sgtins[]}`` → 204: the unit's Честный ЗНАК code
  (full, or short without the crypto tail); a marked article lists ``sgtin`` in
  ``requiredMeta`` and its supply cannot go to delivery without it. ``POST
  /api/marketplace/v3/orders/meta {orders[]}`` → ``{orders[{id, meta{sgtin[], imei, uin, gtin,
  expiration}}]}``.
* ``POST /api/v3/supplies {name}`` → 201 ``{id: "WB-GI-…"}``; ``GET /api/v3/supplies/{id}``;
  ``PATCH /api/marketplace/v3/supplies/{id}/orders {orders[≤ 100]}`` → 204 (the orders move to
  ``confirm``; the older ``PATCH /api/v3/supplies/{id}/orders/{orderId}`` too); ``GET
  /api/marketplace/v3/supplies/{id}/order-ids`` → ``{orderIds}``; ``PATCH
  /api/v3/supplies/{id}/deliver`` → 204 (closes it; its orders ``complete``).
* ``POST /api/v3/orders/stickers?type=svg|png|zplv|zplh&width=58|40&height=40|30 {orders[]}`` →
  ``{stickers[{orderId, partA, partB, barcode, file}]}`` (``file`` base64; orders on a supply).
* ``PUT /api/v3/stocks/{warehouseId} {stocks[{chrtId, amount}] ≤ 1000}`` → 204 (409 naming
  unknown sizes); ``POST /api/v3/stocks/{warehouseId} {chrtIds[]}`` → ``{stocks[{chrtId,
  amount}]}``; ``GET /api/v3/warehouses`` → the seller's warehouses.

Errors: ``{code, message, data?}`` (400 ``IncorrectParameter`` / ``IncorrectRequestBody``, 404
``NotFound``, 409 ``FailedToAddSupplyOrder``, ``FailedToDeliverSupply``…); 401 and 429 in the
gateway's shape ``{title, detail, code, requestId, origin, status, statusText, timestamp}``.
Rate limit: :data:`PER_MINUTE` requests a minute per token across the marketplace methods
(the documented «Маркетплейс» limit); a 429 carries ``X-Ratelimit-Retry`` (seconds to wait),
``X-Ratelimit-Limit``, ``X-Ratelimit-Reset`` and ``Retry-After``.

Auto mode: a new order every ``5 × auto_delay_s`` for a size the seller has in stock (pushed
with ``PUT /api/v3/stocks``; an order takes one unit), at most :data:`AUTO_OPEN_LIMIT` new at
once; delivered supplies' orders go sorted, then sold. Drive (``/sandbox/wildberries``): ``POST
/orders {article, warehouse_id?}``, ``POST /orders/{id}/cancel`` (the customer cancels),
``POST /orders/{id}/status {wbStatus}``, ``GET /orders``, ``GET /stocks``, ``POST /limits
{per_minute}``, ``/faults`` (operations: orders_new, orders, status, cancel, sgtin, meta,
supply_create, supply_get, supply_add, supply_deliver, stickers, stocks_put, stocks_get,
warehouses; ``status: 429`` carries the rate-limit headers).
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from domain.marking import MarkingCodeError, gtin_from_barcode, parse_marking_code
from sandbox.common import Background, Faults, RateLimit, SandboxConfig
from sandbox.demo_data import DemoData, marked, shared
from sandbox.state import Persisted

log = structlog.get_logger("sandbox.wildberries")

TOKENS = frozenset({"wb-api-token"})
#: the seller's warehouses at WB (id -> Orkestr location) and the WB office each is bound to
WAREHOUSES: dict[int, str] = {800001: "WH-ONLINE", 800002: "MSK-001"}
OFFICE_ID, OFFICE_NAME = 507, "Коледино"
CHRT_BASE, NM_BASE = 300_000_000, 400_000_000
PER_MINUTE = 300
AUTO_OPEN_LIMIT = 20
STICKER_SIZES = {(58, 40), (40, 30)}
STICKER_TYPES = {"svg", "png", "zplv", "zplh"}


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class WbError(Exception):
    def __init__(self, status: int, code: str, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.data = status, code, message, data

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            body["data"] = self.data
        return JSONResponse(body, status_code=self.status)


def gateway_error(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """401/429 come from WB's API gateway in this shape (``title``, ``detail``, ``status`` …)."""
    return JSONResponse(
        {"title": title, "detail": detail, "code": uuid.uuid4().hex[:16], "requestId": uuid.uuid4().hex,
         "origin": "s2s-api-auth-marketplace", "status": status,
         "statusText": {401: "Unauthorized", 429: "Too Many Requests"}.get(status, ""),
         "timestamp": _rfc3339(time.time())},
        status_code=status, headers=headers,
    )


class RateLimited(Exception):
    def __init__(self, wait: float, limit: int) -> None:
        super().__init__("rate limited")
        self.wait, self.limit = wait, limit

    def response(self) -> JSONResponse:
        secs = str(max(1, round(self.wait)))
        return gateway_error(429, "too many requests", "limited by the marketplace's rate limit", {
            "X-Ratelimit-Retry": secs, "X-Ratelimit-Limit": str(self.limit), "X-Ratelimit-Reset": secs,
            "X-Ratelimit-Remaining": "0", "Retry-After": secs})


@dataclass
class WbOrder:
    id: int
    rid: str
    order_uid: str
    article: str  # the seller's article: our SKU
    nm_id: int
    chrt_id: int
    barcode: str
    warehouse_id: int
    price: int  # kopecks (the wire's "× 100")
    marked: bool
    created_at: float = field(default_factory=time.time)
    supplier_status: str = "new"
    wb_status: str = "waiting"
    supply_id: str = ""
    sgtins: list[str] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        return {
            "address": None, "ddate": None, "sellerDate": None, "salePrice": self.price,
            "requiredMeta": ["sgtin"] if self.marked else [], "optionalMeta": [] if self.marked else ["sgtin"],
            "deliveryType": "fbs", "comment": "", "scanPrice": None, "orderUid": self.order_uid,
            "article": self.article, "colorCode": "", "rid": self.rid, "createdAt": _rfc3339(self.created_at),
            "offices": [OFFICE_NAME], "skus": [self.barcode], "id": self.id, "warehouseId": self.warehouse_id,
            "officeId": OFFICE_ID, "nmId": self.nm_id, "chrtId": self.chrt_id, "price": self.price,
            "finalPrice": self.price, "convertedPrice": self.price, "convertedFinalPrice": self.price,
            "currencyCode": 643, "convertedCurrencyCode": 643, "cargoType": 1, "crossBorderType": 0,
            "isZeroOrder": False, "isPickupPointShipmentAllowed": False, "options": {"isB2B": False},
        }

    @property
    def cancellable(self) -> bool:
        return self.supplier_status in ("new", "confirm") and self.wb_status == "waiting"


@dataclass
class Supply:
    id: str
    name: str
    created_at: float = field(default_factory=time.time)
    done: bool = False
    closed_at: float | None = None
    order_ids: list[int] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id, "isB2b": False if self.order_ids else None, "isPickupPointShipmentAllowed": False,
            "done": self.done, "createdAt": _rfc3339(self.created_at),
            "closedAt": _rfc3339(self.closed_at) if self.closed_at else None, "scanDt": None, "name": self.name,
            "cargoType": 1, "crossBorderType": 0, "destinationOfficeId": OFFICE_ID, "spotAvailable": False,
        }


class NewOrder(BaseModel):
    article: str = Field(description="the seller's article (SKU), e.g. P000001-M-RED")
    warehouse_id: int | None = None


class WbStatusIn(BaseModel):
    wbStatus: str


class LimitsIn(BaseModel):
    per_minute: int = Field(PER_MINUTE, ge=1)


class WildberriesSim(Persisted):
    persisted: ClassVar[dict[str, Any]] = {
        "orders": dict[int, WbOrder],
        "supplies": dict[str, Supply],
        "stocks": dict[str, int],
        "seq": int,
    }

    def __init__(self, config: SandboxConfig, bg: Background) -> None:
        self.config = config
        self.bg = bg
        self.faults = Faults("wildberries")
        self.tokens = set(TOKENS)
        self.data: DemoData = shared(config.seed, config.products, config.small_catalog)
        self.rng = random.Random(config.seed * 53 + 11)
        self.orders: dict[int, WbOrder] = {}
        self.supplies: dict[str, Supply] = {}
        #: "chrtId@warehouseId" -> amount the seller pushed (less what new orders took)
        self.stocks: dict[str, int] = {}
        self.seq = 0
        self.per_minute = PER_MINUTE
        self._rl = RateLimit(PER_MINUTE, 60.0)
        prods = {p.id: (i, p) for i, p in enumerate(self.data.products)}
        flat = [(s, p) for p in self.data.products for s in p.skus]
        self.by_article = {s.sku: (CHRT_BASE + i, NM_BASE + prods[p.id][0], s, p) for i, (s, p) in enumerate(flat)}
        self.by_chrt = {v[0]: k for k, v in self.by_article.items()}
        self.prices = {pr.sku: pr.amount for pr in self.data.prices if pr.price_type == "Retail" and pr.currency == "RUB"}

    async def start(self) -> None:
        if self.config.auto:
            self.bg.spawn(self._auto())

    # --- plumbing ------------------------------------------------------------------------------

    def auth(self, request: Request) -> str:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise PermissionError("invalid token")
        return token

    def limit(self, token: str) -> None:
        wait = self._rl.hit(token)
        if wait:
            raise RateLimited(wait, self.per_minute)

    def order(self, order_id: Any) -> WbOrder:
        try:
            o = self.orders.get(int(order_id))
        except (TypeError, ValueError):
            o = None
        if o is None:
            raise WbError(404, "NotFound", f"order {order_id} not found")
        return o

    def supply(self, supply_id: str) -> Supply:
        s = self.supplies.get(supply_id)
        if s is None:
            raise WbError(404, "NotFound", f"supply {supply_id} not found")
        return s

    # --- orders --------------------------------------------------------------------------------

    def create_order(self, article: str, warehouse_id: int | None = None) -> WbOrder:
        found = self.by_article.get(article)
        if found is None:
            raise ValueError(f"unknown article {article!r}")
        wh = warehouse_id if warehouse_id is not None else next(iter(WAREHOUSES))
        if wh not in WAREHOUSES:
            raise ValueError(f"unknown warehouse {wh}; the seller's: {sorted(WAREHOUSES)}")
        chrt, nm, s, p = found
        self.seq += 1
        order = WbOrder(id=5_000_000 + self.seq, rid=uuid.uuid4().hex, order_uid=f"{self.seq}_{uuid.uuid4().hex}",
                        article=article, nm_id=nm, chrt_id=chrt, barcode=s.barcode, warehouse_id=wh,
                        price=self.prices.get(article, 0), marked=marked(p.category))
        key = f"{chrt}@{wh}"
        if key in self.stocks:
            self.stocks[key] = max(0, self.stocks[key] - 1)
        self.orders[order.id] = order
        self.bg.touch("wildberries")
        log.info("wildberries.order_created", order_id=order.id, article=article)
        return order

    def customer_cancel(self, order_id: int) -> WbOrder:
        o = self.order(order_id)
        if not o.cancellable:
            raise ValueError(f"order is {o.supplier_status}/{o.wb_status}: the customer can no longer cancel it")
        o.wb_status = "canceled_by_client"
        self._free(o)
        self.bg.touch("wildberries")
        return o

    def _free(self, o: WbOrder) -> None:
        key = f"{o.chrt_id}@{o.warehouse_id}"
        if key in self.stocks:
            self.stocks[key] += 1

    def new_orders(self) -> dict[str, Any]:
        return {"orders": [o.wire() for o in self.orders.values() if o.supplier_status == "new" and o.wb_status == "waiting"]}

    def list_orders(self, params: dict[str, str]) -> dict[str, Any]:
        try:
            limit = int(params.get("limit", "0"))
            after = int(params.get("next", "0"))
            lo = int(params.get("dateFrom", "0") or 0)
            hi = int(params.get("dateTo", "0") or 0) or 2**40
        except ValueError:
            raise WbError(400, "IncorrectParameter", "limit, next, dateFrom, dateTo are integers") from None
        if not 1 <= limit <= 1000:
            raise WbError(400, "IncorrectParameter", "limit: 1..1000")
        found = sorted((o for o in self.orders.values() if o.id > after and lo <= o.created_at <= hi), key=lambda o: o.id)[:limit]
        return {"next": found[-1].id if found else after, "orders": [o.wire() for o in found]}

    def statuses(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = body.get("orders")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 1000:
            raise WbError(400, "IncorrectRequestBody", "orders: 1..1000 order ids")
        out = []
        for oid in ids:
            o = self.orders.get(oid) if isinstance(oid, int) else None
            if o is not None:
                out.append({"id": o.id, "supplierStatus": o.supplier_status, "wbStatus": o.wb_status,
                            "isCancellable": o.cancellable, "isTransferable": False})
        return {"orders": out}

    def seller_cancel(self, order_id: str) -> None:
        o = self.order(order_id)
        if o.supplier_status == "cancel":
            return
        if not o.cancellable:
            raise WbError(409, "FailedToCancelOrder", f"order is {o.supplier_status}/{o.wb_status}: it cannot be cancelled")
        o.supplier_status = "cancel"
        if o.supply_id and o.id in self.supplies[o.supply_id].order_ids:
            self.supplies[o.supply_id].order_ids.remove(o.id)
        self._free(o)
        self.bg.touch("wildberries")

    def set_sgtin(self, order_id: str, body: dict[str, Any]) -> None:
        o = self.order(order_id)
        codes = body.get("sgtins")
        if not isinstance(codes, list) or not 1 <= len(codes) <= 100:
            raise WbError(400, "IncorrectRequestBody", "sgtins: 1..100 codes")
        if len(codes) > 1:
            raise WbError(400, "IncorrectParameter", "one order is one unit: one marking code")
        if o.supplier_status not in ("new", "confirm"):
            raise WbError(409, "FailedToUpdateMeta", f"order is {o.supplier_status}")
        try:
            code = parse_marking_code(str(codes[0]))
        except MarkingCodeError as exc:
            raise WbError(400, "IncorrectParameter", f"sgtins[0]: {exc}") from None
        if code.gtin != gtin_from_barcode(o.barcode):
            raise WbError(400, "IncorrectParameter", f"sgtins[0]: GTIN {code.gtin} is not the article's {gtin_from_barcode(o.barcode)}")
        o.sgtins = [str(codes[0])]
        self.bg.touch("wildberries")

    def meta(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = body.get("orders")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise WbError(400, "IncorrectRequestBody", "orders: 1..100 order ids")
        return {"orders": [{"id": o.id, "meta": {"sgtin": list(o.sgtins), "imei": None, "uin": None, "gtin": None, "expiration": None}}
                           for oid in ids if isinstance(oid, int) and (o := self.orders.get(oid)) is not None]}

    # --- supplies ------------------------------------------------------------------------------

    def create_supply(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            raise WbError(400, "IncorrectRequestBody", "name: 1..128 characters")
        self.seq += 1
        s = Supply(id=f"WB-GI-{10_000_000 + self.seq}", name=name)
        self.supplies[s.id] = s
        self.bg.touch("wildberries")
        return {"id": s.id}

    def add_orders(self, supply_id: str, ids: Any) -> None:
        s = self.supply(supply_id)
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise WbError(400, "IncorrectRequestBody", "orders: 1..100 order ids")
        if s.done:
            raise WbError(409, "FailedToAddSupplyOrder", "the supply is already delivered")
        orders = [self.order(i) for i in ids]
        for o in orders:
            if o.wb_status != "waiting" or o.supplier_status not in ("new", "confirm") or (o.supply_id and o.supply_id != s.id):
                raise WbError(409, "FailedToAddSupplyOrder", f"order {o.id} is {o.supplier_status}/{o.wb_status}"
                              + (f" on {o.supply_id}" if o.supply_id else ""))
        for o in orders:
            o.supplier_status, o.supply_id = "confirm", s.id
            if o.id not in s.order_ids:
                s.order_ids.append(o.id)
        self.bg.touch("wildberries")

    def deliver(self, supply_id: str) -> None:
        s = self.supply(supply_id)
        if s.done:
            raise WbError(409, "FailedToDeliverSupply", "the supply is already delivered")
        live = [self.orders[i] for i in s.order_ids if self.orders[i].wb_status == "waiting"]
        if not live:
            raise WbError(409, "FailedToDeliverSupply", "the supply has no orders")
        missing = [o for o in live if o.marked and not o.sgtins]
        if missing:
            raise WbError(409, "FailedToDeliverSupply", "marking codes are required (requiredMeta: sgtin)",
                          {"orders": [{"id": o.id, "metaDetails": [{"key": "sgtin", "value": None, "decision": "required"}]} for o in missing]})
        s.done, s.closed_at = True, time.time()
        for o in live:
            o.supplier_status = "complete"
        self.bg.touch("wildberries")
        if self.config.auto:
            self.bg.spawn(self._auto_sell([o.id for o in live]))

    def stickers(self, params: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        kind = params.get("type", "")
        try:
            size = (int(params.get("width", "0")), int(params.get("height", "0")))
        except ValueError:
            size = (0, 0)
        if kind not in STICKER_TYPES or size not in STICKER_SIZES:
            raise WbError(400, "IncorrectParameter", "type: svg|png|zplv|zplh; width×height: 58×40 or 40×30")
        ids = body.get("orders")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise WbError(400, "IncorrectRequestBody", "orders: 1..100 order ids")
        out = []
        for oid in ids:
            o = self.order(oid)
            if o.supplier_status != "confirm":
                raise WbError(409, "FailedToGetSticker", f"order {o.id} is not on a supply (status {o.supplier_status})")
            part_a, part_b = str(o.id)[:-4], str(o.id)[-4:]
            svg = (f"<svg xmlns='http://www.w3.org/2000/svg' width='{size[0] * 4}' height='{size[1] * 4}'>"
                   f"<text x='10' y='40'>WB {o.id}</text><text x='10' y='80'>{part_a} {part_b}</text></svg>")
            out.append({"orderId": o.id, "partA": part_a, "partB": part_b, "barcode": f"*{o.rid[:10]}",
                        "file": base64.b64encode(svg.encode()).decode()})
        return {"stickers": out}

    # --- stocks --------------------------------------------------------------------------------

    def put_stocks(self, warehouse_id: int, body: dict[str, Any]) -> None:
        if warehouse_id not in WAREHOUSES:
            raise WbError(404, "NotFound", f"warehouse {warehouse_id} is not the seller's")
        stocks = body.get("stocks")
        if not isinstance(stocks, list) or not 1 <= len(stocks) <= 1000:
            raise WbError(400, "IncorrectRequestBody", "stocks: 1..1000 items")
        unknown = [s for s in stocks if not isinstance(s, dict) or s.get("chrtId") not in self.by_chrt]
        if unknown:
            raise WbError(409, "NotFound", "sizes not found", [{"sku": "", "chrtId": s.get("chrtId") if isinstance(s, dict) else None,
                                                              "amount": s.get("amount") if isinstance(s, dict) else None} for s in unknown])
        for i, s in enumerate(stocks):
            amount = s.get("amount")
            if not isinstance(amount, int) or not 0 <= amount <= 100_000:
                raise WbError(400, "IncorrectParameter", f"stocks[{i}].amount: 0..100000")
        for s in stocks:
            self.stocks[f"{s['chrtId']}@{warehouse_id}"] = s["amount"]
        self.bg.touch("wildberries")

    def get_stocks(self, warehouse_id: int, body: dict[str, Any]) -> dict[str, Any]:
        if warehouse_id not in WAREHOUSES:
            raise WbError(404, "NotFound", f"warehouse {warehouse_id} is not the seller's")
        ids = body.get("chrtIds")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 1000:
            raise WbError(400, "IncorrectRequestBody", "chrtIds: 1..1000")
        return {"stocks": [{"chrtId": c, "amount": self.stocks.get(f"{c}@{warehouse_id}", 0)} for c in ids if c in self.by_chrt]}

    def cards(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /content/v2/get/cards/list``: the seller's cards (one per product) with their
        sizes' ``chrtID`` and barcodes, paged by ``cursor{limit, nmID}``."""
        cursor = ((body.get("settings") or {}).get("cursor") or {})
        limit = cursor.get("limit", 100)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise WbError(400, "IncorrectRequestBody", "settings.cursor.limit: 1..100")
        after = cursor.get("nmID") or 0
        by_nm: dict[int, list[tuple[int, Any, Any]]] = {}
        for chrt, nm, sku, prod in self.by_article.values():
            by_nm.setdefault(nm, []).append((chrt, sku, prod))
        page = [nm for nm in sorted(by_nm) if nm > after][:limit]
        cards = [{"nmID": nm, "vendorCode": by_nm[nm][0][2].id, "brand": by_nm[nm][0][2].brand, "title": by_nm[nm][0][2].name,
                  "sizes": [{"chrtID": chrt, "techSize": sku.size, "skus": [sku.barcode]} for chrt, sku, _p in by_nm[nm]]}
                 for nm in page]
        return {"cards": cards, "cursor": {"updatedAt": _rfc3339(time.time()), "nmID": page[-1] if page else after, "total": len(cards)}}

    # --- auto mode -----------------------------------------------------------------------------

    async def _auto(self) -> None:
        while True:
            await asyncio.sleep(5 * self.config.auto_delay_s)
            try:
                open_ = sum(1 for o in self.orders.values() if o.supplier_status == "new" and o.wb_status == "waiting")
                candidates = sorted(k for k, v in self.stocks.items() if v > 0)
                if open_ < AUTO_OPEN_LIMIT and candidates:
                    chrt, wh = self.rng.choice(candidates).split("@")
                    self.create_order(self.by_chrt[int(chrt)], int(wh))
            except Exception:
                log.exception("wildberries.auto_failed")

    async def _auto_sell(self, ids: list[int]) -> None:
        for status in ("sorted", "sold"):
            await asyncio.sleep(3 * self.config.auto_delay_s)
            for oid in ids:
                o = self.orders.get(oid)
                if o is not None and o.wb_status in ("waiting", "sorted"):
                    o.wb_status = status
            self.bg.touch("wildberries")


# --- HTTP ---------------------------------------------------------------------------------------

WIRE_PREFIXES = ("/wildberries/api/", "/wildberries/content/")


def wire_error(path: str, status: int, message: str) -> Response:
    if status == 429:
        return RateLimited(1.0, PER_MINUTE).response()
    return JSONResponse({"code": {404: "NotFound", 405: "MethodNotAllowed"}.get(status, "InternalServerError" if status >= 500 else "IncorrectRequest"),
                         "message": message}, status_code=status)


def router(sim: WildberriesSim) -> APIRouter:
    r = APIRouter(tags=["wildberries"])

    def route(method: str, path: str, operation: str, act: Any, summary: str, *, ok: int = 200, body: bool = True) -> None:
        async def handler(request: Request) -> Response:
            await sim.faults.check(operation)
            try:
                token = sim.auth(request)
            except PermissionError:
                return gateway_error(401, "unauthorized", "token is missing or invalid")
            try:
                sim.limit(token)
                payload: dict[str, Any] = {}
                if body:
                    try:
                        payload = await request.json()
                    except ValueError:
                        raise WbError(400, "IncorrectRequestBody", "the body is not JSON") from None
                    if not isinstance(payload, dict):
                        raise WbError(400, "IncorrectRequestBody", "the body is a JSON object")
                result = act(request, payload)
            except RateLimited as exc:
                return exc.response()
            except WbError as exc:
                return exc.response()
            if result is None:
                return Response(status_code=204)
            return JSONResponse(result, status_code=ok)

        r.add_api_route(f"/wildberries{path}", handler, methods=[method], summary=summary, name=f"wb_{operation}")

    def pp(req: Request, name: str) -> str:
        return str(req.path_params[name])

    route("GET", "/api/v3/orders/new", "orders_new", lambda req, _b: sim.new_orders(), "New orders", body=False)
    route("GET", "/api/v3/orders", "orders", lambda req, _b: sim.list_orders(dict(req.query_params)), "Orders, paged", body=False)
    route("POST", "/api/v3/orders/status", "status", lambda req, b: sim.statuses(b), "Statuses of orders")
    route("PATCH", "/api/v3/orders/{orderId}/cancel", "cancel", lambda req, _b: sim.seller_cancel(pp(req, "orderId")), "The seller cancels", body=False)
    route("PUT", "/api/v3/orders/{orderId}/meta/sgtin", "sgtin", lambda req, b: sim.set_sgtin(pp(req, "orderId"), b), "The unit's marking code")
    route("POST", "/api/marketplace/v3/orders/meta", "meta", lambda req, b: sim.meta(b), "Metadata of orders")
    route("POST", "/api/v3/supplies", "supply_create", lambda req, b: sim.create_supply(b), "Create a supply", ok=201)
    route("GET", "/api/v3/supplies/{supplyId}", "supply_get", lambda req, _b: sim.supply(pp(req, "supplyId")).wire(), "A supply", body=False)
    route("PATCH", "/api/marketplace/v3/supplies/{supplyId}/orders", "supply_add",
          lambda req, b: sim.add_orders(pp(req, "supplyId"), b.get("orders")), "Add orders to a supply")
    route("PATCH", "/api/v3/supplies/{supplyId}/orders/{orderId}", "supply_add",
          lambda req, _b: sim.add_orders(pp(req, "supplyId"), [int(pp(req, "orderId"))] if pp(req, "orderId").isdigit() else [-1]),
          "Add one order to a supply (older method)", body=False)
    route("GET", "/api/marketplace/v3/supplies/{supplyId}/order-ids", "supply_get",
          lambda req, _b: {"orderIds": list(sim.supply(pp(req, "supplyId")).order_ids)}, "Order ids of a supply", body=False)
    route("PATCH", "/api/v3/supplies/{supplyId}/deliver", "supply_deliver", lambda req, _b: sim.deliver(pp(req, "supplyId")),
          "Hand the supply over", body=False)
    route("POST", "/api/v3/orders/stickers", "stickers", lambda req, b: sim.stickers(dict(req.query_params), b), "Stickers of orders")
    route("PUT", "/api/v3/stocks/{warehouseId}", "stocks_put",
          lambda req, b: sim.put_stocks(_int(pp(req, "warehouseId")), b), "Stock of sizes at a warehouse")
    route("POST", "/api/v3/stocks/{warehouseId}", "stocks_get",
          lambda req, b: sim.get_stocks(_int(pp(req, "warehouseId")), b), "Read stock at a warehouse")
    route("POST", "/content/v2/get/cards/list", "cards", lambda req, b: sim.cards(b), "The seller's cards with sizes (content API)")
    route("GET", "/api/v3/warehouses", "warehouses", lambda req, _b: [
        {"name": loc, "officeId": OFFICE_ID, "id": wid, "cargoType": 1, "deliveryType": 1} for wid, loc in WAREHOUSES.items()
    ], "The seller's warehouses", body=False)

    d = APIRouter(prefix="/sandbox/wildberries", tags=["sandbox:wildberries"])

    @d.post("/orders", summary="A customer orders one unit")
    async def new_order(body: NewOrder) -> dict[str, Any]:
        try:
            return sim.create_order(body.article, body.warehouse_id).wire()
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    @d.post("/orders/{order_id}/cancel", summary="The customer cancels")
    async def customer_cancel(order_id: int) -> dict[str, Any]:
        try:
            o = sim.customer_cancel(order_id)
        except WbError:
            raise HTTPException(404, "no such order") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return {**o.wire(), "wbStatus": o.wb_status, "supplierStatus": o.supplier_status}

    @d.post("/orders/{order_id}/status", summary="Set WB's status (sorted, sold, declined_by_client…)")
    async def set_status(order_id: int, body: WbStatusIn) -> dict[str, Any]:
        try:
            o = sim.order(order_id)
        except WbError:
            raise HTTPException(404, "no such order") from None
        o.wb_status = body.wbStatus
        sim.bg.touch("wildberries")
        return {"id": o.id, "wbStatus": o.wb_status, "supplierStatus": o.supplier_status}

    @d.get("/orders")
    async def orders() -> list[dict[str, Any]]:
        return [{**o.wire(), "supplierStatus": o.supplier_status, "wbStatus": o.wb_status, "supplyId": o.supply_id,
                 "sgtins": o.sgtins} for o in sorted(sim.orders.values(), key=lambda o: o.id)]

    @d.get("/stocks", summary="What the seller pushed, per chrtId@warehouseId; the catalogue's chrtIds")
    async def stocks(article: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"warehouses": {str(k): v for k, v in WAREHOUSES.items()}, "stocks": dict(sim.stocks)}
        if article is not None:
            found = sim.by_article.get(article)
            out["chrtId"] = found[0] if found else None
        return out

    @d.post("/limits", summary="Requests a minute per token (tests shorten it)")
    async def limits(body: LimitsIn) -> dict[str, Any]:
        sim.per_minute = body.per_minute
        sim._rl = RateLimit(body.per_minute, 60.0)
        return body.model_dump()

    r.include_router(d)
    return r


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise WbError(400, "IncorrectParameter", f"{value!r} is not an id") from None
