"""The Russian Post simulator and RussianPostClient over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest

from conftest import wait_for

from adapters.couriers import CdekClient, Courier, CourierRegistry, RussianPostClient
from adapters.errors import ExternalRefusal, ExternalUnavailable
from adapters.wire.couriers import (
    BookingRequest,
    ParcelItem,
    Recipient,
    ShipAddress,
    ShipmentStatus,
    latest_status,
)
from sandbox.post import check_digit

T = TypeVar("T")

TO_SPB = ShipAddress(region="Санкт-Петербург", city="Санкт-Петербург", line="Невский пр., д. 28, кв. 5", postcode="191186")
AUTH = {
    "Authorization": "AccessToken dev-post-token",
    "X-User-Authorization": "Basic " + base64.b64encode(b"orkestr:orkestr").decode(),
}


def booking(shipment_id: str, **kw: Any) -> BookingRequest:
    base: dict[str, Any] = dict(
        shipment_id=shipment_id,
        carrier="post",
        from_city="Казань",
        from_location_id="store-kzn-1",
        to=TO_SPB,
        recipient=Recipient(name="Иванова Анна", phone="+7 (916) 123-45-67"),
        items=(ParcelItem(sku="SKU-1", name="Платье", qty=1, price=499_000),),
        weight_g=1200,
        declared_value=499_000,
    )
    base.update(kw)
    return BookingRequest(**base)


@asynccontextmanager
async def post_env(make_sandbox: Any, **config: Any) -> AsyncIterator[tuple[Any, RussianPostClient, httpx.AsyncClient]]:
    async with make_sandbox(**config) as sb, httpx.AsyncClient(base_url=sb.url, timeout=5) as raw, httpx.AsyncClient(
        base_url=f"{sb.url}/post", timeout=5
    ) as http:
        yield sb, RussianPostClient(http, token="dev-post-token", login="orkestr", password="orkestr"), raw


async def operate(raw: httpx.AsyncClient, barcode: str, oper_type: int, oper_attr: int, index: str | None = None) -> None:
    body: dict[str, Any] = {"oper_type": oper_type, "oper_attr": oper_attr}
    if index:
        body["index"] = index
    resp = await raw.post(f"/sandbox/post/items/{barcode}/operations", json=body)
    assert resp.status_code == 200, resp.text


async def test_auth_headers_required(make_sandbox: Any) -> None:
    async with post_env(make_sandbox) as (_sb, client, raw):
        assert isinstance(client, Courier)
        assert (await raw.get("/post/1.0/backlog/search", params={"query": "x"})).status_code == 401
        only_token = {"Authorization": AUTH["Authorization"]}
        assert (await raw.get("/post/1.0/backlog/search", params={"query": "x"}, headers=only_token)).status_code == 401
        wrong = {**AUTH, "Authorization": "AccessToken other"}
        assert (await raw.get("/post/1.0/backlog/search", params={"query": "x"}, headers=wrong)).status_code == 401
        assert (await raw.get("/post/1.0/backlog/search", params={"query": "x"}, headers=AUTH)).json() == []

        bad = RussianPostClient(client._http, token="dev-post-token", login="orkestr", password="wrong")
        with pytest.raises(ExternalRefusal) as err:
            await bad.book(booking("P-AUTH-1"))
        assert err.value.code == "UNAUTHORIZED"
        b = await client.book(booking("P-AUTH-2"))
        with pytest.raises(ExternalRefusal) as err:
            await bad.track(b)  # SOAP carries its own login/password
        assert err.value.code == "AuthorizationFault"


async def test_booking_gets_a_barcode(make_sandbox: Any) -> None:
    async with post_env(make_sandbox) as (_sb, client, raw):
        b = await client.book(booking("P-BOOK-1"))
        assert b.carrier == "post" and b.external_id.isdigit()
        code = b.tracking_number
        assert len(code) == 14 and code.isdigit()
        assert code.startswith("420000")  # our Kazan dispatch office
        assert int(code[-1]) == check_digit(code[:-1])

        order = (await raw.get(f"/post/1.0/backlog/{b.external_id}", headers=AUTH)).json()
        assert order["barcode"] == code and order["order-num"] == "P-BOOK-1"
        assert (order["street-to"], order["house-to"], order["room-to"]) == ("Невский пр.", "28", "5")
        assert order["surname"] == "Иванова" and order["given-name"] == "Анна"
        assert order["tel-address"] == 79161234567
        assert order["mail-category"] == "WITH_DECLARED_VALUE" and order["insr-value"] == 499_000
        assert await client.track(b) == []  # booked, not yet at a post office


async def test_booking_is_idempotent_via_search(make_sandbox: Any) -> None:
    async with post_env(make_sandbox) as (_sb, client, raw):
        first = await client.book(booking("P-IDEM-1"))
        assert await client.book(booking("P-IDEM-1")) == first
        twins = await asyncio.gather(*(client.book(booking("P-IDEM-2")) for _ in range(3)))
        assert len({t.external_id for t in twins}) == 1

        # a retry after a lost answer: the order went in, the client never heard back
        lost = await raw.put("/post/1.0/user/backlog", json=[client.backlog_order(booking("P-IDEM-3"))], headers=AUTH)
        lost_id = lost.json()["result-ids"][0]
        assert (await client.book(booking("P-IDEM-3"))).external_id == str(lost_id)

        # the wire refuses a second live order with the same order-num
        again = await raw.put("/post/1.0/user/backlog", json=[client.backlog_order(booking("P-IDEM-3"))], headers=AUTH)
        assert again.json()["result-ids"] == []
        assert again.json()["errors"][0]["error-codes"][0]["code"] == "DUPLICATE_ORDER_NUM"

        items = (await raw.get("/sandbox/post/items")).json()["items"]
        assert sorted(i["order_num"] for i in items) == ["P-IDEM-1", "P-IDEM-2", "P-IDEM-3"]


async def test_soap_tracking_returns_driven_operations(make_sandbox: Any) -> None:
    async with post_env(make_sandbox) as (_sb, client, raw):
        b = await client.book(booking("P-TRACK-1"))
        await operate(raw, b.tracking_number, 1, 1)
        await operate(raw, b.tracking_number, 8, 0)
        await operate(raw, b.tracking_number, 8, 2, index="191186")
        events = await client.track(b)
        assert [e.code for e in events] == ["1.1", "8.0", "8.2"]
        assert [e.status for e in events] == [ShipmentStatus.handed_over, ShipmentStatus.in_transit, ShipmentStatus.ready_for_pickup]
        assert "Казань" in (events[0].city or "") and "191186" in (events[2].city or "")
        await operate(raw, b.tracking_number, 2, 1)
        assert latest_status(await client.track(b)) is ShipmentStatus.delivered

        # the raw SOAP answer carries the real element names
        envelope = client._envelope(b.tracking_number)
        resp = await raw.post("/post/tracking/rtm34", content=envelope, headers={"Content-Type": "application/soap+xml"})
        assert resp.status_code == 200
        for tag in ("historyRecord", "OperationParameters", "OperType", "OperAttr", "OperDate", "OperationAddress", "Приём", "Вручение адресату"):
            assert tag in resp.text

        other = await client.book(booking("P-TRACK-2"))
        await operate(raw, other.tracking_number, 1, 1)
        await operate(raw, other.tracking_number, 5, 1)
        assert latest_status(await client.track(other)) is ShipmentStatus.not_delivered
        unknown = await raw.post("/sandbox/post/items/00000000000000/operations", json={"oper_type": 1, "oper_attr": 1})
        assert unknown.status_code == 404


async def test_errors_name_the_field(make_sandbox: Any) -> None:
    async with post_env(make_sandbox) as (_sb, client, raw):
        no_region = booking("P-BAD-1", to=ShipAddress(region="", city="Санкт-Петербург", line="Невский пр., 28", postcode="191186"))
        with pytest.raises(ExternalRefusal) as err:
            await client.book(no_region)
        assert "region-to" in err.value.message and err.value.code == "EMPTY_REGION_TO"

        good = client.backlog_order(booking("P-BAD-2"))
        bad = dict(client.backlog_order(booking("P-BAD-3")))
        del bad["mass"]
        bad["index-to"] = "12ab"
        resp = await raw.put("/post/1.0/user/backlog", json=[good, bad], headers=AUTH)
        body = resp.json()
        assert len(body["result-ids"]) == 1
        assert [e["position"] for e in body["errors"]] == [1]
        descriptions = " | ".join(c["description"] for c in body["errors"][0]["error-codes"])
        assert "mass" in descriptions and "index-to" in descriptions


async def test_cancel_only_before_acceptance(make_sandbox: Any) -> None:
    async with post_env(make_sandbox) as (_sb, client, raw):
        early = await client.book(booking("P-CANCEL-1"))
        await client.cancel(early)
        assert (await raw.get(f"/post/1.0/backlog/{early.external_id}", headers=AUTH)).status_code == 404
        assert (await raw.get("/post/1.0/backlog/search", params={"query": "P-CANCEL-1"}, headers=AUTH)).json() == []

        late = await client.book(booking("P-CANCEL-2"))
        await operate(raw, late.tracking_number, 1, 1)
        with pytest.raises(ExternalRefusal) as err:
            await client.cancel(late)
        assert err.value.code == "ALREADY_ACCEPTED"


async def test_tariff(make_sandbox: Any) -> None:
    async with post_env(make_sandbox) as (_sb, client, raw):
        to_msk = ShipAddress(region="Москва", city="Москва", line="ул. Тверская, 7", postcode="125009")
        to_vvo = ShipAddress(region="Приморский край", city="Владивосток", line="ул. Светланская, 1", postcode="690091")
        light = await client.quote(from_city="Казань", to=to_msk, weight_g=1200)
        assert light == await client.quote(from_city="Kazan", to=to_msk, weight_g=1200)
        assert [q.tariff for q in light] == ["POSTAL_PARCEL", "ONLINE_PARCEL"]
        assert all(q.method == "post" and q.carrier == "post" and q.price > 0 and q.days_min <= q.days_max for q in light)
        heavy = await client.quote(from_city="Казань", to=to_msk, weight_g=8000)
        assert [q.tariff for q in heavy] == ["POSTAL_PARCEL"] and heavy[0].price > light[0].price
        far = await client.quote(from_city="Казань", to=to_vvo, weight_g=1200)
        assert far[0].price > light[0].price and far[0].days_max > light[0].days_max

        wire = await raw.post(
            "/post/1.0/tariff",
            json={"index-from": "420000", "index-to": "125009", "mail-category": "ORDINARY", "mail-type": "POSTAL_PARCEL", "mass": 1200},
            headers=AUTH,
        )
        t = wire.json()
        assert t["total-rate"] + t["total-vat"] == light[0].price
        bad = await raw.post("/post/1.0/tariff", json={"index-from": "420000", "index-to": "1", "mail-type": "POSTAL_PARCEL", "mass": 1}, headers=AUTH)
        assert bad.status_code == 400 and "index-to" in bad.json()["desc"]


async def test_easy_return(make_sandbox: Any) -> None:
    async with post_env(make_sandbox) as (_sb, client, raw):
        ret = await client.book(booking("RET-P-1", is_return=True))
        assert ret.external_id.startswith("return:") and len(ret.tracking_number) == 14
        assert await client.book(booking("RET-P-1", is_return=True)) == ret  # idempotent
        code = await client.return_code(ret)
        assert len(code) == 6 and code.isdigit()
        with pytest.raises(ExternalRefusal):
            await client.cancel(ret)
        await operate(raw, ret.tracking_number, 1, 1, index="191186")  # the customer's office
        await operate(raw, ret.tracking_number, 2, 1, index="420000")  # our Kazan office
        events = await client.track(ret)
        assert [e.status for e in events] == [ShipmentStatus.handed_over, ShipmentStatus.delivered]
        item = next(i for i in (await raw.get("/sandbox/post/items")).json()["items"] if i["barcode"] == ret.tracking_number)
        assert item["kind"] == "return" and item["index_to"] == "420000"


async def test_auto_mode_delivers(make_sandbox: Any) -> None:
    async with post_env(make_sandbox, auto=True, auto_delay_s=0.05) as (_sb, client, _raw):
        b = await client.book(booking("P-AUTO-1"))

        async def done() -> list[Any] | None:
            events = await client.track(b)
            return events if latest_status(events) is ShipmentStatus.delivered else None

        events = await wait_for(done, timeout_s=10, step_s=0.05)
        assert events[0].code == "1.1" and events[-1].code == "2.1"
        assert [e.code for e in events].count("8.0") + [e.code for e in events].count("8.1") >= 2
        assert ShipmentStatus.ready_for_pickup in {e.status for e in events}


async def test_faults_become_external_unavailable(make_sandbox: Any) -> None:
    async with post_env(make_sandbox) as (_sb, client, raw):
        b = await client.book(booking("P-FAULT-1"))
        await raw.post("/sandbox/post/faults", json={"fail_next": 1, "status": 502, "operations": ["tracking"]})
        with pytest.raises(ExternalUnavailable):
            await client.track(b)
        assert await client.track(b) == []


async def test_registry_quotes_both_carriers(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=f"{sb.url}/cdek", timeout=5) as cdek_http, httpx.AsyncClient(
        base_url=f"{sb.url}/post", timeout=5
    ) as post_http:
        registry = CourierRegistry(
            [
                CdekClient(cdek_http, client_id="orkestr", client_secret="orkestr"),
                RussianPostClient(post_http, token="dev-post-token", login="orkestr", password="orkestr"),
            ]
        )
        assert registry.carriers == ["cdek", "post"] and "post" in registry
        with pytest.raises(KeyError):
            registry.get("dhl")
        to = ShipAddress(region="Свердловская область", city="Екатеринбург", line="ул. Ленина, 1", postcode="620014")
        quotes = await registry.quote_all(from_city="Москва", to=to, weight_g=1000)
        assert {q.carrier for q in quotes} == {"cdek", "post"}
        assert [q.price for q in quotes] == sorted(q.price for q in quotes)
        b = await registry.get("post").book(booking("P-REG-1", carrier="post"))
        assert registry.get(b.carrier) is registry["post"]
