"""The marketplace activities against the simulators over HTTP (Temporal's ActivityEnvironment):
an order pulled, marked and packed; a 429 becomes a retry after the marketplace's Retry-After."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.marketplaces import MarketplaceActivities
from adapters.ozon import OzonClient
from adapters.wildberries import WildberriesClient
from contracts.marketplace import CancelOrder, Marketplace, PackOrder, PullOrders, PushStock, StockLevel
from domain.marking import generate_marking_code, gtin_from_barcode
from sandbox.demo_data import marked, shared

DATA = shared(42, 2000, True)
MARKED = next(s for p in DATA.products if marked(p.category) for s in p.skus)


async def test_pull_mark_pack_label_and_rate_limit(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as raw, \
            httpx.AsyncClient(base_url=f"{sb.url}/ozon/", timeout=5) as oz, httpx.AsyncClient(base_url=f"{sb.url}/wildberries/", timeout=5) as wbh:
        acts = MarketplaceActivities(OzonClient(oz, client_id="orkestr-ozon", api_key="ozon-api-key"),
                                     WildberriesClient(wbh, token="wb-api-token"))
        env = ActivityEnvironment()
        number = (await raw.post("/sandbox/ozon/postings", json={"items": [{"offer_id": MARKED.sku, "quantity": 1}]})).json()["posting_number"]
        wb_id = (await raw.post("/sandbox/wildberries/orders", json={"article": MARKED.sku})).json()["id"]
        (ozon_order,) = await env.run(acts.pull_marketplace_orders, PullOrders(Marketplace.OZON))
        (wb_order,) = await env.run(acts.pull_marketplace_orders, PullOrders(Marketplace.WILDBERRIES))
        assert (ozon_order.order_id, wb_order.order_id) == (number, str(wb_id))
        line = ozon_order.lines[0]
        code = generate_marking_code(gtin_from_barcode(MARKED.barcode), random.Random(1)).text()
        pack = PackOrder(Marketplace.OZON, number, lines=((line.item_id, 1),), marking_codes={line.item_id: [code]})
        assert await env.run(acts.pack_marketplace_order, pack) == [number]
        assert await env.run(acts.pack_marketplace_order, pack) == [number]  # a retry: already packed, fine
        pdf = await env.run(acts.marketplace_label, CancelOrder(Marketplace.OZON, number))
        assert pdf.startswith(b"%PDF")
        supply = await acts.wildberries.create_supply("activities")
        await env.run(acts.pack_marketplace_order, PackOrder(Marketplace.WILDBERRIES, str(wb_id), marking_codes={0: [code]}, supply_id=supply))
        assert (await acts.wildberries.marking_codes([wb_id])) == {wb_id: [code]}
        # a refusal is final and typed
        with pytest.raises(ApplicationError) as err:
            await env.run(acts.cancel_marketplace_order, CancelOrder(Marketplace.OZON, "NO-SUCH"))
        assert err.value.type == "MarketplaceRefused" and err.value.non_retryable
        # a rate limit is retried after the marketplace's Retry-After, not the policy's backoff
        await raw.post("/sandbox/ozon/faults", json={"fail_next": 1, "status": 429, "operations": ["stocks"]})
        with pytest.raises(ApplicationError) as err:
            await env.run(acts.push_marketplace_stock, PushStock(Marketplace.OZON, (StockLevel(MARKED.sku, 1020000001, 2),)))
        assert err.value.type == "RateLimited" and not err.value.non_retryable
        assert err.value.next_retry_delay == timedelta(seconds=1)
        result = await env.run(acts.push_marketplace_stock, PushStock(Marketplace.OZON, (StockLevel(MARKED.sku, 1020000001, 2),)))
        assert result.updated == 1
