"""The catalog Orkestr serves as master system: locations, products, SKUs and prices (from the ERP)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.stock import LocationInfo


@dataclass(frozen=True)
class SkuInfo:
    sku: str
    name: str
    price: int
    currency: str
    #: each unit needs its Честный ЗНАК code at assembly, in receipts and at return
    marked: bool = False
    barcode: str = ""


@dataclass
class CatalogRepo:
    engine: AsyncEngine

    async def skus(self, skus: Sequence[str]) -> dict[str, SkuInfo]:
        """The SKUs that exist, with the price that applies now (sale price when the ERP has one)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    """SELECT s.sku, p.brand || ' ' || p.name || ' (' || s.size || ', ' || s.color || ')' AS name,
                              COALESCE(s.sale_price, s.price) AS price, s.currency, p.marked, s.barcode
                       FROM sku s JOIN product p ON p.id = s.product_id WHERE s.sku = ANY(:skus)"""
                ),
                {"skus": list(skus)},
            )
            return {r.sku: SkuInfo(r.sku, r.name, r.price, r.currency, r.marked, r.barcode) for r in rows}

    async def products(self, *, q: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        params: dict[str, Any] = {"limit": limit, "offset": offset, "q": f"%{q}%" if q else None}
        cond = "(CAST(:q AS text) IS NULL OR p.name ILIKE :q OR p.brand ILIKE :q OR p.id ILIKE :q)"
        async with self.engine.connect() as conn:
            total = (await conn.execute(text(f"SELECT count(*) FROM product p WHERE {cond}"), params)).scalar_one()
            rows = await conn.execute(
                text(
                    f"""
                    SELECT p.id, p.brand, p.name, p.category,
                           COALESCE(json_agg(json_build_object(
                               'sku', s.sku, 'size', s.size, 'color', s.color, 'barcode', s.barcode,
                               'price', COALESCE(s.sale_price, s.price), 'retail_price', s.price,
                               'currency', s.currency, 'available', COALESCE(a.available, 0)
                           ) ORDER BY s.sku) FILTER (WHERE s.sku IS NOT NULL), '[]') AS skus
                    FROM (SELECT * FROM product p WHERE {cond} ORDER BY p.id LIMIT :limit OFFSET :offset) p
                    LEFT JOIN sku s ON s.product_id = p.id
                    LEFT JOIN LATERAL (
                        SELECT SUM(GREATEST(st.on_hand - st.reserved - l.safety_stock, 0)) AS available
                        FROM stock st JOIN location l ON l.id = st.location_id WHERE st.sku = s.sku
                    ) a ON TRUE
                    GROUP BY p.id, p.brand, p.name, p.category ORDER BY p.id
                    """
                ),
                params,
            )
            return [dict(r._mapping) for r in rows], total

    async def upsert_locations(self, locations: Sequence[LocationInfo]) -> int:
        if not locations:
            return 0
        cols = list(LocationInfo.__dataclass_fields__)
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    f"""INSERT INTO location ({", ".join(cols)}, updated_at)
                        VALUES ({", ".join(":" + c for c in cols)}, now())
                        ON CONFLICT (id) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != "id")},
                        updated_at = now()"""
                ),
                [{c: getattr(loc, c) for c in cols} for loc in locations],
            )
        return len(locations)

    async def upsert_products(self, products: Sequence[dict[str, Any]], skus: Sequence[dict[str, Any]]) -> int:
        """Products (id, brand, name, category, marked?) and their SKUs (sku, product_id, size, color, barcode)."""
        async with self.engine.begin() as conn:
            if products:
                await conn.execute(
                    text(
                        """INSERT INTO product (id, brand, name, category, marked)
                           VALUES (:id, :brand, :name, :category, :marked)
                           ON CONFLICT (id) DO UPDATE SET brand = EXCLUDED.brand, name = EXCLUDED.name,
                           category = EXCLUDED.category, marked = EXCLUDED.marked"""
                    ),
                    [{"marked": False, **p} for p in products],
                )
            if skus:
                await conn.execute(
                    text(
                        """INSERT INTO sku (sku, product_id, size, color, barcode, price, currency)
                           VALUES (:sku, :product_id, :size, :color, :barcode, 0, 'RUB')
                           ON CONFLICT (sku) DO UPDATE SET product_id = EXCLUDED.product_id, size = EXCLUDED.size,
                           color = EXCLUDED.color, barcode = EXCLUDED.barcode"""
                    ),
                    list(skus),
                )
        return len(products)

    async def set_prices(self, prices: Sequence[tuple[str, str, int, str]]) -> int:
        """(sku, price_type, amount, currency) with price_type ``retail`` or ``sale``."""
        retail = [{"sku": s, "amount": a, "cur": c} for s, t, a, c in prices if t == "retail"]
        sale = [{"sku": s, "amount": a} for s, t, a, _ in prices if t == "sale"]
        async with self.engine.begin() as conn:
            if retail:
                await conn.execute(
                    text("UPDATE sku SET price = :amount, currency = :cur WHERE sku = :sku"), retail
                )
            if sale:
                await conn.execute(text("UPDATE sku SET sale_price = :amount WHERE sku = :sku"), sale)
        return len(prices)
