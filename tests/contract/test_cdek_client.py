"""Contract: the ``cdek`` package from PyPI (a CDEK API v2 SDK written from CDEK's public
documentation by others) drives the CDEK simulator unchanged.

The SDK takes its base URL from a public attribute (``CdekClient.base_url``, production
``https://api.cdek.ru/v2/`` by default); the test points it at the sandbox and changes nothing
else. It is synchronous (requests), so each call runs in a worker thread. Every answer is
validated by the SDK's own pydantic models: a missing required field (``uuid``,
``is_dressing_room``, ``work_time_list``... of a pickup point; ``status_code``, ``is_reverse``...
of a webhook) fails the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from conftest import wait_for

cdek = pytest.importorskip("cdek", reason="the contract tests' clients install with the test extra (make venv)")

from cdek.apps.models import CalcPackage, Contact, Item, Money, Package, Phone  # noqa: E402
from cdek.apps.models.location import OrderLocation  # noqa: E402
from cdek.apps.office.filters import OfficeFilter  # noqa: E402
from cdek.apps.order.requests import OrderRequest  # noqa: E402
from cdek.apps.tariff.requests import CalculatorLocation, TariffCodeRequest, TariffListRequest  # noqa: E402
from cdek.apps.webhook import OrderStatusEvent, WebhookRequest, WebhookType, parse_webhook  # noqa: E402
from cdek.client import CdekClient as Sdk  # noqa: E402
from cdek.exceptions import CdekRequestException  # noqa: E402

MOSCOW, SPB = 44, 137  # the sandbox's city codes (CDEK's own for these two cities)


def sdk(sb: Any) -> Sdk:
    client = Sdk("orkestr", "orkestr")
    client.base_url = f"{sb.url}/cdek/v2/"  # the only change: where the API is
    return client


def order_request(number: str, *, point: str | None = None) -> OrderRequest:
    item = Item(name="Платье", ware_key="SKU-1", payment=Money(value=0), cost=4990.0, weight=700, amount=1)
    return OrderRequest(
        type=1,
        number=number,
        tariff_code=136 if point else 137,
        shipment_point="MSK1",
        delivery_point=point,
        to_location=None if point else OrderLocation(code=SPB, city="Санкт-Петербург", address="Невский пр., д. 28"),
        recipient=Contact(name="Анна Иванова", phones=[Phone(number="+79161234567")]),
        packages=[Package(number=f"{number}-1", weight=700, length=30, width=20, height=10, items=[item])],
    )


@asynccontextmanager
async def receiver(serve: Any) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/hooks/cdek")
    async def hook(request: Request) -> dict[str, str]:
        received.append(await request.json())
        return {"status": "ok"}

    async with serve(app) as served:
        yield f"{served.url}/hooks/cdek", received


async def test_tariffs_token_and_pickup_points(make_sandbox: Any) -> None:
    async with make_sandbox() as sb:
        client = sdk(sb)
        location = {"from_location": CalculatorLocation(code=MOSCOW), "to_location": CalculatorLocation(code=SPB)}
        packages = [CalcPackage(weight=1500, length=30, width=20, height=10)]
        listed = await asyncio.to_thread(client.tariff.calc_list, TariffListRequest(type=1, packages=packages, **location))
        codes = {t.tariff_code: t for t in listed.get_codes()}
        assert set(codes) == {136, 137, 138, 139} and all(t.delivery_sum > 0 for t in codes.values())

        one = await asyncio.to_thread(client.tariff.calc, TariffCodeRequest(tariff_code=137, packages=packages, **location))
        assert one.delivery_sum == codes[137].delivery_sum and one.total_sum == one.delivery_sum
        assert (one.period_min, one.period_max, one.currency, one.weight_calc) == (codes[137].period_min, codes[137].period_max, "RUB", 1500)

        points = (await asyncio.to_thread(client.office.get, OfficeFilter(city_code=SPB)))["result"]
        assert [p.code for p in points] == ["SPB1", "SPB2", "SPB3"]
        assert all(p.uuid and p.work_time_list and p.location.code == SPB for p in points)
        fitting = (await asyncio.to_thread(client.office.get, OfficeFilter(city_code=SPB, is_dressing_room=True)))["result"]
        assert [p.code for p in fitting] == ["SPB1", "SPB2"] and all(p.is_dressing_room for p in fitting)
        cashless_only = [p.code for p in points if not p.have_cash]
        assert cashless_only == ["SPB2"]


async def test_orders_create_get_delete(make_sandbox: Any) -> None:
    async with make_sandbox() as sb:
        client = sdk(sb)
        created = await asyncio.to_thread(client.order.create, order_request("CTR-1"))
        uuid = created.get_entry_uuid()
        assert uuid and created.get_requests()[0].state == "ACCEPTED"

        got = await asyncio.to_thread(client.order.get_by_uuid, uuid)
        assert got.entity is not None and got.entity.number == "CTR-1" and got.entity.cdek_number
        assert [s.code for s in got.entity.statuses] == ["CREATED", "ACCEPTED"]  # newest first
        by_number = await asyncio.to_thread(client.order.get_by_im_number, "CTR-1")
        assert by_number.entity is not None and str(by_number.entity.uuid) == uuid
        by_track = await asyncio.to_thread(client.order.get_by_cdek_number, str(got.entity.cdek_number))
        assert by_track.entity is not None and str(by_track.entity.uuid) == uuid

        to_point = await asyncio.to_thread(client.order.create, order_request("CTR-2", point="SPB1"))
        assert to_point.get_entry_uuid()

        deleted = await asyncio.to_thread(client.order.delete, uuid)
        assert deleted.get_requests()[0].type == "DELETE"
        after = await asyncio.to_thread(client.order.get_by_uuid, uuid)
        assert after.entity is not None and after.entity.statuses[0].code == "REMOVED"

        # a refusal is the SDK's exception carrying CDEK's error code, not a crash
        with pytest.raises(CdekRequestException) as dup:
            await asyncio.to_thread(client.order.create, order_request("CTR-2", point="SPB1"))
        assert "v2_order_number_exists" in str(dup.value.args) or "already exists" in str(dup.value)


async def test_webhooks_subscribe_list_get_delete_and_parse(make_sandbox: Any, serve: Any) -> None:
    async with receiver(serve) as (url, received), make_sandbox() as sb:
        client = sdk(sb)
        made = await asyncio.to_thread(client.webhook.set, WebhookRequest(type=WebhookType.ORDER_STATUS, url=url))
        hook_id = made.get_entry_uuid()
        assert hook_id
        listed = await asyncio.to_thread(client.webhook.all)
        assert [(str(h.uuid), h.url) for h in listed] == [(hook_id, url)]
        one = await asyncio.to_thread(client.webhook.get, hook_id)
        assert one.entity is not None and str(one.entity.uuid) == hook_id and one.entity.url == url

        uuid = (await asyncio.to_thread(client.order.create, order_request("CTR-WH"))).get_entry_uuid()
        async with httpx.AsyncClient(base_url=sb.url) as drive:
            r = await drive.post(f"/sandbox/courier/orders/{uuid}/status", json={"code": "DELIVERED"})
            assert r.status_code == 200, r.text

            async def delivered() -> dict[str, Any] | None:
                return next((w for w in received if w["attributes"]["code"] == "DELIVERED"), None)

            event = parse_webhook(await wait_for(delivered))  # the SDK's own webhook parser
            assert isinstance(event, OrderStatusEvent)
            a = event.attributes
            assert (a.code, a.status_code, a.number, a.is_return, a.is_reverse, a.is_client_return) == (
                "DELIVERED", "4", "CTR-WH", False, False, False)
            assert a.deleted is False and a.city_name == "Санкт-Петербург"

            # CDEK's own return order for the same shipment: flagged, and linked to the direct one
            r = await drive.post(f"/sandbox/courier/orders/{uuid}/linked", json={"kind": "reverse"})
            assert r.status_code == 200, r.text
            back_uuid = r.json()["uuid"]

            async def reverse_created() -> dict[str, Any] | None:
                return next((w for w in received if w["uuid"] == back_uuid), None)

            back = parse_webhook(await wait_for(reverse_created))
            assert back.attributes.is_reverse and back.attributes.number == "CTR-WH"
            assert [str(e.uuid) for e in back.attributes.related_entities or []] == [uuid]

        assert (await asyncio.to_thread(client.webhook.delete, hook_id)).get_entry_uuid() == hook_id
        assert await asyncio.to_thread(client.webhook.all) == []


async def test_unknown_routes_answer_in_cdeks_error_shape(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as http:
        for method, path in (("GET", "/cdek/v2/no-such-thing"), ("PATCH", "/cdek/v2/webhooks")):
            r = await http.request(method, path)
            assert r.status_code in (404, 405)
            errors = r.json()["errors"]
            assert errors[0]["code"] == "v2_bad_request" and errors[0]["message"]
