"""Simulated ERP (1C:Enterprise-like) speaking 1C's OData JSON under ``/erp``.

Wire shapes follow ``shared/reference/erp-pos.md`` ("1C also exposes OData:
``/odata/standard.odata/Catalog_…|Document_…|AccumulationRegister_…?$format=json``"):
list answers are ``{"odata.metadata": ..., "value": [...]}``, paging with ``$top``/``$skip``,
``$inlinecount=allpages`` adds ``"odata.count"``; errors are
``{"odata.error": {"code", "message": {"lang", "value"}}}``; money is decimal roubles
(or tenge). HTTP Basic auth.

Entities:

* ``Catalog_Warehouses`` — the online warehouse and the stores;
* ``Catalog_Nomenclature`` — products with their ``Characteristics`` (SKUs) and ``Marked`` (mandatory Честный ЗНАК marking);
* ``InformationRegister_Prices`` — price per SKU, price type and currency;
* ``AccumulationRegister_StockBalance`` — quantity on hand per SKU and warehouse, with the
  current stock ``Version`` beside ``value``. A pair that was never stocked is absent (= 0);
  once present a pair stays listed (possibly with 0) so paging never skips a row;
* ``AccumulationRegister_StockMovements?$filter=Version gt N`` — every stock change after
  version N as the *new absolute* quantity, so re-applying is harmless;
* ``Document_CustomerOrder``, ``Document_Sale``, ``Document_Return`` — POSTed by Orkestr,
  idempotent by ``Number`` (a repeat answers 200 with the first document, changes nothing);
  listed with ``$filter=Number eq '…'``; a customer order changes with
  ``PATCH Document_CustomerOrder(guid'<Ref_Key>')`` (1C's standard OData interface updates an
  object by its ``Ref_Key``; a given tabular part is replaced whole).
  A Sale decrements stock (never below 0), a Return increments it; each is a movement.

1C Retail keeps no reservations (the reference says so): reservations live in Orkestr.

Drive endpoints under ``/sandbox/erp``: simulate store sales, set stock, read stock and
the posted documents. In auto mode the chain's stores sell by themselves every
``3 × auto_delay_s``.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import random
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Sequence

import structlog
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.common import Background, Faults, SandboxConfig
from sandbox.demo_data import WAREHOUSE_ID, DemoData, marked, shared
from sandbox.state import Persisted

log = structlog.get_logger("sandbox.erp")

ODATA = "/erp/odata/standard.odata"
DOC_TYPES = ("CustomerOrder", "Sale", "Return")
_NS = uuid.UUID("5f0c1c1e-0000-4000-8000-00000000e1c1")
_FILTER_VERSION = re.compile(r"^\s*Version\s+gt\s+(\d+)\s*$", re.IGNORECASE)
_FILTER_NUMBER = re.compile(r"^\s*Number\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


def ref_key(kind: str, code: str) -> str:
    """A stable 1C-style ``Ref_Key`` GUID for an object."""
    return str(uuid.uuid5(_NS, f"{kind}:{code}"))


def to_decimal(minor: int) -> float:
    """Minor units to the decimal amount 1C puts on the wire (2 990,00 → 2990.0)."""
    return float(Decimal(minor) / 100)


def from_decimal(value: Any) -> int:
    """Decimal roubles from the wire to kopecks; raises ValueError on garbage."""
    try:
        return int((Decimal(str(value)) * 100).to_integral_value())
    except (InvalidOperation, TypeError) as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def odata_error(status: int, message: str, code: str = "-1") -> JSONResponse:
    return JSONResponse({"odata.error": {"code": code, "message": {"lang": "ru", "value": message}}}, status_code=status)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Movement:
    version: int
    sku: str
    warehouse: str
    quantity: int  # new absolute quantity
    period: str
    recorder: str  # what caused it: "Document_Sale(WEB-1)", "StoreSale", "Manual"

    def wire(self) -> dict[str, Any]:
        return {
            "Version": self.version,
            "Sku": self.sku,
            "Warehouse": self.warehouse,
            "Quantity": self.quantity,
            "Period": self.period,
            "Recorder": self.recorder,
        }


class ErpSim(Persisted):
    """State of the simulated ERP: catalogue, prices, stock with versioned movements, documents.

    Kept across restarts: the movements (every stock change since the demo data, each an
    absolute quantity), the version and the documents. The demo data is deterministic from the
    seed, so the stock is the demo stock with the movements replayed (:meth:`restored`)."""

    persisted: ClassVar[dict[str, Any]] = {
        "version": int,
        "movements": list[Movement],
        "documents": dict[str, dict[str, dict[str, Any]]],
    }

    faults: Faults

    def __init__(self, config: SandboxConfig, bg: Background) -> None:
        self.config = config
        self.bg = bg
        self.faults = Faults("erp")
        self.user: str = getattr(config, "erp_user", "orkestr")
        self.password: str = getattr(config, "erp_password", "orkestr")
        self.data: DemoData = shared(config.seed, config.products, config.small_catalog)
        self.rng = random.Random(config.seed * 7919 + 1)
        # stock: every pair ever stocked stays in `keys` (sorted) so that paging is stable
        self.stock: dict[tuple[str, str], int] = dict(self.data.stock)
        self.keys: list[tuple[str, str]] = sorted(self.stock)
        self.version = 0
        self.movements: list[Movement] = []
        self.documents: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in DOC_TYPES}
        self._wire_locations = [self._location_wire(loc) for loc in self.data.locations]

    def restored(self) -> None:
        self.stock = dict(self.data.stock)
        for mv in self.movements:
            self.stock[(mv.sku, mv.warehouse)] = mv.quantity
        self.keys = sorted(self.stock)

    async def start(self) -> None:
        if self.config.auto:
            self.bg.spawn(self._auto_sales())

    # --- stock ----------------------------------------------------------------------------------
    # Every mutation below runs without an await between read and write: atomic on the loop.

    def set_quantity(self, sku: str, warehouse: str, quantity: int, recorder: str) -> Movement | None:
        self.bg.touch("erp")
        key = (sku, warehouse)
        old = self.stock.get(key)
        quantity = max(0, quantity)
        if old is None:
            bisect.insort(self.keys, key)
        elif old == quantity:
            return None
        self.stock[key] = quantity
        self.version += 1
        mv = Movement(self.version, sku, warehouse, quantity, _now(), recorder)
        self.movements.append(mv)
        return mv

    def sell_random(self) -> Movement | None:
        """A customer buys one unit of something in some store (not the online warehouse)."""
        for _ in range(200):
            sku, wh = self.keys[self.rng.randrange(len(self.keys))]
            if wh != WAREHOUSE_ID and self.stock[(sku, wh)] > 0:
                mv = self.set_quantity(sku, wh, self.stock[(sku, wh)] - 1, "StoreSale")
                log.debug("erp.store_sale", sku=sku, warehouse=wh, left=mv.quantity if mv else None)
                return mv
        return None

    async def _auto_sales(self) -> None:
        while True:
            await asyncio.sleep(3 * self.config.auto_delay_s)
            self.sell_random()

    # --- wire shapes ------------------------------------------------------------------------------

    @staticmethod
    def _location_wire(loc: Any) -> dict[str, Any]:
        return {
            "Ref_Key": ref_key("Warehouse", loc.id),
            "DeletionMark": False,
            "Code": loc.id,
            "Description": loc.name,
            "Kind": "Warehouse" if loc.kind == "warehouse" else "Store",
            "City": loc.city,
            "Country": loc.country,
            "Region": loc.region,
            "Latitude": loc.lat,
            "Longitude": loc.lon,
            "ShipFromStore": loc.ship_from_store,
            "Pickup": loc.pickup,
            "OpensAt": loc.opens_at,
            "ClosesAt": loc.closes_at,
            "UtcOffset": loc.utc_offset,
            "DailyCapacity": loc.daily_capacity,
            "SafetyStock": loc.safety_stock,
            "PickupWindowDays": loc.pickup_window_days,
            "Currency": loc.currency,
        }

    @staticmethod
    def _product_wire(p: Any) -> dict[str, Any]:
        return {
            "Ref_Key": ref_key("Nomenclature", p.id),
            "DeletionMark": False,
            "Code": p.id,
            "Description": p.name,
            "Brand": p.brand,
            "Category": p.category,
            # under mandatory Честный ЗНАК marking (footwear, blouses and shirts, dresses, knitwear)
            "Marked": marked(p.category),
            "Characteristics": [
                {"Sku": s.sku, "Barcode": s.barcode, "Size": s.size, "Color": s.color, "ColorName": s.color_name}
                for s in p.skus
            ],
        }

    @staticmethod
    def _price_wire(pr: Any) -> dict[str, Any]:
        return {
            "Period": "2025-01-01T00:00:00",
            "Sku": pr.sku,
            "PriceType": pr.price_type,
            "Price": to_decimal(pr.amount),
            "Currency": pr.currency,
        }

    # --- documents ----------------------------------------------------------------------------------

    def post_document(self, doc_type: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Record a document; (201, doc) the first time, (200, first doc) for a repeat Number."""
        number = body.get("Number")
        if not isinstance(number, str) or not number.strip():
            raise ValueError("Не заполнено поле Number")
        existing = self.documents[doc_type].get(number)
        if existing is not None:
            log.info("erp.document_repeat", type=doc_type, number=number)
            return 200, existing
        items = self._checked_items(body.get("Items"))
        doc: dict[str, Any] = {
            "Ref_Key": ref_key(doc_type, number),
            "Number": number,
            "Date": body.get("Date") or _now(),
            "Posted": True,
            "DeletionMark": False,
        }
        if doc_type == "CustomerOrder":
            currency = body.get("Currency", "RUB")
            if currency not in ("RUB", "KZT"):
                raise ValueError(f"Неизвестная валюта {currency!r}")
            lines = _order_lines(items)
            doc.update(
                {
                    "Currency": currency,
                    "Amount": to_decimal(from_decimal(body.get("Amount", 0))),
                    "Customer": body.get("Customer") or {},
                    "Channel": body.get("Channel", ""),
                    "Warehouse": body.get("Warehouse", ""),
                    "Comment": body.get("Comment", ""),
                    "Items": lines,
                }
            )
        else:
            wh = body.get("Warehouse")
            if wh not in self.data.location_index:
                raise ValueError(f"Склад не найден: {wh!r}")
            sign = -1 if doc_type == "Sale" else 1
            recorder = f"Document_{doc_type}({number})"
            for it in items:
                key = (it["Sku"], wh)
                before = self.stock.get(key, 0)
                if sign < 0 and before < it["Quantity"]:
                    log.warning("erp.sale_below_zero", sku=it["Sku"], warehouse=wh, on_hand=before, sold=it["Quantity"])
                self.set_quantity(it["Sku"], wh, before + sign * it["Quantity"], recorder)
            doc.update(
                {
                    "Warehouse": wh,
                    "Items": [{"Sku": it["Sku"], "Quantity": it["Quantity"]} for it in items],
                    "StockVersion": self.version,
                }
            )
        self.documents[doc_type][number] = doc
        log.info("erp.document_posted", type=doc_type, number=number)
        return 201, doc

    def _checked_items(self, items: Any) -> list[dict[str, Any]]:
        """A document's ``Items``: known SKUs, positive integer quantities (1C's own messages)."""
        if not isinstance(items, list) or not items:
            raise ValueError("Не заполнена табличная часть Items")
        for it in items:
            if not isinstance(it, dict) or it.get("Sku") not in self.data.sku_index:
                raise ValueError(f"Номенклатура не найдена: {it.get('Sku') if isinstance(it, dict) else it!r}")
            q = it.get("Quantity")
            if not isinstance(q, int) or isinstance(q, bool) or q <= 0:
                raise ValueError(f"Неверное количество {q!r} для {it['Sku']}")
        return items

    def patch_order(self, ref: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """``PATCH Document_CustomerOrder(guid'<Ref_Key>')``: the given properties change, a given
        tabular part (``Items``) is replaced whole; the same PATCH twice leaves the same document."""
        doc = next((d for d in self.documents["CustomerOrder"].values() if d["Ref_Key"] == ref), None)
        if doc is None:
            return None
        if "Items" in body:
            doc["Items"] = _order_lines(self._checked_items(body["Items"]))
        if "Amount" in body:
            doc["Amount"] = to_decimal(from_decimal(body["Amount"]))
        if "Comment" in body:
            doc["Comment"] = str(body["Comment"])
        log.info("erp.document_changed", type="CustomerOrder", number=doc["Number"])
        return doc


def _order_lines(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"Sku": it["Sku"], "Quantity": it["Quantity"], "Price": to_decimal(from_decimal(it.get("Price", 0))),
             "Amount": to_decimal(from_decimal(it.get("Amount", 0)))} for it in items]


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("Тело запроса не является JSON") from None
    if not isinstance(body, dict):
        raise ValueError("Ожидался объект JSON")
    return body


class StockSet(BaseModel):
    sku: str
    location_id: str
    quantity: int = Field(ge=0)


class StockSetRequest(BaseModel):
    items: list[StockSet] = Field(min_length=1)


class SimulateSales(BaseModel):
    count: int = Field(1, ge=1, le=10_000)


def router(sim: ErpSim) -> APIRouter:
    r = APIRouter(tags=["erp"])

    def auth(request: Request) -> None:
        header = request.headers.get("authorization", "")
        ok = False
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                ok = secrets.compare_digest(user, sim.user) and secrets.compare_digest(password, sim.password)
            except (ValueError, UnicodeDecodeError):
                ok = False
        if not ok:
            raise HTTPException(401, "Unauthorized", headers={"WWW-Authenticate": 'Basic realm="1C"'})

    def page(entity: str, rows: Sequence[Any], top: int | None, skip: int, inlinecount: str | None, wire: Any) -> dict[str, Any]:
        chunk = rows[skip : skip + top if top is not None else None]
        out: dict[str, Any] = {"odata.metadata": f"{ODATA}/$metadata#{entity}"}
        if inlinecount == "allpages":
            out["odata.count"] = str(len(rows))  # 1C (OData v3) sends the count as a string
        out["value"] = [wire(x) for x in chunk]
        return out

    Top = Query(None, alias="$top", ge=0)
    Skip = Query(0, alias="$skip", ge=0)
    Count = Query(None, alias="$inlinecount")
    Fmt = Query("json", alias="$format")

    def check_format(fmt: str) -> None:
        if fmt.lower() not in ("json", "application/json"):
            raise HTTPException(406, "only $format=json is served by the sandbox")

    @r.get(f"{ODATA}/Catalog_Warehouses", dependencies=[Depends(auth)])
    async def warehouses(top: int | None = Top, skip: int = Skip, count: str | None = Count, fmt: str = Fmt) -> dict[str, Any]:
        await sim.faults.check("warehouses")
        check_format(fmt)
        return page("Catalog_Warehouses", sim._wire_locations, top, skip, count, lambda x: x)

    @r.get(f"{ODATA}/Catalog_Nomenclature", dependencies=[Depends(auth)])
    async def nomenclature(top: int | None = Top, skip: int = Skip, count: str | None = Count, fmt: str = Fmt) -> dict[str, Any]:
        await sim.faults.check("products")
        check_format(fmt)
        return page("Catalog_Nomenclature", sim.data.products, top, skip, count, sim._product_wire)

    @r.get(f"{ODATA}/InformationRegister_Prices", dependencies=[Depends(auth)])
    async def prices(top: int | None = Top, skip: int = Skip, count: str | None = Count, fmt: str = Fmt) -> dict[str, Any]:
        await sim.faults.check("prices")
        check_format(fmt)
        return page("InformationRegister_Prices", sim.data.prices, top, skip, count, sim._price_wire)

    @r.get(f"{ODATA}/AccumulationRegister_StockBalance", dependencies=[Depends(auth)])
    async def stock_balance(top: int | None = Top, skip: int = Skip, count: str | None = Count, fmt: str = Fmt) -> dict[str, Any]:
        await sim.faults.check("stock")
        check_format(fmt)
        out = page(
            "AccumulationRegister_StockBalance",
            sim.keys,
            top,
            skip,
            count,
            lambda k: {"Sku": k[0], "Warehouse": k[1], "Quantity": sim.stock[k]},
        )
        out["Version"] = sim.version
        return out

    @r.get(f"{ODATA}/AccumulationRegister_StockMovements", dependencies=[Depends(auth)], response_model=None)
    async def stock_movements(
        top: int | None = Top,
        fmt: str = Fmt,
        filter_: str | None = Query(None, alias="$filter"),
    ) -> dict[str, Any] | JSONResponse:
        await sim.faults.check("stock_changes")
        check_format(fmt)
        since = 0
        if filter_:
            m = _FILTER_VERSION.match(filter_)
            if not m:
                return odata_error(400, f"Неподдерживаемый $filter: {filter_}")
            since = int(m.group(1))
        # movements[i].version == i + 1
        chunk = sim.movements[since : since + top if top is not None else None]
        return {
            "odata.metadata": f"{ODATA}/$metadata#AccumulationRegister_StockMovements",
            "value": [m.wire() for m in chunk],
            # up to here the reader is current; lower than asked means the ERP's history restarted
            "Version": chunk[-1].version if chunk else sim.version,
        }

    def doc_endpoint(doc_type: str) -> None:
        @r.post(f"{ODATA}/Document_{doc_type}", dependencies=[Depends(auth)], name=f"post_{doc_type}")
        async def post_doc(request: Request) -> JSONResponse:
            await sim.faults.check(f"post_{doc_type.lower()}")
            try:
                status, doc = sim.post_document(doc_type, await _json_object(request))
            except ValueError as exc:
                return odata_error(400, str(exc))
            return JSONResponse(doc, status_code=status)

        @r.get(f"{ODATA}/Document_{doc_type}", dependencies=[Depends(auth)], name=f"list_{doc_type}",
               response_model=None)
        async def list_docs(top: int | None = Top, skip: int = Skip, count: str | None = Count, fmt: str = Fmt,
                            filter_: str | None = Query(None, alias="$filter")) -> dict[str, Any] | JSONResponse:
            await sim.faults.check(f"list_{doc_type.lower()}")
            check_format(fmt)
            docs = list(sim.documents[doc_type].values())
            if filter_:
                m = _FILTER_NUMBER.match(filter_)
                if not m:
                    return odata_error(400, f"Неподдерживаемый $filter: {filter_}")
                docs = [d for d in docs if d["Number"] == m.group(1)]
            return page(f"Document_{doc_type}", docs, top, skip, count, lambda d: d)

    for t in DOC_TYPES:
        doc_endpoint(t)

    @r.patch(f"{ODATA}/Document_CustomerOrder(guid'{{ref}}')", dependencies=[Depends(auth)], name="patch_CustomerOrder")
    async def patch_order(ref: str, request: Request) -> JSONResponse:
        await sim.faults.check("patch_customerorder")
        try:
            doc = sim.patch_order(ref, await _json_object(request))
        except ValueError as exc:
            return odata_error(400, str(exc))
        if doc is None:
            return odata_error(404, f"Объект не найден: Document_CustomerOrder(guid'{ref}')")
        return JSONResponse(doc)

    # --- drive --------------------------------------------------------------------------------------

    d = APIRouter(prefix="/sandbox/erp", tags=["sandbox:erp"])

    @d.post("/simulate-sales", summary="Stores sell random items (each sale is a stock movement)")
    async def simulate_sales(req: SimulateSales) -> dict[str, Any]:
        moved = [mv for mv in (sim.sell_random() for _ in range(req.count)) if mv is not None]
        return {"version": sim.version, "sales": [m.wire() for m in moved]}

    @d.post("/stock", summary="Set absolute quantities (recorded as movements)")
    async def set_stock(req: StockSetRequest) -> dict[str, Any]:
        for it in req.items:
            if it.sku not in sim.data.sku_index:
                raise HTTPException(404, f"unknown sku {it.sku}")
            if it.location_id not in sim.data.location_index:
                raise HTTPException(404, f"unknown location {it.location_id}")
        moved = [sim.set_quantity(it.sku, it.location_id, it.quantity, "Manual") for it in req.items]
        return {"version": sim.version, "movements": [m.wire() for m in moved if m is not None]}

    @d.get("/stock", summary="Stock of a SKU (every location) or of a location (every SKU)")
    async def get_stock(sku: str | None = None, location_id: str | None = None) -> dict[str, Any]:
        if sku is None and location_id is None:
            return {
                "version": sim.version,
                "rows": len(sim.keys),
                "units": sum(sim.stock.values()),
                "movements": len(sim.movements),
            }
        if sku is not None and sku not in sim.data.sku_index:
            raise HTTPException(404, f"unknown sku {sku}")
        if location_id is not None and location_id not in sim.data.location_index:
            raise HTTPException(404, f"unknown location {location_id}")
        items = [
            {"sku": s, "location_id": w, "quantity": q}
            for (s, w), q in sim.stock.items()
            if (sku is None or s == sku) and (location_id is None or w == location_id)
        ]
        items.sort(key=lambda x: (x["sku"], x["location_id"]))
        return {"version": sim.version, "items": items, "total": sum(x["quantity"] for x in items)}

    @d.get("/documents", summary="Documents Orkestr posted")
    async def documents(type: str | None = Query(None, description="CustomerOrder | Sale | Return")) -> dict[str, Any]:
        if type is not None and type not in DOC_TYPES:
            raise HTTPException(422, f"type must be one of {DOC_TYPES}")
        types = [type] if type else list(DOC_TYPES)
        return {"documents": [{"Type": t, **doc} for t in types for doc in sim.documents[t].values()]}

    r.include_router(d)
    return r
