"""The new simulators keep their state across a sandbox restart (sandbox.state): fiscal
receipts (a repeat after the restart is still the same receipt), Ozon postings and pushed stock,
Wildberries orders and supplies, CDEK's collected cash waiting for a registry."""

from __future__ import annotations

import random
from typing import Any

import httpx

from adapters.fiscal import FiscalClient
from adapters.ozon import OzonClient
from adapters.wildberries import WildberriesClient
from contracts.marketplace import StockLevel
from domain.marking import generate_marking_code
from sandbox.demo_data import marked, shared
from test_fiscal import COMPANY, GTIN, prepaid_receipt

DATA = shared(42, 2000, True)
PLAIN = next(s for p in DATA.products if not marked(p.category) for s in p.skus)


async def test_new_systems_survive_a_restart(make_sandbox: Any, tmp_path: Any) -> None:
    state = str(tmp_path / "sandbox.db")
    receipt = prepaid_receipt("RST1", generate_marking_code(GTIN, random.Random(1)).text())
    async with make_sandbox(state_path=state) as sb, httpx.AsyncClient(base_url=sb.url, timeout=5) as raw:
        async with httpx.AsyncClient(base_url=f"{sb.url}/fiscal/possystem/v5/") as fh, \
                httpx.AsyncClient(base_url=f"{sb.url}/ozon/") as oh, httpx.AsyncClient(base_url=f"{sb.url}/wildberries/") as wh:
            fiscal = FiscalClient(fh, login="orkestr-fiscal", password="orkestr", group_code="orkestr-group", company=COMPANY)
            first = await fiscal.register(receipt)
            number = (await raw.post("/sandbox/ozon/postings", json={"items": [{"offer_id": PLAIN.sku, "quantity": 1}]})).json()["posting_number"]
            await OzonClient(oh, client_id="orkestr-ozon", api_key="ozon-api-key").push_stocks([StockLevel(PLAIN.sku, 1020000001, 4)])
            wb = WildberriesClient(wh, token="wb-api-token")
            wb_id = (await raw.post("/sandbox/wildberries/orders", json={"article": PLAIN.sku})).json()["id"]
            supply = await wb.create_supply("before the restart")
            await wb.add_to_supply(supply, [wb_id])
    async with make_sandbox(state_path=state) as sb, httpx.AsyncClient(base_url=sb.url, timeout=5) as raw:
        async with httpx.AsyncClient(base_url=f"{sb.url}/fiscal/possystem/v5/") as fh, \
                httpx.AsyncClient(base_url=f"{sb.url}/ozon/") as oh, httpx.AsyncClient(base_url=f"{sb.url}/wildberries/") as wh:
            fiscal = FiscalClient(fh, login="orkestr-fiscal", password="orkestr", group_code="orkestr-group", company=COMPANY)
            again = await fiscal.register(receipt)
            assert again.uuid == first.uuid and again.repeated
            assert (await fiscal.report(first.uuid)).status in ("wait", "done")
            assert (await OzonClient(oh, client_id="orkestr-ozon", api_key="ozon-api-key").get(number)).status == "awaiting_packaging"
            assert (await raw.get("/sandbox/ozon/stocks")).json()["stocks"][f"{PLAIN.sku}@1020000001"] == 4
            wb = WildberriesClient(wh, token="wb-api-token")
            assert await wb.statuses([wb_id]) == {wb_id: ("confirm", "waiting")}
            await wb.deliver_supply(supply)
