"""Contract: the ``cdek`` PyPI SDK reads the simulator's cash-on-delivery registry
(``PaymentApp.get_registries``, ``PaymentApp.get``) and a partly delivered order's
``delivery_detail`` with its own pydantic models, unchanged but for its base URL."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

cdek = pytest.importorskip("cdek", reason="the contract tests' clients install with the test extra (make venv)")

from test_cdek_client import order_request, sdk  # noqa: E402


async def test_cod_registry_and_partial_delivery_with_the_cdek_sdk(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as raw:
        client = sdk(sb)
        request = order_request("SDK-COD-1")
        request.packages[0].items[0].payment.value = 4990.0  # cash on delivery for the dress
        created = await asyncio.to_thread(client.order.create, request)
        uuid = str(created.entity.uuid)
        resp = await raw.post(f"/sandbox/courier/orders/{uuid}/deliver-partial",
                              json={"kept": [{"ware_key": "SKU-1", "qty": 1}], "payment": "card"})
        assert resp.status_code == 200, resp.text
        got = await asyncio.to_thread(client.order.get_by_uuid, uuid)
        detail = got.entity.delivery_detail
        assert detail.payment_sum == 4990.0 and [(p.type, p.sum) for p in detail.payment_info] == [("CARD", 4990.0)]
        await raw.post("/sandbox/courier/registries")
        today = dt.datetime.now(dt.UTC).date()
        registries = await asyncio.to_thread(client.payment.get_registries, today)
        (registry,) = registries.registries
        assert registry.orders[0].payment_sum == 4990.0 and registry.orders[0].agent_commission_sum == 149.7
        assert registry.sum == 4990.0 - 149.7
        paid = await asyncio.to_thread(client.payment.get, today)
        assert [str(o.order_uuid) for o in paid.orders] == [uuid]
