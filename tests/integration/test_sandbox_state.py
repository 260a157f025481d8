"""The sandbox keeps its state in a file and its callbacks in an outbox: a restart continues
mid-flight orders, counters never restart, and a callback that could not be delivered is
retried with backoff until the receiver is back, also across a restart (``sandbox.state``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request

from adapters.cdek import CdekClient
from adapters.loyalty import LoyaltyClient
from adapters.notify import NotificationClient
from adapters.pos import PosClient
from conftest import ServedApp, free_port, wait_for
from adapters.wire.couriers import BookingRequest, ParcelItem, Recipient, ShipAddress
from adapters.wire.loyalty import CartLine
from adapters.wire.pos import PosLine, PosTask, PosTaskKind
from sandbox.demo_data import generate

DEMO = generate(42, 2000, small=True)
STORE, SKU = DEMO.stores[0].id, DEMO.skus[0].sku
ACQ = {"userName": "orkestr-api", "password": "orkestr"}
POST_HEADERS = {"Authorization": "AccessToken dev-post-token", "X-User-Authorization": "Basic b3JrZXN0cjpvcmtlc3Ry"}
#: retries fast enough for a test: 0.05 s doubling to 0.2 s
FAST = {"callback_first_delay_s": 0.05, "callback_max_delay_s": 0.2}


def booking(shipment_id: str) -> BookingRequest:
    return BookingRequest(
        shipment_id=shipment_id, carrier="cdek", from_city="Москва", from_location_id="store-msk-1",
        to=ShipAddress(region="Санкт-Петербург", city="Санкт-Петербург", line="Невский пр., д. 28", postcode="191186"),
        recipient=Recipient(name="Анна Иванова", phone="+79161234567"),
        items=(ParcelItem(sku="SKU-1", name="Платье", qty=1, price=499_000),), weight_g=800, declared_value=499_000,
    )


def parcel(order_num: str) -> dict[str, Any]:
    return {"order-num": order_num, "index-to": "191186", "region-to": "Санкт-Петербург", "place-to": "Санкт-Петербург",
            "street-to": "Невский пр.", "house-to": "28", "surname": "Иванова", "given-name": "Анна",
            "tel-address": "79161234567", "mail-type": "POSTAL_PARCEL", "mail-category": "ORDINARY", "mass": 800}


class Receiver:
    """Orkestr's callback endpoints as a stand-in that counts what arrives."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []
        self.app = FastAPI()

        @self.app.get("/callbacks/acquiring")
        async def bank(request: Request) -> str:
            q = request.query_params
            self.got.append(("bank", f"{q['orderNumber']}:{q['operation']}"))
            return "OK"

        @self.app.post("/hooks/cdek")
        async def cdek(request: Request) -> dict[str, str]:
            body = await request.json()
            self.got.append(("cdek", f"{body['attributes']['number']}:{body['attributes']['code']}"))
            return {"status": "ok"}

        @self.app.post("/callbacks/pos")
        async def pos(request: Request) -> dict[str, str]:
            body = await request.json()
            self.got.append(("pos", f"{body['task_id']}:{body['event']}"))
            return {"status": "ok"}


@asynccontextmanager
async def clients(sb: Any) -> AsyncIterator[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=sb.url, timeout=10) as raw, httpx.AsyncClient(
        base_url=f"{sb.url}/cdek", timeout=10
    ) as cdek_http, httpx.AsyncClient(base_url=f"{sb.url}/loyalty", timeout=10) as loyalty_http, httpx.AsyncClient(
        base_url=f"{sb.url}/notify", timeout=10
    ) as notify_http, httpx.AsyncClient(base_url=f"{sb.url}/pos", timeout=10) as pos_http:
        yield {
            "raw": raw,
            "cdek": CdekClient(cdek_http, client_id="orkestr", client_secret="orkestr"),
            "loyalty": LoyaltyClient(loyalty_http, user="orkestr", password="orkestr"),
            "notify": NotificationClient(notify_http, token="dev-notify-token"),
            "pos": PosClient(pos_http, token="dev-pos-token"),
        }


async def test_a_restart_continues_where_the_systems_were(make_sandbox: Any, tmp_path: Any) -> None:
    state = str(tmp_path / "sandbox.db")
    nobody = f"http://127.0.0.1:{free_port()}"
    async with make_sandbox(state_path=state, orkestr_url=nobody) as sb, clients(sb) as c:
        raw = c["raw"]
        # bank: a held payment
        md = (await raw.post("/acquiring/payment/rest/registerPreAuth.do", data={**ACQ, "orderNumber": "ST-1", "amount": "300000",
                                                                                "returnUrl": "https://shop/ok"})).json()["orderId"]
        assert (await raw.post(f"/sandbox/acquiring/orders/{md}/pay", json={"outcome": "approve"})).status_code == 200
        # CDEK: a booking and a webhook subscription
        first = await c["cdek"].book(booking("ST-SHP-1"))
        hook = await c["cdek"].register_webhook(f"{nobody}/hooks/cdek")
        # post: a parcel (its barcode) and the balance it cost
        post_id = (await raw.put("/post/1.0/user/backlog", json=[parcel("ST-P-1")], headers=POST_HEADERS)).json()["result-ids"][0]
        barcode = (await raw.get(f"/post/1.0/backlog/{post_id}", headers=POST_HEADERS)).json()["barcode"]
        balance = (await raw.get("/post/1.0/counterpart/balance", headers=POST_HEADERS)).json()["balance"]
        # loyalty: a purchase begun (bonuses held)
        await c["loyalty"].begin(purchase_id="ST-L-1", transaction_id="ST-T-1", phone="+79160000042",
                                 lines=[CartLine(pos_id=1, sku=SKU, price=100_000, qty=1)], bonus_to_spend=10_000, expected_total=90_000)
        before_loyalty = await c["loyalty"].balance("+79160000042")
        # notifications, a store task, ERP stock and a document
        sms_id = await c["notify"].send_sms(phone="+79160000042", text="Заказ принят", idempotency_key="ST-SMS-1")
        await c["pos"].create_task(location_id=STORE, task=PosTask(task_id="ST-TASK-1", kind=PosTaskKind.ASSEMBLE, order_id="ST-1",
                                                                   order_number="ST-1", lines=(PosLine(SKU, "Платье", 1),), due_at=None,
                                                                   callback_url=f"{nobody}/callbacks/pos"))
        assert (await raw.post("/sandbox/erp/stock", json={"items": [{"sku": SKU, "location_id": STORE, "quantity": 17}]})).status_code == 200
        erp_version = (await raw.post("/sandbox/erp/simulate-sales", json={"count": 3})).json()["version"]

    async with make_sandbox(state_path=state, orkestr_url=nobody) as sb, clients(sb) as c:
        raw = c["raw"]
        status = (await raw.post("/acquiring/payment/rest/getOrderStatusExtended.do", data={**ACQ, "orderId": md})).json()
        assert status["orderStatus"] == 1 and status["paymentAmountInfo"]["approvedAmount"] == 300_000
        deposit = (await raw.post("/acquiring/payment/rest/deposit.do", data={**ACQ, "orderId": md, "amount": "250000"})).json()
        assert deposit["errorCode"] == "0"  # the held payment is still there to capture
        assert (await raw.post("/acquiring/payment/rest/registerPreAuth.do", data={**ACQ, "orderNumber": "ST-1", "amount": "1",
                                                                                  "returnUrl": "https://shop/ok"})).json()["errorCode"] == "1"

        assert (await c["cdek"].order(first.external_id))["number"] == "ST-SHP-1"
        second = await c["cdek"].book(booking("ST-SHP-2"))
        assert int(second.tracking_number) == int(first.tracking_number) + 1  # never 1100000001 again
        assert await c["cdek"].register_webhook(f"{nobody}/hooks/cdek") == hook  # the subscription is still there

        assert (await raw.get(f"/post/1.0/backlog/{post_id}", headers=POST_HEADERS)).json()["barcode"] == barcode
        post_id2 = (await raw.put("/post/1.0/user/backlog", json=[parcel("ST-P-2")], headers=POST_HEADERS)).json()["result-ids"][0]
        barcode2 = (await raw.get(f"/post/1.0/backlog/{post_id2}", headers=POST_HEADERS)).json()["barcode"]
        assert post_id2 == post_id + 1 and barcode2 != barcode and barcode2[-6:-1] == f"{int(barcode[-6:-1]) + 1:05d}"
        assert (await raw.get("/post/1.0/counterpart/balance", headers=POST_HEADERS)).json()["balance"] < balance

        assert await c["loyalty"].balance("+79160000042") == before_loyalty
        committed = await c["loyalty"].commit(purchase_id="ST-L-1", transaction_id="ST-T-1", order_id="ST-1")
        assert committed is not None  # the begun transaction survived and commits
        assert await c["notify"].send_sms(phone="+79160000042", text="Заказ принят", idempotency_key="ST-SMS-1") == sms_id
        tasks = (await raw.get(f"/sandbox/pos/{STORE}/tasks")).json()["tasks"]
        assert [t["task_id"] for t in tasks] == ["ST-TASK-1"]
        stock = (await raw.get("/sandbox/erp/stock", params={"sku": SKU, "location_id": STORE})).json()["items"]
        assert stock[0]["quantity"] <= 17
        changed = (await raw.post("/sandbox/erp/stock", json={"items": [{"sku": SKU, "location_id": STORE, "quantity": 40}]})).json()
        assert changed["version"] == erp_version + 1  # versions go on, a delta reader loses nothing


async def test_failed_callbacks_are_retried_until_the_receiver_is_back_even_across_a_restart(make_sandbox: Any, tmp_path: Any) -> None:
    state = str(tmp_path / "sandbox.db")
    port = free_port()
    receiver_url = f"http://127.0.0.1:{port}"
    receiver = Receiver()
    expected = Counter()
    # the receiving side is down: bank callbacks, CDEK webhooks and a POS event fail and wait
    async with make_sandbox(state_path=state, orkestr_url=receiver_url, **FAST) as sb, clients(sb) as c:
        raw = c["raw"]
        md = (await raw.post("/acquiring/payment/rest/registerPreAuth.do", data={**ACQ, "orderNumber": "CB-1", "amount": "100000",
                                                                                "returnUrl": "https://shop/ok"})).json()["orderId"]
        await raw.post(f"/sandbox/acquiring/orders/{md}/pay", json={"outcome": "approve"})
        await raw.post("/acquiring/payment/rest/deposit.do", data={**ACQ, "orderId": md, "amount": "100000"})
        expected.update({("bank", "CB-1:approved"): 1, ("bank", "CB-1:deposited"): 1})
        await c["cdek"].register_webhook(f"{receiver_url}/hooks/cdek")
        b = await c["cdek"].book(booking("CB-SHP-1"))
        await raw.post(f"/sandbox/courier/orders/{b.external_id}/status", json={"code": "DELIVERED"})
        expected.update({("cdek", f"CB-SHP-1:{code}"): 1 for code in ("ACCEPTED", "CREATED", "DELIVERED")})
        await c["pos"].create_task(location_id=STORE, task=PosTask(task_id="CB-TASK-1", kind=PosTaskKind.ASSEMBLE, order_id="CB-1",
                                                                   order_number="CB-1", lines=(PosLine(SKU, "Платье", 1),), due_at=None,
                                                                   callback_url=f"{receiver_url}/callbacks/pos"))
        r = await raw.post(f"/sandbox/pos/{STORE}/tasks/CB-TASK-1/assembled")
        assert r.status_code == 200 and r.json()["callback_status"] is None  # the staff saw nobody answer
        expected.update({("pos", "CB-TASK-1:assembled"): 1})

        async def retried() -> bool:
            rows = (await raw.get("/sandbox/outbox")).json()
            heads = {row["key"]: row for row in reversed(rows)}  # the first queued of each key goes first
            return len(rows) == sum(expected.values()) and len(heads) == 3 and all(h["attempts"] >= 2 for h in heads.values())

        await wait_for(retried, timeout_s=10)  # each key's first callback has failed more than once by now

    # the sandbox restarts; then the receiver comes up: everything arrives, each exactly once
    async with make_sandbox(state_path=state, orkestr_url=receiver_url, **FAST) as sb, ServedApp(receiver.app, port=port):
        async with httpx.AsyncClient(base_url=sb.url) as raw:

            async def all_arrived() -> bool:
                return Counter(receiver.got) == expected and (await raw.get("/sandbox/outbox")).json() == []

            await wait_for(all_arrived, timeout_s=15)
            await asyncio.sleep(0.5)  # nothing more comes
            assert Counter(receiver.got) == expected
            # in order per bank order and per CDEK order
            assert [k for s, k in receiver.got if s == "bank"] == ["CB-1:approved", "CB-1:deposited"]
            assert [k for s, k in receiver.got if s == "cdek"] == ["CB-SHP-1:ACCEPTED", "CB-SHP-1:CREATED", "CB-SHP-1:DELIVERED"]
            order = next(o for o in (await raw.get("/sandbox/courier/orders")).json()["orders"] if o["number"] == "CB-SHP-1")
            assert all(d["delivered"] and d["http_status"] == 200 for d in order["webhook_deliveries"])
            detail = (await raw.get(f"/sandbox/acquiring/orders/{md}")).json()
            assert [cb["state"] for cb in detail["callbacks"]] == ["delivered", "delivered"]


async def test_retries_stop_after_the_attempt_limit(make_sandbox: Any) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    async with make_sandbox(orkestr_url=nobody, callback_max_attempts=3, **FAST) as sb, httpx.AsyncClient(base_url=sb.url) as raw:
        md = (await raw.post("/acquiring/payment/rest/registerPreAuth.do", data={**ACQ, "orderNumber": "GU-1", "amount": "100",
                                                                                "returnUrl": "https://shop/ok"})).json()["orderId"]
        await raw.post(f"/sandbox/acquiring/orders/{md}/pay", json={"outcome": "approve"})

        async def given_up() -> bool:
            detail = (await raw.get(f"/sandbox/acquiring/orders/{md}")).json()
            return detail["callbacks"][0]["state"] == "failed"

        await wait_for(given_up, timeout_s=10)
        assert (await raw.get("/sandbox/outbox")).json() == []
