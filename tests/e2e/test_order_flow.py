"""Issue 2 end to end: a storefront order through all five outside systems over real HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import pytest

from helpers import courier_order, fresh_sku, ledger_row, md_order_of, next_phone, order_body, pay, task_for

pytestmark = pytest.mark.e2e


async def test_order_paid_assembled_delivered_completes_with_money_and_bonus_right(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 3})
    phone = next_phone()
    r = await stack.api.post("/v1/orders", json=order_body(sku, 2, phone=phone, bonus=5_000))
    assert r.status_code == 201, r.text
    created = r.json()
    order_id, totals = created["order_id"], created["totals"]
    assert created["status"] == "awaiting_payment" and created["payment_url"].startswith(stack.sandbox_url)
    assert totals["total"] == totals["subtotal"] - totals["discount"] - totals["bonus_spent"] + totals["delivery"]
    assert totals["bonus_spent"] == 5_000
    assert await ledger_row(stack, sku, "MSK-002") == (3, 2)  # held, not yet sold

    await pay(stack, order_id)
    await stack.wait_order(order_id, "assembling")
    task = await task_for(stack, "MSK-002", order_id)
    r = await stack.sandbox.post(f"/sandbox/pos/MSK-002/tasks/{task['task_id']}/assembled")
    assert r.status_code == 200, r.text
    parcel = await courier_order(stack, order_id)
    for code in ("RECEIVED_AT_SHIPMENT_WAREHOUSE", "DELIVERED"):
        r = await stack.sandbox.post(f"/sandbox/courier/orders/{parcel['uuid']}/status", json={"code": code})
        assert r.status_code == 200, r.text
    order = await stack.wait_order(order_id, "completed")

    # the customer's view: every step is in the timeline, the shipment is delivered with its tracking number
    kinds = [e["kind"] for e in order["timeline"]]
    for expected in ("placed", "sourced", "priced", "payment_registered", "paid", "erp_exported",
                     "shipment_assembling", "shipment_assembled", "shipment_booked", "shipment_delivered",
                     "captured", "loyalty_committed", "completed"):
        assert expected in kinds, f"{expected} missing from {kinds}"
    assert order["shipments"][0]["status"] == "delivered" and order["shipments"][0]["tracking_number"]
    # the bank: held then deposited exactly the total, once
    md = await md_order_of(stack, order_id)
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{md}")).json()
    assert bank["deposited"] == totals["total"] if "deposited" in bank else bank["paymentAmountInfo"]["depositedAmount"] == totals["total"]
    # the ledger: two units sold from MSK-002, nothing left reserved
    assert await ledger_row(stack, sku, "MSK-002") == (1, 0)
    # the ERP received the order and the sale
    docs = (await stack.sandbox.get("/sandbox/erp/documents")).json()["documents"]
    assert any(d["Type"] == "CustomerOrder" and d["Number"] == order_id for d in docs)
    # loyalty: the write-off is final, the accrual is pending until the return window closes
    cust = (await stack.sandbox.get(f"/sandbox/loyalty/customers/{phone}")).json()
    assert cust["pending"] > 0 and cust["held"] == 0
    # support finds it by phone and by status in the projection
    listed = (await stack.api.get("/v1/orders", params={"phone": phone})).json()
    assert [o["order_id"] for o in listed["items"]] == [order_id] and listed["total"] == 1
    completed = (await stack.api.get("/v1/orders", params={"status": "completed", "limit": 200})).json()
    assert order_id in [o["order_id"] for o in completed["items"]]
    assert (await stack.api.get("/v1/orders", params={"status": "nonsense"})).status_code == 422
    # the customer got messages in Russian with the order number
    msgs = (await stack.sandbox.get("/sandbox/notifications", params={"phone": phone})).json()
    texts = [m["text"] for m in (msgs["messages"] if isinstance(msgs, dict) else msgs)]
    assert any(order_id in t and "принят" in t for t in texts) and any("доставлен" in t for t in texts)


async def test_invalid_input_names_the_field_and_creates_nothing(stack: Any) -> None:
    sku = await fresh_sku(stack, {"WH-ONLINE": 5})
    before = (await stack.api.get("/v1/orders", params={"limit": 1})).json()["total"]
    bad = order_body(sku)
    bad["customer"]["phone"] = "call me"
    r = await stack.api.post("/v1/orders", json=bad)
    assert r.status_code == 422 and "customer.phone" in r.json()["message"]
    bad = order_body(sku)
    bad["lines"][0]["qty"] = 0
    r = await stack.api.post("/v1/orders", json=bad)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lines[0].qty"
    r = await stack.api.post("/v1/orders", json=order_body("NO-SUCH-SKU"))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lines[0].sku"
    r = await stack.api.post("/v1/orders", json=order_body(sku, 6))  # only 5 in the network
    assert r.status_code == 409 and r.json()["error"] == "out_of_stock" and sku in r.json()["message"]
    assert await ledger_row(stack, sku, "WH-ONLINE") == (5, 0)
    assert (await stack.api.get("/v1/orders", params={"limit": 1})).json()["total"] == before


async def test_idempotency_key_same_body_same_order_other_body_refused(stack: Any) -> None:
    sku = await fresh_sku(stack, {"WH-ONLINE": 5})
    body = order_body(sku)
    key = f"key-{next_phone()}"
    first = await stack.api.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    again = await stack.api.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers.get("Idempotent-Replayed") == "true"
    other = await stack.api.post("/v1/orders", json=order_body(sku, 2), headers={"Idempotency-Key": key})
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reuse"
    assert await ledger_row(stack, sku, "WH-ONLINE") == (5, 1)


async def test_two_concurrent_posts_with_one_key_create_one_order(stack: Any) -> None:
    sku = await fresh_sku(stack, {"WH-ONLINE": 5})
    body = order_body(sku)
    key = f"race-{next_phone()}"
    results = await asyncio.gather(*[stack.api.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
                                     for _ in range(2)])
    codes = sorted(r.status_code for r in results)
    created = [r.json()["order_id"] for r in results if r.status_code == 201]
    assert codes in ([201, 201], [201, 409]), [r.text for r in results]
    assert len(set(created)) == 1
    assert await ledger_row(stack, sku, "WH-ONLINE") == (5, 1)  # one order holds one unit


async def test_forged_acquiring_callback_is_refused_and_changes_nothing(stack: Any) -> None:
    sku = await fresh_sku(stack, {"WH-ONLINE": 2})
    r = await stack.api.post("/v1/orders", json=order_body(sku))
    order_id = r.json()["order_id"]
    md = await md_order_of(stack, order_id)
    params = {"mdOrder": md, "orderNumber": f"order-{order_id}", "operation": "approved", "status": "1"}
    payload = "".join(f"{k};{v};" for k, v in sorted(params.items()))
    forged = hmac.new(b"not-the-secret", payload.encode(), hashlib.sha256).hexdigest().upper()
    r = await stack.api.get("/callbacks/acquiring", params={**params, "checksum": forged})
    assert r.status_code == 400 and "checksum" in r.json()["message"]
    await asyncio.sleep(0.5)
    order = (await stack.api.get(f"/v1/orders/{order_id}")).json()
    assert order["status"] == "awaiting_payment" and order["payment"]["state"] == "registered"
    # the same parameters signed with the shared secret are accepted
    good = hmac.new(stack.settings.acquiring_callback_secret.encode(), payload.encode(), hashlib.sha256).hexdigest().upper()
    r = await stack.api.get("/callbacks/acquiring", params={**params, "checksum": good})
    assert r.status_code == 200
    await stack.wait_order(order_id, "assembling")


async def test_declined_payment_releases_stock_and_loyalty(stack: Any) -> None:
    sku = await fresh_sku(stack, {"WH-ONLINE": 2})
    phone = next_phone()
    r = await stack.api.post("/v1/orders", json=order_body(sku, phone=phone, bonus=3_000))
    order_id = r.json()["order_id"]
    assert await ledger_row(stack, sku, "WH-ONLINE") == (2, 1)
    await pay(stack, order_id, "decline")
    order = await stack.wait_order(order_id, "cancelled")
    assert order["payment"]["state"] == "declined"
    assert await ledger_row(stack, sku, "WH-ONLINE") == (2, 0)
    cust = (await stack.sandbox.get(f"/sandbox/loyalty/customers/{phone}")).json()
    assert cust["held"] == 0


async def test_operator_changes_the_address_before_the_courier_books_it(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-001": 1})
    r = await stack.api.post("/v1/orders", json=order_body(sku))
    order_id = r.json()["order_id"]
    await pay(stack, order_id)
    task = await task_for(stack, "MSK-001", order_id)
    spb = {"region": "RU-SPE", "city": "Санкт-Петербург", "line": "Невский пр., 28", "postcode": "191186"}
    r = await stack.api.post(f"/v1/orders/{order_id}/address", json={"address": {**spb, "postcode": "19"}, "by": "op"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "address.postcode"
    r = await stack.api.post(f"/v1/orders/{order_id}/address", json={"address": spb, "by": "op-7"})
    assert r.status_code == 200, r.text
    assert r.json()["delivery"]["address"]["city"] == "Санкт-Петербург"
    r = await stack.sandbox.post(f"/sandbox/pos/MSK-001/tasks/{task['task_id']}/assembled")
    assert r.status_code == 200
    parcel = await courier_order(stack, order_id)
    assert parcel["to_city"] == "Saint Petersburg"  # the courier got the new address (CDEK names cities in English)
    for _ in range(100):
        order = (await stack.api.get(f"/v1/orders/{order_id}")).json()
        if order["shipments"][0]["status"] == "booked":
            break
        await asyncio.sleep(0.1)
    r = await stack.api.post(f"/v1/orders/{order_id}/address", json={"address": spb, "by": "op-7"})
    assert r.status_code == 409 and "courier" in r.json()["message"]
    assert order["delivery"]["address"]["city"] == "Санкт-Петербург"
    assert any(e["kind"] == "address_changed" for e in order["timeline"])
    assert (await stack.api.post("/v1/orders/NOSUCH/address", json={"address": spb, "by": "x"})).status_code == 404
