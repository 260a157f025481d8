"""The ERP's "marked" flag (Честный ЗНАК) reaches Orkestr's catalog: ERP OData over HTTP →
ErpClient → CatalogRepo in PostgreSQL (the same steps as the import_products activity)."""

from __future__ import annotations

from typing import Any

from adapters.catalog import CatalogRepo
from sandbox.demo_data import MARKED_CATEGORIES, shared
from test_erp import erp_sandbox


async def test_marked_flag_from_erp_to_catalog(make_sandbox: Any, engine: Any) -> None:
    async with erp_sandbox(make_sandbox) as (_sb, erp, _drive):
        page = await erp.products_page(skip=0, top=100)
    data = shared(42, 2000, True)
    expected = {p.id: p.category in MARKED_CATEGORIES for p in data.products}
    assert {p.id: p.marked for p in page.items} == expected
    assert any(expected.values()) and not all(expected.values())  # both kinds in the test catalogue
    repo = CatalogRepo(engine)
    await repo.upsert_products(
        [{"id": f"MK-{p.id}", "brand": p.brand, "name": p.name, "category": p.category, "marked": p.marked} for p in page.items],
        [{"sku": f"MK-{s.sku}", "product_id": f"MK-{p.id}", "size": s.size, "color": s.color, "barcode": s.barcode}
         for p in page.items for s in p.skus],
    )
    marked_product = next(p for p in page.items if p.marked)
    plain_product = next(p for p in page.items if not p.marked)
    infos = await repo.skus([f"MK-{marked_product.skus[0].sku}", f"MK-{plain_product.skus[0].sku}"])
    assert infos[f"MK-{marked_product.skus[0].sku}"].marked is True
    assert infos[f"MK-{marked_product.skus[0].sku}"].barcode == marked_product.skus[0].barcode
    assert infos[f"MK-{plain_product.skus[0].sku}"].marked is False
    # an old caller without the flag still upserts (unmarked)
    await repo.upsert_products([{"id": "MK-OLD", "brand": "B", "name": "N", "category": "C"}], [])
