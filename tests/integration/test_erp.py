"""The simulated ERP over real HTTP, through the real adapter (``adapters.erp.ErpClient``)."""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable

import httpx
import pytest

from adapters.erp import ErpClient
from adapters.errors import ExternalRefusal, ExternalUnavailable
from adapters.wire.erp import ErpOrderDoc, ErpOrderItem, StockRow
from sandbox.demo_data import WAREHOUSE_ID, generate

USER, PASSWORD = "orkestr", "orkestr"
DEMO = generate(42, 2000, small=True)  # what the sandbox serves with small_catalog=True


@asynccontextmanager
async def erp_sandbox(make_sandbox: Callable[..., Any], **config: Any) -> AsyncIterator[tuple[Any, ErpClient, httpx.AsyncClient]]:
    async with make_sandbox(**config) as sb, httpx.AsyncClient(base_url=sb.url, timeout=10) as drive:
        async with httpx.AsyncClient(base_url=f"{sb.url}/erp", timeout=10) as http:
            yield sb, ErpClient(http, user=USER, password=PASSWORD), drive


async def all_stock(erp: ErpClient, top: int) -> tuple[list[StockRow], int]:
    rows: list[StockRow] = []
    first = await erp.stock_page(skip=0, top=top)
    rows.extend(first.items)
    skip = top
    for _ in range(10_000):
        if skip >= first.total:
            break
        page = await erp.stock_page(skip=skip, top=top)
        rows.extend(page.items)
        skip += top
    return rows, first.version


async def test_locations(make_sandbox: Callable[..., Any]) -> None:
    async with erp_sandbox(make_sandbox) as (_, erp, _d):
        locations = await erp.list_locations()
    by_id = {loc.id: loc for loc in locations}
    assert set(by_id) == {loc.id for loc in DEMO.locations}
    wh = by_id[WAREHOUSE_ID]
    assert wh.kind == "warehouse" and wh.ship_from_store and not wh.pickup
    stores = [loc for loc in locations if loc.kind == "store"]
    assert len(stores) == 7 and all(s.pickup for s in stores)
    assert any(not s.ship_from_store for s in stores)
    msk = [s for s in stores if s.region == "RU-MOW"]
    assert msk and all(55 < s.lat < 56.5 and 37 < s.lon < 38.3 and s.currency == "RUB" for s in msk)
    assert {s.currency for s in stores if s.region.startswith("KZ")} == {"KZT"}
    assert all(s.pickup_window_days == 3 and s.daily_capacity > 0 and s.opens_at < s.closes_at for s in stores)


async def test_products_paging_covers_every_product_once(make_sandbox: Callable[..., Any]) -> None:
    async with erp_sandbox(make_sandbox) as (_, erp, _d):
        seen = []
        total = None
        for skip in range(0, 100, 7):
            page = await erp.products_page(skip=skip, top=7)
            total = page.total
            seen.extend(page.items)
            if skip + 7 >= page.total:
                break
    assert total == len(DEMO.products) == 30
    assert [p.id for p in seen] == [p.id for p in DEMO.products]
    skus = [s.sku for p in seen for s in p.skus]
    assert len(skus) == len(set(skus)) == len(DEMO.skus)
    first = seen[0]
    assert first.brand == DEMO.products[0].brand and first.category == DEMO.products[0].category
    assert first.skus[0].barcode == DEMO.products[0].skus[0].barcode


async def test_prices_paging_in_kopecks(make_sandbox: Callable[..., Any]) -> None:
    async with erp_sandbox(make_sandbox) as (sb, erp, _d):
        prices = []
        for skip in range(0, 10_000, 50):
            page = await erp.prices_page(skip=skip, top=50)
            prices.extend(page.items)
            if skip + 50 >= page.total:
                break
        async with httpx.AsyncClient(base_url=sb.url, auth=(USER, PASSWORD)) as raw:
            wire = (await raw.get("/erp/odata/standard.odata/InformationRegister_Prices", params={"$format": "json", "$top": 1})).json()
    assert len(prices) == len(DEMO.prices)
    assert len({(p.sku, p.price_type, p.currency) for p in prices}) == len(prices)
    expected = {(p.sku, p.price_type, p.currency): p.amount for p in DEMO.prices}
    assert {(p.sku, p.price_type, p.currency): p.amount for p in prices} == expected
    assert all(isinstance(p.amount, int) for p in prices)
    # on the wire 1C speaks roubles: 2 990,00 ₽ is 2990, which the adapter turned into 299000
    first = wire["value"][0]
    assert prices[0].amount == round(first["Price"] * 100) and prices[0].amount % 100 == 0
    assert {p.sku for p in prices if p.price_type == "Retail" and p.currency == "RUB"} == {s.sku for s in DEMO.skus}


async def test_stock_snapshot_paging_and_deltas(make_sandbox: Callable[..., Any]) -> None:
    async with erp_sandbox(make_sandbox) as (_, erp, drive):
        rows, version = await all_stock(erp, top=100)
        assert version == 0
        keys = [(r.sku, r.location_id) for r in rows]
        assert len(keys) == len(set(keys)) == len(DEMO.stock)
        snapshot = {(r.sku, r.location_id): r.quantity for r in rows}
        assert snapshot == DEMO.stock

        sold = (await drive.post("/sandbox/erp/simulate-sales", json={"count": 5})).json()
        assert len(sold["sales"]) == 5 and sold["version"] == 5
        sku = DEMO.skus[0].sku
        r = await drive.post("/sandbox/erp/stock", json={"items": [{"sku": sku, "location_id": "SPB-001", "quantity": 17}]})
        assert r.status_code == 200 and r.json()["version"] == 6

        delta = await erp.stock_changes(since_version=version, top=1000)
        assert delta.version == 6 and len(delta.items) == 6
        assert delta.items[-1] == StockRow(sku, "SPB-001", 17)
        for sale in sold["sales"]:  # a store sale takes exactly one unit from a store
            assert sale["Warehouse"] != WAREHOUSE_ID
            assert sale["Quantity"] == DEMO.stock[(sale["Sku"], sale["Warehouse"])] - sum(
                1 for s in sold["sales"] if (s["Sku"], s["Warehouse"]) == (sale["Sku"], sale["Warehouse"]) and s["Version"] <= sale["Version"]
            )
        # applying the delta (twice: harmless) to the snapshot gives the ERP's current stock
        for _ in range(2):
            for row in delta.items:
                snapshot[(row.sku, row.location_id)] = row.quantity
        now = (await drive.get("/sandbox/erp/stock", params={"sku": sku})).json()
        assert {(i["sku"], i["location_id"]): i["quantity"] for i in now["items"]} == {k: v for k, v in snapshot.items() if k[0] == sku}
        rows2, version2 = await all_stock(erp, top=100)
        assert version2 == 6 and {(r.sku, r.location_id): r.quantity for r in rows2} == snapshot

        # a bounded delta resumes where it stopped; nothing new: empty, same version
        part = await erp.stock_changes(since_version=0, top=4)
        assert len(part.items) == 4 and part.version == 4
        rest = await erp.stock_changes(since_version=part.version, top=4)
        assert len(rest.items) == 2 and rest.version == 6
        none = await erp.stock_changes(since_version=6, top=4)
        assert none.items == () and none.version == 6


async def test_documents_are_idempotent_and_move_stock(make_sandbox: Callable[..., Any]) -> None:
    sku = next(k[0] for k, q in DEMO.stock.items() if k[1] == WAREHOUSE_ID and q >= 3)
    on_hand = DEMO.stock[(sku, WAREHOUSE_ID)]
    order = ErpOrderDoc(
        number="WEB-000123",
        date=datetime(2025, 3, 1, 12, 30, tzinfo=timezone.utc),
        currency="RUB",
        amount=598_000,
        customer_name="Анна Петрова",
        customer_phone="+79991234567",
        channel="web",
        items=(ErpOrderItem(sku, 2, 299_000, 598_000),),
    )
    async with erp_sandbox(make_sandbox) as (_, erp, drive):
        await erp.export_order(order)
        await erp.export_order(order)
        orders = (await drive.get("/sandbox/erp/documents", params={"type": "CustomerOrder"})).json()["documents"]
        assert len(orders) == 1
        assert orders[0]["Number"] == "WEB-000123" and orders[0]["Amount"] == 5980 and orders[0]["Items"][0]["Price"] == 2990

        await erp.post_sale(number="WEB-000123-S1", location_id=WAREHOUSE_ID, items=[(sku, 2)])
        await erp.post_sale(number="WEB-000123-S1", location_id=WAREHOUSE_ID, items=[(sku, 2)])  # retried: once
        stock = (await drive.get("/sandbox/erp/stock", params={"sku": sku, "location_id": WAREHOUSE_ID})).json()
        assert stock["items"][0]["quantity"] == on_hand - 2
        delta = await erp.stock_changes(since_version=0, top=10)
        assert delta.items == (StockRow(sku, WAREHOUSE_ID, on_hand - 2),)

        await erp.post_return(number="RET-77", location_id=WAREHOUSE_ID, items=[(sku, 1)])
        await erp.post_return(number="RET-77", location_id=WAREHOUSE_ID, items=[(sku, 1)])
        stock = (await drive.get("/sandbox/erp/stock", params={"sku": sku, "location_id": WAREHOUSE_ID})).json()
        assert stock["items"][0]["quantity"] == on_hand - 1
        docs = (await drive.get("/sandbox/erp/documents")).json()["documents"]
        assert sorted(d["Type"] for d in docs) == ["CustomerOrder", "Return", "Sale"]

        with pytest.raises(ExternalRefusal) as refused:
            await erp.post_sale(number="BAD-1", location_id=WAREHOUSE_ID, items=[("NO-SUCH-SKU", 1)])
        assert refused.value.code == "400" and "NO-SUCH-SKU" in refused.value.message
        with pytest.raises(ExternalRefusal):
            await erp.post_sale(number="BAD-2", location_id="NOWHERE", items=[(sku, 1)])
        assert len((await drive.get("/sandbox/erp/documents", params={"type": "Sale"})).json()["documents"]) == 1


async def test_auth_and_faults(make_sandbox: Callable[..., Any]) -> None:
    async with erp_sandbox(make_sandbox) as (sb, erp, drive):
        async with httpx.AsyncClient(base_url=f"{sb.url}/erp", timeout=10) as http:
            with pytest.raises(ExternalRefusal) as refused:
                await ErpClient(http, user=USER, password="wrong").list_locations()
        assert refused.value.code == "401"
        await drive.post("/sandbox/erp/faults", json={"fail_next": 1, "status": 503, "operations": ["stock_changes"]})
        with pytest.raises(ExternalUnavailable):
            await erp.stock_changes(since_version=0, top=10)
        assert (await erp.stock_changes(since_version=0, top=10)).version == 0


async def test_auto_mode_stores_sell_by_themselves(make_sandbox: Callable[..., Any]) -> None:
    async with erp_sandbox(make_sandbox, auto=True, auto_delay_s=0.05) as (_, erp, _d):
        deadline = time.monotonic() + 10
        delta = await erp.stock_changes(since_version=0, top=100)
        while len(delta.items) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            delta = await erp.stock_changes(since_version=0, top=100)
    assert len(delta.items) >= 2
    assert all(row.location_id != WAREHOUSE_ID for row in delta.items)


async def test_adapter_results_cross_into_workflows(make_sandbox: Callable[..., Any]) -> None:
    """What the adapter returns survives Temporal's default data converter unchanged."""
    from temporalio.converter import DataConverter

    async with erp_sandbox(make_sandbox) as (_, erp, _d):
        results = [
            (await erp.list_locations())[1],
            await erp.products_page(skip=0, top=2),
            await erp.prices_page(skip=0, top=2),
            await erp.stock_page(skip=0, top=2),
            await erp.stock_changes(since_version=0, top=2),
        ]
    dc = DataConverter.default
    for value in results:
        (back,) = await dc.decode(await dc.encode([value]), [type(value)])
        assert back == value


async def test_an_exported_order_changes_in_place(make_sandbox: Callable[..., Any]) -> None:
    sku, other = [k[0] for k, q in DEMO.stock.items() if k[1] == WAREHOUSE_ID and q >= 3][:2]
    order = ErpOrderDoc(number="WEB-000777", date=datetime(2025, 3, 1, 12, 30, tzinfo=timezone.utc), currency="RUB",
                        amount=598_000, customer_name="Анна Петрова", customer_phone="+79991234567", channel="web",
                        items=(ErpOrderItem(sku, 2, 299_000, 598_000),))
    edited = ErpOrderDoc(**{**order.__dict__, "amount": 399_000,
                            "items": (ErpOrderItem(sku, 1, 299_000, 299_000), ErpOrderItem(other, 1, 100_000, 100_000))})
    async with erp_sandbox(make_sandbox) as (_, erp, drive):
        await erp.update_order(order)  # not exported yet: exported now
        await erp.update_order(edited)
        await erp.update_order(edited)  # a retried activity changes nothing more
        orders = (await drive.get("/sandbox/erp/documents", params={"type": "CustomerOrder"})).json()["documents"]
        assert len(orders) == 1 and orders[0]["Amount"] == 3990
        assert [(i["Sku"], i["Quantity"]) for i in orders[0]["Items"]] == [(sku, 1), (other, 1)]
        with pytest.raises(ExternalRefusal) as refused:
            await erp.update_order(ErpOrderDoc(**{**edited.__dict__, "items": (ErpOrderItem("NO-SUCH", 1, 1, 1),)}))
        assert refused.value.code == "400"
        orders = (await drive.get("/sandbox/erp/documents", params={"type": "CustomerOrder"})).json()["documents"]
        assert [(i["Sku"], i["Quantity"]) for i in orders[0]["Items"]] == [(sku, 1), (other, 1)]
