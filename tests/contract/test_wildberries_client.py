"""Contract: ``wildberries-sdk`` (PyPI; clients generated from Wildberries' own OpenAPI
specifications, kept current) drives the Wildberries simulator unchanged but for its host
(``Configuration(host=..., ignore_operation_servers=True)``: the generator's documented switch
from each operation's production server, ``https://marketplace-api.wildberries.ru``, to ``host``). The
generated models validate every answer (enums of statuses, required fields such as a
supply's ``spotAvailable``), so a shape the specification does not allow fails the call. The
client is synchronous (urllib3): each call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from typing import Any

import httpx
import pytest

wb = pytest.importorskip("wildberries_sdk", reason="the contract tests' clients install with the test extra (make venv)")

from wildberries_sdk import items as wb_items  # noqa: E402
from wildberries_sdk import orders_fbs  # noqa: E402
from wildberries_sdk.orders_fbs.models import (  # noqa: E402
    PatchV3SuppliesSupplyIdOrdersRequest,
    PostV3OrdersStatusRequest,
    PostV3OrdersStickersRequest,
    PostV3SuppliesRequest,
    PutV3OrdersOrderIdMetaSgtinRequest,
)
from wildberries_sdk.items.models import PutV3StocksWarehouseIdRequest  # noqa: E402

from domain.marking import generate_marking_code, gtin_from_barcode  # noqa: E402
from sandbox.demo_data import marked, shared  # noqa: E402

DATA = shared(42, 2000, True)
MARKED = next(s for p in DATA.products if marked(p.category) for s in p.skus)
TOKEN = "wb-api-token"


def clients(sb: Any) -> tuple[Any, Any]:
    fbs_cfg = orders_fbs.Configuration(host=f"{sb.url}/wildberries", api_key={"HeaderApiKey": TOKEN},
                                          ignore_operation_servers=True)
    items_cfg = wb_items.Configuration(host=f"{sb.url}/wildberries", api_key={"HeaderApiKey": TOKEN},
                                          ignore_operation_servers=True)
    return orders_fbs.DefaultApi(orders_fbs.ApiClient(fbs_cfg)), wb_items.DefaultApi(wb_items.ApiClient(items_cfg))


async def test_orders_supply_marking_stickers_with_the_wb_client(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as raw:
        order_id = (await raw.post("/sandbox/wildberries/orders", json={"article": MARKED.sku})).json()["id"]
        fbs, _items = clients(sb)
        new = await asyncio.to_thread(fbs.get_v3_orders_new)
        assert [o.id for o in new.orders] == [order_id] and new.orders[0].required_meta == ["sgtin"]
        code = generate_marking_code(gtin_from_barcode(MARKED.barcode), random.Random(3)).text()
        await asyncio.to_thread(fbs.put_v3_orders_order_id_meta_sgtin, order_id, PutV3OrdersOrderIdMetaSgtinRequest(sgtins=[code]))
        supply = await asyncio.to_thread(fbs.post_v3_supplies, PostV3SuppliesRequest(name="contract"))
        assert supply.id.startswith("WB-GI-")
        await asyncio.to_thread(fbs.patch_v3_supplies_supply_id_orders, supply.id, PatchV3SuppliesSupplyIdOrdersRequest(orders=[order_id]))
        got = await asyncio.to_thread(fbs.get_v3_supplies_supply_id, supply.id)
        assert got.done is False and got.spot_available is False
        stickers = await asyncio.to_thread(fbs.post_v3_orders_stickers, "svg", 58, 40, PostV3OrdersStickersRequest(orders=[order_id]))
        assert stickers.stickers[0].order_id == order_id and base64.b64decode(stickers.stickers[0].file).startswith(b"<svg")
        await asyncio.to_thread(fbs.patch_v3_supplies_supply_id_deliver, supply.id)
        statuses = await asyncio.to_thread(fbs.post_v3_orders_status, PostV3OrdersStatusRequest(orders=[order_id]))
        assert [(o.supplier_status, o.wb_status) for o in statuses.orders] == [("complete", "waiting")]


async def test_stocks_with_the_wb_client(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as raw:
        chrt = (await raw.get("/sandbox/wildberries/stocks", params={"article": MARKED.sku})).json()["chrtId"]
        _fbs, items = clients(sb)
        await asyncio.to_thread(items.put_v3_stocks_warehouse_id, 800001,
                                PutV3StocksWarehouseIdRequest.model_validate({"stocks": [{"chrtId": chrt, "amount": 7}]}))
        assert (await raw.get("/sandbox/wildberries/stocks")).json()["stocks"][f"{chrt}@800001"] == 7
        # urllib3 under the client honours Retry-After on a 429 (its default Retry): one 429 is
        # waited out and the call goes through; a 429 that lasts ends as the client's ApiException
        await raw.post("/sandbox/wildberries/faults", json={"fail_next": 1, "status": 429, "operations": ["stocks_put"]})
        started = time.monotonic()
        await asyncio.to_thread(items.put_v3_stocks_warehouse_id, 800001,
                                PutV3StocksWarehouseIdRequest.model_validate({"stocks": [{"chrtId": chrt, "amount": 6}]}))
        assert time.monotonic() - started >= 1.0
        assert (await raw.get("/sandbox/wildberries/stocks")).json()["stocks"][f"{chrt}@800001"] == 6
        await raw.post("/sandbox/wildberries/faults", json={"fail_next": 10, "status": 429, "operations": ["stocks_put"]})
        with pytest.raises(wb_items.ApiException) as err:
            await asyncio.to_thread(items.put_v3_stocks_warehouse_id, 800001,
                                    PutV3StocksWarehouseIdRequest.model_validate({"stocks": [{"chrtId": chrt, "amount": 5}]}))
        assert err.value.status == 429 and err.value.headers["X-Ratelimit-Retry"] == "1"
