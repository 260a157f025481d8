"""Operator edits of an order's lines over real HTTP (``POST /v1/orders/{id}/lines``): the bank,
the ledger, the store's POS and the courier checked after each step; bad edits answered with a
clear 4xx that changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from helpers import fresh_sku, ledger_row, md_order_of, order_body, pay, task_for
from test_people_flow import bank_order, deliver

pytestmark = pytest.mark.e2e


async def new_task(stack: Any, location_id: str, order_id: str, suffix: str) -> dict[str, Any]:
    for _ in range(300):
        for t in await stack.pos_tasks(location_id):
            if t["order_id"] == order_id and t["task_id"].endswith(suffix):
                return t
        await asyncio.sleep(0.1)
    raise AssertionError(f"no POS task ending {suffix} for {order_id}")


async def paid_at_the_store(stack: Any, qty: int) -> tuple[str, str, int, dict[str, Any]]:
    """A paid order of ``qty`` units of a fresh SKU (2 units at MSK-003) given to the store:
    (sku, order id, total held, the POS task)."""
    a = await fresh_sku(stack, {"MSK-003": 2})
    r = await stack.api.post("/v1/orders", json=order_body(a, qty))
    assert r.status_code == 201, r.text
    order_id, held = r.json()["order_id"], r.json()["totals"]["total"]
    await pay(stack, order_id)
    return a, order_id, held, await task_for(stack, "MSK-003", order_id)


async def test_unpaid_order_edited_gets_a_new_link_and_the_bank_captures_the_new_total(stack: Any) -> None:
    a = await fresh_sku(stack, {"MSK-003": 3})
    b = await fresh_sku(stack, {"MSK-003": 1})
    c = await fresh_sku(stack, {"MSK-003": 2})
    body = order_body(a, 1)
    body["lines"].append({"sku": b, "qty": 1})
    r = await stack.api.post("/v1/orders", json=body)
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    old_md = await md_order_of(stack, order_id)
    url = f"/v1/orders/{order_id}/lines"

    # bad edits: 4xx naming the field, nothing changes
    bad = [
        ({"lines": [{"sku": "NO-SUCH-SKU", "qty": 1}], "by": "op"}, 422, "lines[0].sku"),
        ({"lines": [{"sku": a, "qty": -1}], "by": "op"}, 422, "lines[0].qty"),
        ({"lines": [{"sku": a, "qty": 2}]}, 422, "by"),
        ({"lines": [{"sku": a, "qty": 9}], "by": "op"}, 409, "lines[0].sku"),  # only 2 more in the store
    ]
    for payload, status, field in bad:
        r = await stack.api.post(url, json=payload)
        assert r.status_code == status, (payload, r.text)
        assert r.json()["errors"][0]["field"] == field, r.text
    assert (await stack.api.post("/v1/orders/NOSUCH/lines", json={"lines": [{"sku": a, "qty": 1}],
                                                                 "by": "op"})).status_code == 404
    assert await ledger_row(stack, a, "MSK-003") == (3, 1) and await md_order_of(stack, order_id) == old_md

    r = await stack.api.post(url, json={"lines": [{"sku": a, "qty": 2}, {"sku": b, "qty": 0}, {"sku": c, "qty": 1}],
                                        "by": "op-ivanova", "reason": "клиент позвонил"})
    assert r.status_code == 200, r.text
    edited = r.json()
    total = edited["totals"]["total"]
    assert {(l["sku"], l["qty"]) for l in edited["lines"]} == {(a, 2), (c, 1)} and edited["payment_url"]
    # the bank: the old link is closed, the new one asks for the new total
    old = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{old_md}")).json()
    assert old["state"] == "declined" and old["approved"] == 0
    assert (await stack.sandbox.post(f"/sandbox/acquiring/orders/{old_md}/pay",
                                     json={"outcome": "approve"})).status_code == 409
    new_md = await md_order_of(stack, order_id)
    new = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{new_md}")).json()
    assert new["order_number"].startswith(f"order-{order_id}~e")  # numbered per edit attempt
    assert new["amount"] == total and sum(i["itemAmount"] for i in new["bundle"]["cartItems"]["items"]) == total
    # the ledger: b released, a grown by one, c held
    assert [await ledger_row(stack, s, "MSK-003") for s in (a, b, c)] == [(3, 2), (1, 0), (2, 1)]
    order = (await stack.api.get(f"/v1/orders/{order_id}")).json()
    assert order["payment_url"] == edited["payment_url"] and order["totals"]["total"] == total
    assert any(e["kind"] == "order_edited" and "op-ivanova" in e["message"] for e in order["timeline"])

    await pay(stack, order_id)
    pos = await task_for(stack, "MSK-003", order_id)
    assert {(l["sku"], l["qty"]) for l in pos["lines"]} == {(a, 2), (c, 1)}
    done = await deliver(stack, order_id, "MSK-003", pos["task_id"])
    assert done["status"] == "completed" and done["payment"]["captured"] == total
    assert (await stack.sandbox.get(f"/sandbox/acquiring/orders/{new_md}")).json()["deposited"] == total
    assert [await ledger_row(stack, s, "MSK-003") for s in (a, b, c)] == [(1, 0), (1, 0), (1, 0)]
    r = await stack.api.post(url, json={"lines": [{"sku": a, "qty": 1}], "by": "op"})
    assert r.status_code == 409 and r.json()["error"] == "cannot_edit"


async def test_paid_order_edited_before_assembly_restarts_the_store_task_and_captures_less(stack: Any) -> None:
    a, order_id, held, first = await paid_at_the_store(stack, 2)
    r = await stack.api.post(f"/v1/orders/{order_id}/lines", json={"lines": [{"sku": a, "qty": 3}], "by": "op"})
    assert r.status_code == 409 and r.json()["error"] == "out_of_stock", r.text  # refused before the store stops
    r = await stack.api.post(f"/v1/orders/{order_id}/lines", json={"lines": [{"sku": a, "qty": 1}], "by": "op-petrov"})
    assert r.status_code == 200, r.text
    total = r.json()["totals"]["total"]
    assert total < held and r.json()["payment_url"] is None
    second = await new_task(stack, "MSK-003", order_id, ":assemble:2")
    assert {(l["sku"], l["qty"]) for l in second["lines"]} == {(a, 1)}
    old = [t for t in await stack.pos_tasks("MSK-003") if t["task_id"] == first["task_id"]][0]
    assert old["status"] == "cancelled"
    assert await ledger_row(stack, a, "MSK-003") == (2, 1)
    for _ in range(100):  # the ERP's customer order (exported at payment) follows the edit
        docs = (await stack.sandbox.get("/sandbox/erp/documents", params={"type": "CustomerOrder"})).json()["documents"]
        doc = next(d for d in docs if d["Number"] == order_id)
        if doc["Items"][0]["Quantity"] == 1:
            break
        await asyncio.sleep(0.1)
    assert [(i["Sku"], i["Quantity"]) for i in doc["Items"]] == [(a, 1)] and round(doc["Amount"] * 100) == total
    done = await deliver(stack, order_id, "MSK-003", second["task_id"])
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{await md_order_of(stack, order_id)}")).json()
    assert bank["approved"] == held and bank["deposited"] == total == done["payment"]["captured"]
    assert await ledger_row(stack, a, "MSK-003") == (1, 0)


async def test_paid_order_made_dearer_changes_once_the_difference_is_paid(stack: Any) -> None:
    a, order_id, held, first = await paid_at_the_store(stack, 1)
    r = await stack.api.post(f"/v1/orders/{order_id}/lines", json={"lines": [{"sku": a, "qty": 2}], "by": "op-petrov"})
    assert r.status_code == 200, r.text
    diff = r.json()["pending_payment"]
    assert diff > 0 and r.json()["payment_url"]
    r2 = await stack.api.post(f"/v1/orders/{order_id}/lines", json={"lines": [{"sku": a, "qty": 1}], "by": "op"})
    assert r2.status_code == 409 and "another edit" in r2.json()["message"]
    assert await ledger_row(stack, a, "MSK-003") == (2, 2)  # the second unit held while the customer pays
    extra = await bank_order(stack, f"order-{order_id}~2")
    assert extra["amount"] == diff
    r = await stack.sandbox.post(f"/sandbox/acquiring/orders/{extra['md_order']}/pay", json={"outcome": "approve"})
    assert r.status_code == 200, r.text
    second = await new_task(stack, "MSK-003", order_id, ":assemble:2")
    assert {(l["sku"], l["qty"]) for l in second["lines"]} == {(a, 2)}
    assert [t for t in await stack.pos_tasks("MSK-003") if t["task_id"] == first["task_id"]][0]["status"] == "cancelled"
    assert await ledger_row(stack, a, "MSK-003") == (2, 2)
    done = await deliver(stack, order_id, "MSK-003", second["task_id"])
    main = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{await md_order_of(stack, order_id)}")).json()
    assert main["deposited"] == held and (await bank_order(stack, f"order-{order_id}~2"))["deposited"] == diff
    assert done["totals"]["total"] == held + diff and await ledger_row(stack, a, "MSK-003") == (0, 0)


async def test_click_and_collect_edited_before_payment_is_set_aside_with_the_new_lines(stack: Any) -> None:
    from test_pickup_flow import pickup_body, pos

    a = await fresh_sku(stack, {"MSK-002": 3})
    b = await fresh_sku(stack, {"MSK-002": 1})
    r = await stack.api.post("/v1/orders", json=pickup_body(a, "MSK-002"))
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    r = await stack.api.post(f"/v1/orders/{order_id}/lines", json={"lines": [{"sku": a, "qty": 2}, {"sku": b, "qty": 1}],
                                                                    "by": "op-ivanova"})
    assert r.status_code == 200, r.text
    total = r.json()["totals"]["total"]
    assert [await ledger_row(stack, s, "MSK-002") for s in (a, b)] == [(3, 2), (1, 1)]
    await pay(stack, order_id)
    task = await task_for(stack, "MSK-002", order_id, kind="set_aside")
    assert {(l["sku"], l["qty"]) for l in task["lines"]} == {(a, 2), (b, 1)}
    r = await stack.api.post(f"/v1/orders/{order_id}/lines", json={"lines": [{"sku": b, "qty": 0}], "by": "op"})
    assert r.status_code == 409 and "click & collect" in r.json()["message"]  # paid: the store is setting it aside
    await pos(stack, "MSK-002", task["task_id"], "ready")
    await pos(stack, "MSK-002", task["task_id"], "issued")
    order = await stack.wait_order(order_id, "completed")
    assert order["payment"]["captured"] == total
    assert [await ledger_row(stack, s, "MSK-002") for s in (a, b)] == [(1, 0), (0, 0)]
