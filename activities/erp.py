"""ERP steps: export orders and stock movements; import catalog, prices and stock (paged, heartbeating)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.common import logger, refusals_as
from adapters.catalog import CatalogRepo
from adapters.erp import ErpClient
from adapters.ledger import Ledger
from adapters.wire.erp import ErpOrderDoc, ErpOrderItem
from contracts.steps import ErpMovement, ErpOrderExport, ErrorType, ImportResult
from contracts.stock import LocationInfo, StockLevel

PAGE = 1000


@dataclass
class ErpActivities:
    erp: ErpClient
    catalog: CatalogRepo
    ledger: Ledger
    engine: AsyncEngine
    currency: str = "RUB"  # the price list this Orkestr sells in (the ERP keeps one per currency)

    @activity.defn
    async def export_order(self, req: ErpOrderExport) -> None:
        with refusals_as(ErrorType.ERP_REFUSED):
            await self.erp.export_order(_order_doc(req))
        logger().info("erp.order_exported", number=req.number)

    @activity.defn
    async def update_erp_order(self, req: ErpOrderExport) -> None:
        """The exported order changed (lines, amount): the ERP's customer order follows."""
        with refusals_as(ErrorType.ERP_REFUSED):
            await self.erp.update_order(_order_doc(req))
        logger().info("erp.order_updated", number=req.number, amount=req.amount)

    @activity.defn
    async def post_sale(self, req: ErpMovement) -> None:
        with refusals_as(ErrorType.ERP_REFUSED):
            await self.erp.post_sale(number=req.number, location_id=req.location_id, items=req.items)

    @activity.defn
    async def post_return(self, req: ErpMovement) -> None:
        with refusals_as(ErrorType.ERP_REFUSED):
            await self.erp.post_return(number=req.number, location_id=req.location_id, items=req.items)

    # --- imports: paged; the page reached is heartbeated so a retry resumes, and each page is an upsert
    @activity.defn
    async def import_locations(self) -> ImportResult:
        locs = await self.erp.list_locations()
        await self.catalog.upsert_locations([
            LocationInfo(id=l.id, name=l.name, kind=l.kind, city=l.city, region=l.region, lat=l.lat, lon=l.lon,
                         ship_from_store=l.ship_from_store, pickup=l.pickup, opens_at=l.opens_at,
                         closes_at=l.closes_at, daily_capacity=l.daily_capacity, safety_stock=l.safety_stock,
                         pickup_window_days=l.pickup_window_days)
            for l in locs
        ])
        return ImportResult(rows=len(locs))

    @activity.defn
    async def import_products(self) -> ImportResult:
        skip = _resume_from()
        rows = 0
        while True:
            page = await self.erp.products_page(skip=skip, top=PAGE)
            products = [{"id": p.id, "brand": p.brand, "name": p.name, "category": p.category, "marked": p.marked}
                        for p in page.items]
            skus = [
                {"sku": s.sku, "product_id": p.id, "size": s.size, "color": s.color, "barcode": s.barcode}
                for p in page.items for s in p.skus
            ]
            await self.catalog.upsert_products(products, skus)
            rows += len(page.items)
            skip += len(page.items)
            activity.heartbeat(skip)
            if len(page.items) < PAGE:
                return ImportResult(rows=rows)

    @activity.defn
    async def import_prices(self) -> ImportResult:
        skip = _resume_from()
        rows = 0
        while True:
            page = await self.erp.prices_page(skip=skip, top=PAGE * 5)
            await self.catalog.set_prices([(p.sku, p.price_type.lower(), p.amount, p.currency)
                                           for p in page.items if p.currency == self.currency])
            rows += len(page.items)
            skip += len(page.items)
            activity.heartbeat(skip)
            if len(page.items) < PAGE * 5:
                return ImportResult(rows=rows)

    @activity.defn
    async def import_stock_full(self) -> ImportResult:
        """Every page sets on-hand (never reserved); the version seen first becomes the delta cursor.

        A retry resumes at the page after the last one applied (``(skip, version)`` heartbeated), so
        pages already applied are not fetched again and the earliest version seen is kept."""
        skip = _resume_from()
        details = activity.info().heartbeat_details
        version: int | None = int(details[1]) if len(details) > 1 and details[1] is not None else None
        rows = 0
        while True:
            page = await self.erp.stock_page(skip=skip, top=PAGE * 5)
            version = page.version if version is None else min(version, page.version)
            await self.ledger.set_on_hand([StockLevel(r.sku, r.location_id, r.quantity) for r in page.items])
            rows += len(page.items)
            skip += len(page.items)
            activity.heartbeat(skip, version)
            if len(page.items) < PAGE * 5:
                break
        await self._set_cursor("erp_stock", version or 0)
        logger().info("erp.stock_imported", rows=rows, version=version)
        return ImportResult(rows=rows, version=version or 0)

    @activity.defn
    async def import_stock_delta(self) -> ImportResult:
        since = await self._cursor("erp_stock")
        rows = 0
        while True:
            delta = await self.erp.stock_changes(since_version=since, top=PAGE)
            await self.ledger.set_on_hand([StockLevel(r.sku, r.location_id, r.quantity) for r in delta.items])
            rows += len(delta.items)
            if delta.version <= since or not delta.items:
                break
            since = delta.version
            await self._set_cursor("erp_stock", since)
            activity.heartbeat(since)
            if len(delta.items) < PAGE:
                break
        return ImportResult(rows=rows, version=since)

    async def _cursor(self, name: str) -> int:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT version FROM sync_state WHERE name = :n"), {"n": name})).first()
        return row.version if row else 0

    async def _set_cursor(self, name: str, version: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text("""INSERT INTO sync_state (name, version, updated_at) VALUES (:n, :v, now())
                        ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, updated_at = now()"""),
                {"n": name, "v": version},
            )


def _resume_from() -> int:
    details = activity.info().heartbeat_details
    return int(details[0]) if details else 0


def _order_doc(req: ErpOrderExport) -> ErpOrderDoc:
    return ErpOrderDoc(
        number=req.number, date=req.created_at, currency=req.currency, amount=req.amount,
        customer_name=req.customer_name, customer_phone=req.customer_phone, channel=req.channel,
        items=tuple(ErpOrderItem(sku=l.sku, quantity=l.qty, price=l.unit_price, amount=l.amount) for l in req.lines),
    )
