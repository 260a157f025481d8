"""The CDEK simulator and CdekClient over real HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest

from conftest import wait_for
from fastapi import FastAPI, Request

from adapters.couriers import CdekClient, Courier
from adapters.errors import ExternalRefusal, ExternalUnavailable
from adapters.wire.couriers import (
    BookingRequest,
    ParcelItem,
    Recipient,
    ShipAddress,
    ShipmentStatus,
    latest_status,
)

T = TypeVar("T")

TO_SPB = ShipAddress(region="Санкт-Петербург", city="Санкт-Петербург", line="Невский пр., д. 28", postcode="191186")


def booking(shipment_id: str, **kw: Any) -> BookingRequest:
    base: dict[str, Any] = dict(
        shipment_id=shipment_id,
        carrier="cdek",
        from_city="Москва",
        from_location_id="store-msk-1",
        to=TO_SPB,
        recipient=Recipient(name="Анна Иванова", phone="+79161234567"),
        items=(ParcelItem(sku="SKU-1", name="Платье", qty=1, price=499_000), ParcelItem(sku="SKU-2", name="Ремень", qty=2, price=150_050)),
        weight_g=1500,
        declared_value=799_100,
    )
    base.update(kw)
    return BookingRequest(**base)


@asynccontextmanager
async def cdek_env(make_sandbox: Any, **config: Any) -> AsyncIterator[tuple[Any, CdekClient, httpx.AsyncClient]]:
    async with make_sandbox(**config) as sb, httpx.AsyncClient(base_url=sb.url, timeout=5) as raw, httpx.AsyncClient(
        base_url=f"{sb.url}/cdek", timeout=5
    ) as http:
        yield sb, CdekClient(http, client_id="orkestr", client_secret="orkestr"), raw


@asynccontextmanager
async def webhook_receiver(serve: Any) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in for Orkestr's webhook endpoint, protected by a secret in the path."""
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/webhooks/cdek/{secret}")
    async def hook(secret: str, request: Request) -> dict[str, bool]:
        if secret != "s3cret":
            return {"ok": False}
        received.append(await request.json())
        return {"ok": True}

    async with serve(app) as served:
        yield f"{served.url}/webhooks/cdek/s3cret", received


async def token(raw: httpx.AsyncClient) -> str:
    resp = await raw.post("/cdek/v2/oauth/token", data={"grant_type": "client_credentials", "client_id": "orkestr", "client_secret": "orkestr"})
    assert resp.status_code == 200
    return resp.json()["access_token"]


async def test_token_required_and_refreshed(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox) as (_sb, client, raw):
        assert isinstance(client, Courier)
        resp = await raw.get("/cdek/v2/deliverypoints", params={"city": "Kazan"})
        assert resp.status_code == 401
        resp = await raw.get("/cdek/v2/deliverypoints", params={"city": "Kazan"}, headers={"Authorization": "Bearer nope"})
        assert resp.status_code == 401
        bad = await raw.post("/cdek/v2/oauth/token", data={"grant_type": "client_credentials", "client_id": "orkestr", "client_secret": "wrong"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"

        good = await raw.post("/cdek/v2/oauth/token", data={"grant_type": "client_credentials", "client_id": "orkestr", "client_secret": "orkestr"})
        body = good.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and body["jti"] and body["scope"]
        resp = await raw.get("/cdek/v2/deliverypoints", params={"city": "Kazan"}, headers={"Authorization": f"Bearer {body['access_token']}"})
        assert resp.status_code == 200
        assert [p["location"]["city"] for p in resp.json()] == ["Казань"] * 3

        points = await client.pickup_points(city="Kazan")  # the client fetches and caches a token
        assert len(points) == 3
        expired = (await raw.post("/sandbox/courier/tokens/expire")).json()["expired"]
        assert expired >= 2
        resp = await raw.get("/cdek/v2/deliverypoints", params={"city": "Kazan"}, headers={"Authorization": f"Bearer {body['access_token']}"})
        assert resp.status_code == 401 and "expired" in resp.json()["error_description"].lower()
        assert len(await client.pickup_points(city="Kazan")) == 3  # refreshed on 401

        wrong = CdekClient(client._http, client_id="orkestr", client_secret="wrong")
        with pytest.raises(ExternalRefusal) as err:
            await wrong.pickup_points(city="Kazan")
        assert err.value.code == "invalid_client"


async def test_delivered_status_is_pushed_by_webhook(make_sandbox: Any, serve: Any) -> None:
    async with webhook_receiver(serve) as (url, received), cdek_env(make_sandbox) as (_sb, client, raw):
        hook_id = await client.register_webhook(url)
        assert await client.register_webhook(url) == hook_id  # idempotent by (type, url)

        b = await client.book(booking("SHP-WH-1"))
        assert b.carrier == "cdek" and b.external_id and b.tracking_number.isdigit()
        resp = await raw.post(f"/sandbox/courier/orders/{b.external_id}/status", json={"code": "DELIVERED"})
        assert resp.status_code == 200

        async def delivered() -> dict[str, Any] | None:
            return next((w for w in received if w["attributes"]["code"] == "DELIVERED"), None)

        hook = await wait_for(delivered)
        assert hook["type"] == "ORDER_STATUS" and hook["uuid"] == b.external_id
        attrs = hook["attributes"]
        assert attrs["number"] == "SHP-WH-1"
        assert attrs["cdek_number"] == b.tracking_number
        assert (attrs["is_return"], attrs["is_reverse"], attrs["is_client_return"]) == (False, False, False)
        assert attrs["status_code"] == "4" and attrs["deleted"] is False  # CDEK's number for DELIVERED
        assert attrs["city_name"] == "Санкт-Петербург" and attrs["city_code"]
        assert attrs["status_date_time"]
        update = CdekClient.parse_webhook(hook)
        assert update.shipment_id == "SHP-WH-1" and update.external_id == b.external_id
        assert update.event.status is ShipmentStatus.delivered

        # creation statuses were pushed too, and the sandbox shows its deliveries
        codes = {w["attributes"]["code"] for w in received}
        assert {"ACCEPTED", "CREATED", "DELIVERED"} <= codes

        async def recorded() -> list[dict[str, Any]]:
            orders = (await raw.get("/sandbox/courier/orders")).json()["orders"]
            order = next(o for o in orders if o["uuid"] == b.external_id)
            return [d for d in order["webhook_deliveries"] if d["code"] == "DELIVERED" and d["http_status"] == 200]

        assert await wait_for(recorded)

        events = await client.track(b)
        assert [e.code for e in events] == ["ACCEPTED", "CREATED", "DELIVERED"]
        assert latest_status(events) is ShipmentStatus.delivered


async def test_return_shipment_is_marked_in_webhooks(make_sandbox: Any, serve: Any) -> None:
    async with webhook_receiver(serve) as (url, received), cdek_env(make_sandbox) as (_sb, client, raw):
        await client.register_webhook(url)
        b = await client.book(booking("RET-1", is_return=True))
        order = await client.order(b.external_id)
        assert order["is_client_return"] is True and order["is_return"] is False
        assert order["to_location"]["city"] == "Москва"  # to the store
        await raw.post(f"/sandbox/courier/orders/{b.external_id}/status", json={"code": "RECEIVED_AT_SHIPMENT_WAREHOUSE"})

        async def received_at_warehouse() -> dict[str, Any] | None:
            return next((w for w in received if w["attributes"]["code"] == "RECEIVED_AT_SHIPMENT_WAREHOUSE"), None)

        hook = await wait_for(received_at_warehouse)
        assert hook["attributes"]["is_client_return"] is True and hook["attributes"]["is_return"] is False
        assert hook["attributes"]["city_name"] == "Санкт-Петербург"  # the customer's city
        assert CdekClient.parse_webhook(hook).event.status is ShipmentStatus.handed_over


async def test_a_reverse_order_delivered_reads_as_returned_not_delivered(make_sandbox: Any, serve: Any) -> None:
    # CDEK opens its own reverse order for our shipment: same number, linked to the direct order;
    # our adapter must not read its DELIVERED (back at the sender) as the customer's delivery
    async with webhook_receiver(serve) as (url, received), cdek_env(make_sandbox) as (_sb, client, raw):
        await client.register_webhook(url)
        b = await client.book(booking("SHP-REV-1"))
        linked = await raw.post(f"/sandbox/courier/orders/{b.external_id}/linked", json={"kind": "reverse"})
        assert linked.status_code == 200, linked.text
        back = linked.json()
        assert back["is_reverse"] is True and back["number"] == "SHP-REV-1" and back["to_city"] == "Moscow"
        await raw.post(f"/sandbox/courier/orders/{back['uuid']}/status", json={"code": "DELIVERED"})

        async def back_delivered() -> dict[str, Any] | None:
            return next((w for w in received if w["uuid"] == back["uuid"] and w["attributes"]["code"] == "DELIVERED"), None)

        hook = await wait_for(back_delivered)
        assert hook["attributes"]["is_reverse"] is True and hook["attributes"]["status_code"] == "4"
        assert hook["attributes"]["related_entities"] == [{"type": "direct_order", "uuid": b.external_id, "cdek_number": b.tracking_number}]
        update = CdekClient.parse_webhook(hook)
        assert update.shipment_id == "SHP-REV-1" and update.kind == "reverse" and update.direct_order == b.external_id
        assert update.event.status is ShipmentStatus.returned
        direct = (await raw.get(f"/cdek/v2/orders/{b.external_id}", headers={"Authorization": f"Bearer {await token(raw)}"})).json()
        assert [e["type"] for e in direct["related_entities"]] == ["REVERSE_ORDER"]


async def test_booking_is_idempotent_by_number(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox) as (_sb, client, raw):
        first = await client.book(booking("SHP-IDEM-1"))
        again = await client.book(booking("SHP-IDEM-1"))
        assert again == first
        twins = await asyncio.gather(*(client.book(booking("SHP-IDEM-2")) for _ in range(3)))
        assert len({t.external_id for t in twins}) == 1

        # the wire: a second order with the same number is INVALID, naming the duplicate
        tok = await token(raw)
        resp = await raw.post("/cdek/v2/orders", json=client.order_body(booking("SHP-IDEM-1")), headers={"Authorization": f"Bearer {tok}"})
        assert resp.status_code == 400
        req = resp.json()["requests"][0]
        assert req["state"] == "INVALID" and "exist" in req["errors"][0]["code"]
        found = await raw.get("/cdek/v2/orders", params={"im_number": "SHP-IDEM-1"}, headers={"Authorization": f"Bearer {tok}"})
        assert found.json()["entity"]["uuid"] == first.external_id
        by_cdek = await raw.get("/cdek/v2/orders", params={"cdek_number": first.tracking_number}, headers={"Authorization": f"Bearer {tok}"})
        assert by_cdek.json()["entity"]["number"] == "SHP-IDEM-1"
        missing = await raw.get("/cdek/v2/orders", params={"im_number": "NOPE"}, headers={"Authorization": f"Bearer {tok}"})
        assert missing.status_code == 400
        assert missing.json()["requests"][0]["errors"][0]["code"] == "v2_entity_not_found_im_number"

        orders = (await raw.get("/sandbox/courier/orders")).json()["orders"]
        assert sorted(o["number"] for o in orders) == ["SHP-IDEM-1", "SHP-IDEM-2"]


async def test_cancel_before_hand_over_only(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox) as (_sb, client, raw):
        early = await client.book(booking("SHP-CANCEL-1"))
        await client.cancel(early)
        await client.cancel(early)  # a repeat is a no-op
        events = await client.track(early)
        assert events[-1].code == "REMOVED" and latest_status(events) is ShipmentStatus.cancelled
        assert [e.code for e in events].count("REMOVED") == 1

        late = await client.book(booking("SHP-CANCEL-2"))
        resp = await raw.post(f"/sandbox/courier/orders/{late.external_id}/status", json={"code": "RECEIVED_AT_SHIPMENT_WAREHOUSE"})
        assert resp.status_code == 200
        with pytest.raises(ExternalRefusal) as err:
            await client.cancel(late)
        assert err.value.code == "v2_entity_invalid" and "RECEIVED_AT_SHIPMENT_WAREHOUSE" in err.value.message
        assert latest_status(await client.track(late)) is ShipmentStatus.handed_over


async def test_tariff_list_is_deterministic(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox) as (_sb, client, raw):
        to_kazan = ShipAddress(region="Республика Татарстан", city="Казань", line="ул. Баумана, 1", postcode="420111")
        to_vvo = ShipAddress(region="Приморский край", city="Владивосток", line="ул. Светланская, 1", postcode="690091")
        a = await client.quote(from_city="Москва", to=to_kazan, weight_g=1500)
        b = await client.quote(from_city="Moscow", to=to_kazan, weight_g=1500)
        assert a == b
        assert {q.tariff for q in a} >= {"136", "137", "138", "139"}
        assert {q.method for q in a} == {"courier", "pickup_point"}
        assert all(q.price > 0 and 1 <= q.days_min <= q.days_max and q.carrier == "cdek" for q in a)

        far = {q.tariff: q for q in await client.quote(from_city="Москва", to=to_vvo, weight_g=1500)}
        heavy = {q.tariff: q for q in await client.quote(from_city="Москва", to=to_kazan, weight_g=9000)}
        near = {q.tariff: q for q in a}
        assert far["139"].price > near["139"].price and far["139"].days_max > near["139"].days_max
        assert heavy["139"].price > near["139"].price
        assert near["139"].price > near["136"].price  # door to door costs more than office to office

        tok = await token(raw)
        wire = await raw.post(
            "/cdek/v2/calculator/tarifflist",
            json={"from_location": {"city": "Москва"}, "to_location": {"city": "Казань"}, "packages": [{"weight": 1500}]},
            headers={"Authorization": f"Bearer {tok}"},
        )
        sums = {t["tariff_code"]: t["delivery_sum"] for t in wire.json()["tariff_codes"]}
        assert round(sums[139] * 100) == near["139"].price  # roubles on the wire, kopecks in our code

        unknown = ShipAddress(region="", city="Атлантида", line="ул. 1, 1", postcode="999999")
        with pytest.raises(ExternalRefusal) as err:
            await client.quote(from_city="Москва", to=unknown, weight_g=1000)
        assert err.value.code == "v2_recipient_location_not_recognized"


async def test_validation_errors_name_the_field(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox) as (_sb, client, raw):
        with pytest.raises(ExternalRefusal) as err:
            await client.book(booking("SHP-BAD-1", recipient=Recipient(name="", phone="+79161234567")))
        assert err.value.code == "v2_field_is_empty" and "recipient.name" in err.value.message

        tok = await token(raw)
        body = client.order_body(booking("SHP-BAD-2"))
        del body["packages"][0]["items"][1]["ware_key"]
        body["packages"][0]["weight"] = -5
        resp = await raw.post("/cdek/v2/orders", json=body, headers={"Authorization": f"Bearer {tok}"})
        assert resp.status_code == 400
        req = resp.json()["requests"][0]
        assert req["state"] == "INVALID" and req["type"] == "CREATE"
        messages = " | ".join(e["message"] for e in req["errors"])
        assert "packages[0].items[1].ware_key" in messages and "packages[0].weight" in messages
        assert (await raw.get("/sandbox/courier/orders")).json()["orders"] == []


async def test_auto_mode_walks_to_delivered(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox, auto=True, auto_delay_s=0.05) as (_sb, client, _raw):
        b = await client.book(booking("SHP-AUTO-1"))

        async def done() -> list[Any] | None:
            events = await client.track(b)
            return events if latest_status(events) is ShipmentStatus.delivered else None

        events = await wait_for(done, timeout_s=10, step_s=0.05)
        assert [e.code for e in events] == [
            "ACCEPTED",
            "CREATED",
            "RECEIVED_AT_SHIPMENT_WAREHOUSE",
            "TAKEN_BY_TRANSPORTER_FROM_SENDER_CITY",
            "ACCEPTED_IN_RECIPIENT_CITY",
            "TAKEN_BY_COURIER",
            "DELIVERED",
        ]
        assert events[0].city == "Москва" and events[-1].city == "Санкт-Петербург"


async def test_faults_become_external_unavailable(make_sandbox: Any) -> None:
    async with cdek_env(make_sandbox) as (sb, client, raw):
        resp = await raw.post("/sandbox/cdek/faults", json={"fail_next": 1, "status": 503, "operations": ["create_order"]})
        assert resp.status_code == 200
        with pytest.raises(ExternalUnavailable):
            await client.book(booking("SHP-FAULT-1"))
        assert (await client.book(booking("SHP-FAULT-1"))).external_id  # the fault was used up
        assert len((await raw.get("/sandbox/courier/orders")).json()["orders"]) == 1

        await raw.post("/sandbox/cdek/faults", json={"latency_ms": 500})
        async with httpx.AsyncClient(base_url=f"{sb.url}/cdek", timeout=0.2) as slow_http:
            slow = CdekClient(slow_http, client_id="orkestr", client_secret="orkestr")
            with pytest.raises(ExternalUnavailable):
                await slow.pickup_points(city="Moscow")
        await raw.post("/sandbox/cdek/faults", json={})
