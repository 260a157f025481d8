"""The Ozon Seller API simulator (FBS) and OzonClient over real HTTP on loopback."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from adapters.errors import ExternalRateLimited, ExternalRefusal, ExternalUnavailable
from adapters.ozon import OzonClient
from conftest import wait_for
from contracts.marketplace import StockLevel
from domain.marking import generate_marking_code, gtin_from_barcode
from sandbox.demo_data import marked, shared

DATA = shared(42, 2000, True)
PLAIN = next(s for p in DATA.products if not marked(p.category) for s in p.skus)
MARKED = next(s for p in DATA.products if marked(p.category) for s in p.skus)
WH = 1020000001
NOW = datetime.now(timezone.utc)
WINDOW = {"cutoff_from": NOW - timedelta(days=1), "cutoff_to": NOW + timedelta(days=3)}


@asynccontextmanager
async def ozon_env(make_sandbox: Any, **config: Any) -> AsyncIterator[tuple[Any, OzonClient, httpx.AsyncClient]]:
    async with make_sandbox(**config) as sb, httpx.AsyncClient(base_url=f"{sb.url}/ozon/", timeout=5) as http, \
            httpx.AsyncClient(base_url=sb.url, timeout=5) as raw:
        yield sb, OzonClient(http, client_id="orkestr-ozon", api_key="ozon-api-key"), raw


async def new_posting(raw: httpx.AsyncClient, *items: tuple[str, int]) -> str:
    resp = await raw.post("/sandbox/ozon/postings", json={"items": [{"offer_id": s, "quantity": q} for s, q in items]})
    assert resp.status_code == 200, resp.text
    return resp.json()["posting_number"]


async def test_unfulfilled_get_ship_label(make_sandbox: Any) -> None:
    async with ozon_env(make_sandbox) as (_sb, ozon, raw):
        number = await new_posting(raw, (PLAIN.sku, 2))
        orders, count = await ozon.unfulfilled(**WINDOW)
        assert count == 1 and orders[0].order_id == number and orders[0].warehouse_id == WH
        line = orders[0].lines[0]
        assert (line.sku, line.quantity, line.marking_required) == (PLAIN.sku, 2, False)
        retail = next(p.amount for p in DATA.prices if p.sku == PLAIN.sku and p.price_type == "Retail" and p.currency == "RUB")
        assert line.price == retail  # "1390.00" on the wire → 139000 kopecks
        # a label before packing is refused
        with pytest.raises(ExternalRefusal) as err:
            await ozon.package_label([number])
        assert err.value.code == "POSTING_NOT_READY_FOR_LABEL"
        assert await ozon.ship(number, [(line.item_id, 2)]) == [number]
        with pytest.raises(ExternalRefusal) as err:
            await ozon.ship(number, [(line.item_id, 2)])
        assert err.value.code == "POSTING_ALREADY_SHIPPED"
        pdf = await ozon.package_label([number])
        assert pdf.startswith(b"%PDF-1.4") and number.encode() in pdf and pdf.rstrip().endswith(b"%%EOF")
        assert (await ozon.get(number)).status == "awaiting_deliver"


async def test_marked_unit_needs_its_code_before_shipping(make_sandbox: Any) -> None:
    async with ozon_env(make_sandbox) as (_sb, ozon, raw):
        number = await new_posting(raw, (MARKED.sku, 1))
        order = await ozon.get(number)
        line = order.lines[0]
        assert line.marking_required
        with pytest.raises(ExternalRefusal) as err:
            await ozon.ship(number, [(line.item_id, 1)])
        assert err.value.code == "MANDATORY_MARK_REQUIRED"
        # a code of another product (GTIN mismatch) is refused by the check
        wrong = generate_marking_code(gtin_from_barcode(PLAIN.barcode), random.Random(1)).text()
        await ozon.set_marking_codes(number, {line.item_id: [wrong]})
        assert await ozon.marking_check(number) == (False, [wrong])
        right = generate_marking_code(gtin_from_barcode(MARKED.barcode), random.Random(2)).text()
        await ozon.set_marking_codes(number, {line.item_id: [right]})
        assert await ozon.marking_check(number) == (True, [])
        await ozon.ship(number, [(line.item_id, 1)])
        assert (await ozon.get(number)).lines[0].marking_codes == (right,)


async def test_cancel_by_seller_and_by_customer(make_sandbox: Any) -> None:
    async with ozon_env(make_sandbox) as (_sb, ozon, raw):
        mine = await new_posting(raw, (PLAIN.sku, 1))
        theirs = await new_posting(raw, (PLAIN.sku, 1))
        await ozon.cancel(mine, reason_id=352)
        await ozon.cancel(mine, reason_id=352)  # a repeat is fine
        with pytest.raises(ExternalRefusal):
            await ozon.cancel(theirs, reason_id=402)  # "other" needs a message
        assert (await raw.post(f"/sandbox/ozon/postings/{theirs}/cancel", json={"reason": "Передумал"})).status_code == 200
        got = await ozon.get(theirs)
        assert got.cancelled and got.cancel_reason == "Передумал"
        orders, count = await ozon.unfulfilled(**WINDOW)
        assert count == 0 and orders == []
        with pytest.raises(ExternalRefusal) as err:
            await ozon.ship(theirs, [(got.lines[0].item_id, 1)])
        assert err.value.code == "INVALID_POSTING_STATUS"


async def test_stock_push_limits(make_sandbox: Any) -> None:
    async with ozon_env(make_sandbox) as (_sb, ozon, raw):
        await raw.post("/sandbox/ozon/limits", json={"requests_per_minute": 3, "per_second": 50, "item_interval_s": 30})
        first = await ozon.push_stocks([StockLevel(PLAIN.sku, WH, 5), StockLevel("NO-SUCH", WH, 1)])
        assert first.updated == 1 and [f.code for f in first.failed] == ["NOT_FOUND"]
        # the same product at the same warehouse within 30 s: refused item by item
        again = await ozon.push_stocks([StockLevel(PLAIN.sku, WH, 4), StockLevel(MARKED.sku, WH, 2)])
        assert again.updated == 1 and [(f.sku, f.code) for f in again.failed] == [(PLAIN.sku, "TOO_MANY_REQUESTS")]
        stocks = (await raw.get("/sandbox/ozon/stocks")).json()["stocks"]
        assert stocks[f"{PLAIN.sku}@{WH}"] == 5 and stocks[f"{MARKED.sku}@{WH}"] == 2
        await ozon.push_stocks([StockLevel(MARKED.sku, 1020000002, 1)])
        with pytest.raises(ExternalRateLimited) as err:  # the 4th call in a minute
            await ozon.push_stocks([StockLevel(MARKED.sku, 1020000002, 1)])
        assert 0 < err.value.retry_after_s <= 60
        with pytest.raises(ValueError):
            await ozon.push_stocks([StockLevel(PLAIN.sku, WH, 1)] * 101)


async def test_faults_auth_and_injected_429(make_sandbox: Any) -> None:
    async with ozon_env(make_sandbox) as (sb, ozon, raw):
        bad = OzonClient(ozon._http, client_id="orkestr-ozon", api_key="wrong")
        with pytest.raises(ExternalRefusal):
            await bad.unfulfilled(**WINDOW)
        await raw.post("/sandbox/ozon/faults", json={"fail_next": 1, "status": 503, "operations": ["unfulfilled_list"]})
        with pytest.raises(ExternalUnavailable):
            await ozon.unfulfilled(**WINDOW)
        await raw.post("/sandbox/ozon/faults", json={"fail_next": 1, "status": 429, "operations": ["get"]})
        number = await new_posting(raw, (PLAIN.sku, 1))
        with pytest.raises(ExternalRateLimited) as err:
            await ozon.get(number)
        assert err.value.retry_after_s == 1.0
        assert (await ozon.get(number)).order_id == number
        resp = await raw.post("/ozon/v3/posting/fbs/unfulfilled/list", json={"filter": {}},
                              headers={"Client-Id": "orkestr-ozon", "Api-Key": "ozon-api-key"})
        assert resp.status_code == 400 and resp.json()["message"].startswith("PERIOD_IS_NOT_SPECIFIED")


async def test_auto_mode_orders_what_was_pushed(make_sandbox: Any) -> None:
    async with ozon_env(make_sandbox, auto=True, auto_delay_s=0.02) as (_sb, ozon, raw):
        await ozon.push_stocks([StockLevel(PLAIN.sku, WH, 2)])

        async def two() -> Any:
            orders, count = await ozon.unfulfilled(**WINDOW)
            return orders if count >= 2 else None

        orders = await wait_for(two, timeout_s=5)
        assert {o.lines[0].sku for o in orders} == {PLAIN.sku}
        # both units are taken: no third posting from a stock of 2
        assert (await raw.get("/sandbox/ozon/stocks")).json()["stocks"][f"{PLAIN.sku}@{WH}"] == 0
        first = orders[0]
        await ozon.ship(first.order_id, [(first.lines[0].item_id, 1)])

        async def delivered() -> bool:
            return (await ozon.get(first.order_id)).status == "delivered"

        await wait_for(delivered, timeout_s=5)
