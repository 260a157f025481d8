"""The Wildberries marketplace API simulator (FBS) and WildberriesClient over real HTTP on loopback."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from adapters.errors import ExternalRateLimited, ExternalRefusal, ExternalUnavailable
from adapters.wildberries import WildberriesClient
from conftest import wait_for
from contracts.marketplace import StockLevel
from domain.marking import generate_marking_code, gtin_from_barcode
from sandbox.demo_data import marked, shared

DATA = shared(42, 2000, True)
PLAIN = next(s for p in DATA.products if not marked(p.category) for s in p.skus)
MARKED = next(s for p in DATA.products if marked(p.category) for s in p.skus)
WH = 800001


@asynccontextmanager
async def wb_env(make_sandbox: Any, **config: Any) -> AsyncIterator[tuple[Any, WildberriesClient, httpx.AsyncClient]]:
    async with make_sandbox(**config) as sb, httpx.AsyncClient(base_url=f"{sb.url}/wildberries/", timeout=5) as http, \
            httpx.AsyncClient(base_url=sb.url, timeout=5) as raw:
        yield sb, WildberriesClient(http, token="wb-api-token"), raw


async def new_order(raw: httpx.AsyncClient, article: str) -> int:
    resp = await raw.post("/sandbox/wildberries/orders", json={"article": article})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["id"])


async def test_new_orders_supply_marking_and_delivery(make_sandbox: Any) -> None:
    async with wb_env(make_sandbox) as (_sb, wb, raw):
        plain, marked_id = await new_order(raw, PLAIN.sku), await new_order(raw, MARKED.sku)
        orders = {int(o.order_id): o for o in await wb.new_orders()}
        assert set(orders) == {plain, marked_id}
        assert orders[marked_id].lines[0].marking_required and not orders[plain].lines[0].marking_required
        assert orders[plain].lines[0].sku == PLAIN.sku and orders[plain].warehouse_id == WH
        supply = await wb.create_supply("Orkestr 2026-11-29")
        assert supply.startswith("WB-GI-")
        await wb.add_to_supply(supply, [plain, marked_id])
        assert await wb.statuses([plain, marked_id]) == {plain: ("confirm", "waiting"), marked_id: ("confirm", "waiting")}
        assert await wb.new_orders() == []
        stickers = await wb.stickers([plain], kind="svg")
        assert str(plain).encode() in stickers[plain] and stickers[plain].startswith(b"<svg")
        # the marked unit's code is required before the supply goes to delivery
        with pytest.raises(ExternalRefusal) as err:
            await wb.deliver_supply(supply)
        assert err.value.code == "FailedToDeliverSupply"
        with pytest.raises(ExternalRefusal) as err:  # a code of another product
            await wb.set_marking_code(marked_id, generate_marking_code(gtin_from_barcode(PLAIN.barcode), random.Random(1)).text())
        assert err.value.code == "IncorrectParameter" and "GTIN" in err.value.message
        code = generate_marking_code(gtin_from_barcode(MARKED.barcode), random.Random(2)).text()
        await wb.set_marking_code(marked_id, code)
        assert await wb.marking_codes([marked_id]) == {marked_id: [code]}
        await wb.deliver_supply(supply)
        assert (await wb.statuses([plain]))[plain] == ("complete", "waiting")
        with pytest.raises(ExternalRefusal) as err:
            await wb.deliver_supply(supply)
        assert err.value.code == "FailedToDeliverSupply"


async def test_cancel_by_seller_and_by_customer(make_sandbox: Any) -> None:
    async with wb_env(make_sandbox) as (_sb, wb, raw):
        mine, theirs = await new_order(raw, PLAIN.sku), await new_order(raw, PLAIN.sku)
        await wb.cancel(mine)
        await wb.cancel(mine)  # a repeat is fine
        assert (await raw.post(f"/sandbox/wildberries/orders/{theirs}/cancel")).status_code == 200
        assert await wb.statuses([mine, theirs]) == {mine: ("cancel", "waiting"), theirs: ("new", "canceled_by_client")}
        assert await wb.new_orders() == []
        supply = await wb.create_supply("late")
        with pytest.raises(ExternalRefusal) as err:
            await wb.add_to_supply(supply, [theirs])
        assert err.value.code == "FailedToAddSupplyOrder"


async def test_stock_by_size_and_rate_limit(make_sandbox: Any) -> None:
    async with wb_env(make_sandbox) as (_sb, wb, raw):
        sizes = await wb.size_ids(limit=7)  # paged through the cards by 7
        assert len(sizes) == sum(len(p.skus) for p in DATA.products)
        chrt = sizes[PLAIN.barcode]
        assert (await wb.push_stocks(WH, [StockLevel(PLAIN.sku, WH, 4, item_id=chrt)])).updated == 1
        assert (await raw.get("/sandbox/wildberries/stocks")).json()["stocks"][f"{chrt}@{WH}"] == 4
        with pytest.raises(ExternalRefusal) as err:  # an unknown size refuses the call
            await wb.push_stocks(WH, [StockLevel("X", WH, 1, item_id=1)])
        assert err.value.code == "NotFound"
        await raw.post("/sandbox/wildberries/limits", json={"per_minute": 2})
        await wb.new_orders()
        await wb.new_orders()
        with pytest.raises(ExternalRateLimited) as err:
            await wb.new_orders()
        assert 0 < err.value.retry_after_s <= 60


async def test_faults_and_auth(make_sandbox: Any) -> None:
    async with wb_env(make_sandbox) as (_sb, wb, raw):
        with pytest.raises(ExternalRefusal) as err:
            await WildberriesClient(wb._http, token="wrong").new_orders()
        assert err.value.code == "HTTP401"
        await raw.post("/sandbox/wildberries/faults", json={"fail_next": 1, "status": 503, "operations": ["orders_new"]})
        with pytest.raises(ExternalUnavailable):
            await wb.new_orders()
        await raw.post("/sandbox/wildberries/faults", json={"fail_next": 1, "status": 429, "operations": ["orders_new"]})
        with pytest.raises(ExternalRateLimited) as err:
            await wb.new_orders()
        assert err.value.retry_after_s == 1.0
        assert await wb.new_orders() == []


async def test_auto_mode_orders_what_was_pushed(make_sandbox: Any) -> None:
    async with wb_env(make_sandbox, auto=True, auto_delay_s=0.02) as (_sb, wb, raw):
        chrt = (await wb.size_ids())[PLAIN.barcode]
        await wb.push_stocks(WH, [StockLevel(PLAIN.sku, WH, 1, item_id=chrt)])

        async def one() -> Any:
            return await wb.new_orders()

        orders = await wait_for(one, timeout_s=5)
        assert [o.lines[0].sku for o in orders] == [PLAIN.sku]
        oid = int(orders[0].order_id)
        supply = await wb.create_supply("auto")
        await wb.add_to_supply(supply, [oid])
        await wb.deliver_supply(supply)

        async def sold() -> bool:
            return (await wb.statuses([oid]))[oid] == ("complete", "sold")

        await wait_for(sold, timeout_s=5)
