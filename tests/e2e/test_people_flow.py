"""Issue 5 end to end over real HTTP: a shortage reported at the store's POS, the operator deciding
through the tasks API (bad decisions refused, nothing changed), the order finishing with the right
capture in the bank; cancellation at each stage leaving no money, bonus or stock held."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from helpers import courier_order, fresh_sku, ledger_row, md_order_of, next_phone, order_body, pay, task_for

pytestmark = pytest.mark.e2e


async def open_task(stack: Any, order_id: str, kind: str) -> dict[str, Any]:
    for _ in range(300):
        r = await stack.api.get("/v1/tasks", params={"order_id": order_id, "kind": kind, "status": "open"})
        assert r.status_code == 200, r.text
        if r.json()["items"]:
            return r.json()["items"][0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no open {kind} task for {order_id}")


async def bank_order(stack: Any, order_number: str) -> dict[str, Any]:
    for _ in range(100):
        orders = (await stack.sandbox.get("/sandbox/acquiring/orders")).json()
        found = [o for o in orders if o["order_number"] == order_number]
        if found:
            return (await stack.sandbox.get(f"/sandbox/acquiring/orders/{found[0]['md_order']}")).json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"the bank has no order {order_number}")


async def deliver(stack: Any, order_id: str, location_id: str, pos_task_id: str) -> dict[str, Any]:
    r = await stack.sandbox.post(f"/sandbox/pos/{location_id}/tasks/{pos_task_id}/assembled")
    assert r.status_code == 200, r.text
    parcel = await courier_order(stack, order_id)
    for code in ("RECEIVED_AT_SHIPMENT_WAREHOUSE", "DELIVERED"):
        r = await stack.sandbox.post(f"/sandbox/courier/orders/{parcel['uuid']}/status", json={"code": code})
        assert r.status_code == 200, r.text
    return await stack.wait_order(order_id, "completed")


async def test_shortage_substituted_by_an_operator_through_the_api_captures_the_new_total(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 2})
    sub = await fresh_sku(stack, {"MSK-002": 1})
    elsewhere = await fresh_sku(stack, {"WH-ONLINE": 3})  # in stock, but not at the assembling store
    phone = next_phone()
    r = await stack.api.post("/v1/orders", json=order_body(sku, 2, phone=phone))
    assert r.status_code == 201, r.text
    order_id, held = r.json()["order_id"], r.json()["totals"]["total"]
    await pay(stack, order_id)
    await stack.wait_order(order_id, "assembling")
    pos = await task_for(stack, "MSK-002", order_id)

    r = await stack.sandbox.post(f"/sandbox/pos/MSK-002/tasks/{pos['task_id']}/shortage",
                                 json={"sku": sku, "missing_qty": 1})
    assert r.status_code == 200, r.text
    task = await open_task(stack, order_id, "substitution")  # nowhere else has it: a person decides
    assert task["location_id"] == "MSK-002" and task["payload"]["sku"] == sku and task["assignee"]
    mine = (await stack.api.get("/v1/tasks", params={"assignee": task["assignee"], "status": "open"})).json()
    assert task["id"] in [t["id"] for t in mine["items"]]

    # claiming: one operator at a time
    r = await stack.api.post(f"/v1/tasks/{task['id']}/claim", json={"operator": "op-anna"})
    assert r.status_code == 200 and r.json()["status"] == "claimed" and r.json()["assignee"] == "op-anna"
    r = await stack.api.post(f"/v1/tasks/{task['id']}/claim", json={"operator": "op-boris"})
    assert r.status_code == 409 and "op-anna" in r.json()["message"]

    # bad decisions are refused synchronously, naming the field, and change nothing
    for decision, field, words in (
        ({"action": "substitute", "sku": "NO-SUCH-SKU"}, "sku", "unknown SKU"),
        ({"action": "substitute", "sku": elsewhere}, "sku", "out of stock at MSK-002"),
        ({"action": "substitute"}, "sku", "required"),
        ({"action": "wait"}, "action", "not an answer"),
    ):
        r = await stack.api.post(f"/v1/tasks/{task['id']}/complete", json={**decision, "operator": "op-anna"})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == field and words in r.json()["message"], r.json()
    row = (await stack.api.get(f"/v1/tasks/{task['id']}")).json()
    assert row["status"] == "claimed" and row["result"] is None
    waiting = await stack.temporal.get_workflow_handle(f"order-{order_id}").query("open_tasks", result_type=list)
    assert [t["task_id"] for t in waiting] == [task["id"]]
    assert await ledger_row(stack, sub, "MSK-002") == (1, 0)

    r = await stack.api.post(f"/v1/tasks/{task['id']}/complete",
                             json={"action": "substitute", "sku": sub, "operator": "op-anna"})
    assert r.status_code == 200, r.text
    outcome = r.json()["outcome"]
    assert r.json()["task"]["status"] == "done" and r.json()["task"]["result"]["action"] == "substitute"
    new_total = outcome["total"]
    assert await ledger_row(stack, sub, "MSK-002") == (1, 1)  # the substitute is held at the store
    assert await ledger_row(stack, sku, "MSK-002") == (2, 1)  # only the unit still there stays held
    r = await stack.api.post(f"/v1/tasks/{task['id']}/complete",
                             json={"action": "remove", "operator": "op-anna"})
    assert r.status_code == 409 and r.json()["error"] == "task_closed"
    if outcome["extra_payment_url"]:  # the substitute is dearer: the customer pays the difference
        extra = await bank_order(stack, f"order-{order_id}~2")
        assert extra["amount"] == new_total - held
        r = await stack.sandbox.post(f"/sandbox/acquiring/orders/{extra['md_order']}/pay", json={"outcome": "approve"})
        assert r.status_code == 200

    order = await deliver(stack, order_id, "MSK-002", pos["task_id"])
    assert order["totals"]["total"] == new_total
    assert {(l["sku"], l["qty"]) for l in order["lines"]} == {(sku, 1), (sub, 1)}
    main = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{await md_order_of(stack, order_id)}")).json()
    captured = main["deposited"]
    if outcome["extra_payment_url"]:
        captured += (await bank_order(stack, f"order-{order_id}~2"))["deposited"]
    assert main["deposited"] == min(new_total, held)  # capture what is shipped; the rest of the hold goes back
    assert captured == new_total
    assert await ledger_row(stack, sku, "MSK-002") == (1, 0) and await ledger_row(stack, sub, "MSK-002") == (0, 0)
    cust = (await stack.sandbox.get(f"/sandbox/loyalty/customers/{phone}")).json()
    assert cust["held"] == 0 and cust["pending"] > 0
    kinds = [e["kind"] for e in order["timeline"]]
    for expected in ("shortage", "task_opened", "order_changed", "task_done", "captured", "completed"):
        assert expected in kinds, (expected, kinds)


async def paid_order_of(stack: Any, *skus: str) -> tuple[str, int]:
    """A paid card order of one unit of each SKU: (order id, total held on the card)."""
    body = order_body(skus[0], 1)
    body["lines"] += [{"sku": sku, "qty": 1} for sku in skus[1:]]
    r = await stack.api.post("/v1/orders", json=body)
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    await pay(stack, order_id)
    return order_id, r.json()["totals"]["total"]


async def removed_by_operator(stack: Any, order_id: str, location_id: str, pos_task_id: str, sku: str) -> int:
    """The store reports one unit of ``sku`` missing; an operator removes it: the new total."""
    r = await stack.sandbox.post(f"/sandbox/pos/{location_id}/tasks/{pos_task_id}/shortage",
                                 json={"sku": sku, "missing_qty": 1})
    assert r.status_code == 200, r.text
    task = await open_task(stack, order_id, "substitution")
    r = await stack.api.post(f"/v1/tasks/{task['id']}/complete", json={"action": "remove", "operator": "op-anna"})
    assert r.status_code == 200, r.text
    return int(r.json()["outcome"]["total"])


async def test_shortage_line_removed_captures_less(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 2})
    keep = await fresh_sku(stack, {"MSK-002": 1})
    order_id, held = await paid_order_of(stack, sku, keep)
    pos = await task_for(stack, "MSK-002", order_id)
    new_total = await removed_by_operator(stack, order_id, "MSK-002", pos["task_id"], sku)
    assert new_total < held
    order = await deliver(stack, order_id, "MSK-002", pos["task_id"])
    assert [l["sku"] for l in order["lines"]] == [keep]
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{await md_order_of(stack, order_id)}")).json()
    assert bank["deposited"] == new_total
    assert await ledger_row(stack, sku, "MSK-002") == (2, 0)  # the missing unit was never sold


@pytest.mark.parametrize("stage", ["awaiting_payment", "assembling", "booked"])
async def test_cancel_before_hand_over_leaves_nothing_held(stack: Any, stage: str) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 2})
    phone = next_phone()
    before = (await stack.sandbox.get(f"/sandbox/loyalty/customers/{phone}")).json()["balance"]
    r = await stack.api.post("/v1/orders", json=order_body(sku, 1, phone=phone, bonus=5_000))
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    pos = None
    if stage != "awaiting_payment":
        await pay(stack, order_id)
        pos = await task_for(stack, "MSK-002", order_id)
    if stage == "booked":
        r = await stack.sandbox.post(f"/sandbox/pos/MSK-002/tasks/{pos['task_id']}/assembled")
        assert r.status_code == 200
        await courier_order(stack, order_id)
        for _ in range(100):  # the booking lands in the order before we cancel
            order = (await stack.api.get(f"/v1/orders/{order_id}")).json()
            if order["shipments"][0]["status"] == "booked":
                break
            await asyncio.sleep(0.1)
    r = await stack.api.post(f"/v1/orders/{order_id}/cancel", json={"reason": "передумала", "by": "customer"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    order = await stack.wait_order(order_id, "cancelled")
    assert "compensated" in [e["kind"] for e in order["timeline"]]
    # no stock left reserved
    assert await ledger_row(stack, sku, "MSK-002") == (2, 0)
    # no bonus held or lost
    cust = (await stack.sandbox.get(f"/sandbox/loyalty/customers/{phone}")).json()
    assert cust["held"] == 0 and cust["balance"] == before
    # no money held
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{await md_order_of(stack, order_id)}")).json()
    assert bank["deposited"] == 0
    assert bank["state"] in ({"registered", "expired", "declined"} if stage == "awaiting_payment" else {"reversed"})
    if pos is not None:  # the store was told to stop
        tasks = {t["task_id"]: t for t in await stack.pos_tasks("MSK-002")}
        assert tasks[pos["task_id"]]["status"] == "cancelled"
    if stage == "booked":  # the courier shipment was cancelled
        parcel = await courier_order(stack, order_id)
        for _ in range(50):
            if parcel["status"] == "REMOVED":
                break
            await asyncio.sleep(0.1)
            parcel = await courier_order(stack, order_id)
        assert parcel["status"] == "REMOVED"
    for _ in range(50):  # the customer is told once everything is undone
        msgs = (await stack.sandbox.get("/sandbox/notifications", params={"phone": phone})).json()
        texts = [m["text"] for m in (msgs["messages"] if isinstance(msgs, dict) else msgs)]
        if any("отменён" in t for t in texts):
            break
        await asyncio.sleep(0.1)
    assert any("отменён" in t for t in texts), texts


async def test_removal_emptying_one_shipment_cancels_only_that_shipment(stack: Any) -> None:
    a = await fresh_sku(stack, {"MSK-002": 1})
    b = await fresh_sku(stack, {"SPB-001": 1})
    order_id, held = await paid_order_of(stack, a, b)
    pos_a = await task_for(stack, "MSK-002", order_id)
    pos_b = await task_for(stack, "SPB-001", order_id)
    new_total = await removed_by_operator(stack, order_id, "SPB-001", pos_b["task_id"], b)
    assert new_total < held
    for _ in range(100):  # the emptied shipment's store is told to stop; its unit goes back
        if [t for t in await stack.pos_tasks("SPB-001") if t["task_id"] == pos_b["task_id"]][0]["status"] == "cancelled":
            break
        await asyncio.sleep(0.1)
    assert await ledger_row(stack, b, "SPB-001") == (1, 0)
    order = await deliver(stack, order_id, "MSK-002", pos_a["task_id"])
    assert [l["sku"] for l in order["lines"]] == [a]
    assert sorted(s["status"] for s in order["shipments"]) == ["cancelled", "delivered"]
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{await md_order_of(stack, order_id)}")).json()
    assert bank["deposited"] == new_total == order["payment"]["captured"]
