"""Issue 4 end to end over real HTTP: click & collect, click & reserve, orders from the store tablet,
the last unit in a store wanted by three channels, customer messages."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from helpers import courier_order, fresh_sku, ledger_row, md_order_of, next_phone, order_body, pay, task_for

pytestmark = pytest.mark.e2e


def reservation_body(sku: str, store: str, qty: int = 1, *, phone: str | None = None, channel: str = "web",
                     **extra: Any) -> dict[str, Any]:
    return {"channel": channel, "store_id": store, "lines": [{"sku": sku, "qty": qty}],
            "customer": {"phone": phone or next_phone(), "name": "Ирина Соколова", "email": "irina@example.ru"},
            **extra}


def pickup_body(sku: str, store: str, qty: int = 1, *, phone: str | None = None, pay_on_pickup: bool = False,
                channel: str = "web") -> dict[str, Any]:
    body = order_body(sku, qty, phone=phone)
    body["channel"] = channel
    body["delivery"] = {"method": "pickup", "store_id": store}
    body["payment"] = {"method": "on_pickup" if pay_on_pickup else "card"}
    return body


async def texts_for(stack: Any, phone: str) -> list[str]:
    r = await stack.sandbox.get("/sandbox/notifications", params={"phone": phone})
    r.raise_for_status()
    data = r.json()
    return [m["text"] for m in (data["messages"] if isinstance(data, dict) else data)]


async def wait_reservation(stack: Any, rid: str, status: str, timeout_s: float = 30) -> dict[str, Any]:
    return await stack.wait_status(f"/v1/reservations/{rid}", status, timeout_s=timeout_s)


async def wait_texts(stack: Any, phone: str, needle: str, timeout_s: float = 15) -> list[str]:
    texts: list[str] = []
    for _ in range(int(timeout_s / 0.1)):
        texts = await texts_for(stack, phone)
        if any(needle in t for t in texts):
            return texts
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message with {needle!r} for {phone}: {texts}")


async def pos(stack: Any, store: str, task_id: str, action: str, body: dict[str, Any] | None = None) -> None:
    r = await stack.sandbox.post(f"/sandbox/pos/{store}/tasks/{task_id}/{action}", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["callback_status"] == 200, r.json()


async def test_click_and_collect_paid_online_set_aside_ready_collected(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 2})
    phone = next_phone()
    r = await stack.api.post("/v1/orders", json=pickup_body(sku, "MSK-002", phone=phone))
    assert r.status_code == 201, r.text
    order_id, total = r.json()["order_id"], r.json()["totals"]["total"]
    assert r.json()["totals"]["delivery"] == 0
    assert await ledger_row(stack, sku, "MSK-002") == (2, 1)
    order = (await stack.api.get(f"/v1/orders/{order_id}")).json()
    assert "всё есть в магазине MSK-002" in order["extra"]["pickup"]["note"]

    await pay(stack, order_id)
    task = await task_for(stack, "MSK-002", order_id, kind="set_aside")
    assert task["task_id"] == f"reservation-{order_id}:set_aside"
    await pos(stack, "MSK-002", task["task_id"], "ready")
    await stack.wait_order(order_id, "ready_for_pickup")
    texts = await wait_texts(stack, phone, "готов к выдаче")
    assert any(order_id in t and "Заберите до" in t for t in texts), texts
    assert await ledger_row(stack, sku, "MSK-002") == (2, 1)  # still held on the shelf

    await pos(stack, "MSK-002", task["task_id"], "issued")
    order = await stack.wait_order(order_id, "completed")
    assert await ledger_row(stack, sku, "MSK-002") == (1, 0)  # one sold, nothing held
    assert order["payment"]["state"] == "captured" and order["payment"]["captured"] == total
    md = await md_order_of(stack, order_id)
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{md}")).json()
    assert bank.get("deposited", bank.get("paymentAmountInfo", {}).get("depositedAmount")) == total
    stage = (await stack.api.get(f"/v1/reservations/{order_id}")).json()
    assert stage["status"] == "collected" and stage["order_id"] == order_id and stage["prepaid"] is True
    texts = await wait_texts(stack, phone, "выдан")
    assert any(order_id in t and "принят" in t for t in texts)


async def test_click_and_reserve_expires_releases_and_tells_store_and_customer(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-003": 1})
    phone = next_phone()
    r = await stack.api.post("/v1/reservations", json=reservation_body(sku, "MSK-003", phone=phone, hold_minutes=0.05))
    assert r.status_code == 201, r.text
    rid = r.json()["reservation_id"]
    assert r.json()["status"] == "setting_aside" and r.json()["amount"] > 0
    assert await ledger_row(stack, sku, "MSK-003") == (1, 1)
    task = await task_for(stack, "MSK-003", rid, kind="set_aside")
    await pos(stack, "MSK-003", task["task_id"], "ready")
    await wait_texts(stack, phone, "готов к выдаче")

    res = await wait_reservation(stack, rid, "expired", timeout_s=20)  # a 3-second hold
    assert await ledger_row(stack, sku, "MSK-003") == (1, 0)  # back on sale
    assert {"ready", "released", "put_back", "expired"} <= {e["kind"] for e in res["timeline"]}
    tasks = {t["kind"]: t for t in await stack.pos_tasks("MSK-003") if t["order_id"] == rid}
    assert tasks["set_aside"]["status"] == "cancelled" and tasks["put_back"]["status"] == "new"
    texts = await wait_texts(stack, phone, "истёк")
    assert any(rid in t and "Резерв" in t for t in texts)
    # the store can no longer hand it out, and a late cancel is refused clearly
    r = await stack.sandbox.post(f"/sandbox/pos/MSK-003/tasks/{task['task_id']}/issued")
    assert r.status_code == 409
    r = await stack.api.post(f"/v1/reservations/{rid}/cancel", json={"reason": "поздно"})
    assert r.status_code == 409 and "expired" in r.json()["message"]


async def test_click_and_reserve_partial_pickup_paid_at_the_till(stack: Any) -> None:
    sku = await fresh_sku(stack, {"SPB-001": 3})
    r = await stack.api.post("/v1/reservations", json=reservation_body(sku, "SPB-001", 2, channel="app"))
    assert r.status_code == 201, r.text
    rid, amount = r.json()["reservation_id"], r.json()["amount"]
    task = await task_for(stack, "SPB-001", rid, kind="set_aside")
    await pos(stack, "SPB-001", task["task_id"], "ready")
    await wait_reservation(stack, rid, "ready")
    await pos(stack, "SPB-001", task["task_id"], "issued", {"lines": [{"sku": sku, "qty": 1}], "paid_amount": amount // 2})
    res = await wait_reservation(stack, rid, "collected")
    assert res["taken"] == [{"sku": sku, "qty": 1}] and res["amount_taken"] == amount // 2
    assert res["paid_amount"] == amount // 2
    assert await ledger_row(stack, sku, "SPB-001") == (2, 0)  # one sold, the other back on sale


async def test_cancel_reservation_through_the_api(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-001": 1})
    r = await stack.api.post("/v1/reservations", json=reservation_body(sku, "MSK-001"))
    rid = r.json()["reservation_id"]
    r = await stack.api.post(f"/v1/reservations/{rid}/cancel", json={"reason": "купила в другом месте"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert await ledger_row(stack, sku, "MSK-001") == (1, 0)
    r = await stack.api.post(f"/v1/reservations/{rid}/cancel", json={"reason": "ещё раз"})
    assert r.status_code == 409
    r = await stack.api.get("/v1/reservations/NO-SUCH")
    assert r.status_code == 404


async def test_three_channels_want_the_last_unit_one_wins(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-001": 1})
    results = await asyncio.gather(*[
        stack.api.post("/v1/reservations", json=reservation_body(sku, "MSK-001", channel=ch))
        for ch in ("web", "app", "store")])
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409, 409], [r.text for r in results]
    for refused in (r for r in results if r.status_code == 409):
        body = refused.json()
        assert body["error"] == "out_of_stock" and body["errors"][0]["field"] == "lines"
        assert "MSK-001" in body["message"] and sku in body["message"]
    assert await ledger_row(stack, sku, "MSK-001") == (1, 1)
    # and a click & collect order for the same unit is refused too (nothing anywhere else)
    r = await stack.api.post("/v1/orders", json=pickup_body(sku, "MSK-001"))
    assert r.status_code == 409 and r.json()["error"] == "out_of_stock"


async def test_reservation_idempotency_key_replays_and_refuses_another_body(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 3})
    body = reservation_body(sku, "MSK-002")
    key = f"res-{next_phone()}"
    first = await stack.api.post("/v1/reservations", json=body, headers={"Idempotency-Key": key})
    again = await stack.api.post("/v1/reservations", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = await stack.api.post("/v1/reservations", json=reservation_body(sku, "MSK-002", 2),
                                 headers={"Idempotency-Key": key})
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reuse"
    assert await ledger_row(stack, sku, "MSK-002") == (3, 1)
    r = await stack.api.post("/v1/reservations", json=reservation_body(sku, "NOPE-1"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "store_id"


async def test_store_tablet_order_delivered_home_from_the_warehouse(stack: Any) -> None:
    sku = await fresh_sku(stack, {"WH-ONLINE": 1})
    body = order_body(sku)
    body["channel"] = "store"
    r = await stack.api.post("/v1/orders", json=body)
    assert r.status_code == 201, r.text
    order = (await stack.api.get(f"/v1/orders/{r.json()['order_id']}")).json()
    assert order["channel"] == "store" and [s["location_id"] for s in order["shipments"]] == ["WH-ONLINE"]
    assert await ledger_row(stack, sku, "WH-ONLINE") == (1, 1)
    bad = pickup_body(sku, "MSK-001")
    bad["delivery"] = body["delivery"]
    bad["payment"] = {"method": "on_pickup"}
    r = await stack.api.post("/v1/orders", json=bad)
    assert r.status_code == 422 and "on_pickup" in r.json()["message"]


async def test_store_tablet_order_to_the_store_comes_by_transfer_and_is_paid_at_the_till(stack: Any) -> None:
    sku = await fresh_sku(stack, {"SPB-001": 1})  # (the courier sandbox does not know Podolsk, WH-ONLINE's town)
    phone = next_phone()
    r = await stack.api.post("/v1/orders", json=pickup_body(sku, "MSK-001", phone=phone, pay_on_pickup=True,
                                                            channel="store"))
    assert r.status_code == 201, r.text
    order_id, total = r.json()["order_id"], r.json()["totals"]["total"]
    assert r.json()["status"] == "assembling" and r.json()["payment_url"] is None
    order = (await stack.api.get(f"/v1/orders/{order_id}")).json()
    assert order["extra"]["pickup"]["transfer_from"] == ["SPB-001"]
    assert order["shipments"][0]["transfer_to"] == "MSK-001" and order["shipments"][0]["promised_to"]
    texts = await wait_texts(stack, phone, "оплата при получении")

    assemble = await task_for(stack, "SPB-001", order_id)
    await pos(stack, "SPB-001", assemble["task_id"], "assembled")
    parcel = await courier_order(stack, order_id)
    for code in ("RECEIVED_AT_SHIPMENT_WAREHOUSE", "DELIVERED"):
        r = await stack.sandbox.post(f"/sandbox/courier/orders/{parcel['uuid']}/status", json={"code": code})
        assert r.status_code == 200, r.text
    task = await task_for(stack, "MSK-001", order_id, kind="set_aside")  # once the transfer has arrived
    assert await ledger_row(stack, sku, "SPB-001") == (0, 0)  # left the St Petersburg store
    await pos(stack, "MSK-001", task["task_id"], "ready")
    await stack.wait_order(order_id, "ready_for_pickup")
    await pos(stack, "MSK-001", task["task_id"], "issued", {"paid_amount": total})
    order = await stack.wait_order(order_id, "completed")
    assert order["payment"]["captured"] == total and order["payment"]["md_order"] is None
    texts = await texts_for(stack, phone)
    assert not any("передан в службу доставки" in t for t in texts)  # a transfer is not "shipped" to the customer
    assert any("готов к выдаче" in t for t in texts)


async def test_customer_message_is_sent_once_per_status_change(stack: Any) -> None:
    """NotifyActivities keys each message by workflow id and status: a retried step sends nothing new."""
    from temporalio.testing import ActivityEnvironment

    from activities.notify import NotifyActivities
    from adapters.notify import NotificationClient
    from contracts.steps import CustomerNotice

    phone = next_phone()
    async with httpx.AsyncClient(base_url=f"{stack.sandbox_url}/notify/", timeout=10) as http:
        acts = NotifyActivities(NotificationClient(http, token=stack.settings.notify_token))
        notice = CustomerNotice(key="reservation-IDEM1:ready", phone=phone, email="a@example.ru", event="ready",
                                params={"number": "IDEM1", "store": "Москва", "until": "26.11.2026 21:00"})
        env = ActivityEnvironment()
        await env.run(acts.notify_customer, notice)
        await env.run(acts.notify_customer, notice)  # a retry after a lost answer
        await env.run(acts.notify_customer, CustomerNotice(**{**notice.__dict__, "key": "reservation-IDEM1:reminder",
                                                              "event": "reminder"}))
    texts = await texts_for(stack, phone)
    assert len(texts) == 2 and "IDEM1" in texts[0] and "готов к выдаче" in texts[0] and "до 26.11.2026" in texts[0]
    assert "Напоминаем" in texts[1]
