"""Issue 6 end to end: an order delivered, then two partial returns over real HTTP (one at another
store, one picked up by CDEK), checked in the bank, the loyalty programme, the ledger and the ERP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.returns_repo import ReturnsRepo
from api.routes.returns import ReturnIn

from helpers import courier_order, fresh_sku, ledger_row, md_order_of, next_phone, order_body, pay, task_for

pytestmark = pytest.mark.e2e


async def delivered_order(stack: Any, lines: list[tuple[str, int]], *, phone: str, bonus: int) -> dict[str, Any]:
    body = order_body(lines[0][0], lines[0][1], phone=phone, bonus=bonus)
    body["lines"] = [{"sku": s, "qty": q} for s, q in lines]
    r = await stack.api.post("/v1/orders", json=body)
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    await pay(stack, order_id)
    await stack.wait_order(order_id, "assembling")
    order = (await stack.api.get(f"/v1/orders/{order_id}")).json()
    for shipment in order["shipments"]:
        task = await task_for(stack, shipment["location_id"], order_id)
        r = await stack.sandbox.post(f"/sandbox/pos/{shipment['location_id']}/tasks/{task['task_id']}/assembled")
        assert r.status_code == 200, r.text
    parcel = await courier_order(stack, order_id)
    for code in ("RECEIVED_AT_SHIPMENT_WAREHOUSE", "DELIVERED"):
        r = await stack.sandbox.post(f"/sandbox/courier/orders/{parcel['uuid']}/status", json={"code": code})
        assert r.status_code == 200, r.text
    return await stack.wait_order(order_id, "completed")


async def wait_return(stack: Any, return_id: str, status: str, timeout_s: float = 30) -> dict[str, Any]:
    return await stack.wait_status(f"/v1/returns/{return_id}", status, timeout_s=timeout_s)


async def cdek_return_parcel(stack: Any, return_id: str) -> dict[str, Any]:
    for _ in range(300):
        for o in (await stack.sandbox.get("/sandbox/courier/orders")).json()["orders"]:
            if o.get("number") == f"return-{return_id}":
                return o
        await asyncio.sleep(0.1)
    raise AssertionError(f"no CDEK return shipment for {return_id}")


async def pos(stack: Any, location: str, task_id: str, action: str, body: dict[str, Any] | None = None) -> None:
    r = await stack.sandbox.post(f"/sandbox/pos/{location}/tasks/{task_id}/{action}", json=body)
    assert r.status_code == 200, r.text


async def test_two_partial_returns_refund_exactly_give_bonus_back_and_restock_where_received(stack: Any) -> None:
    dress = await fresh_sku(stack, {"MSK-002": 3})
    belt = await fresh_sku(stack, {"MSK-002": 2})
    phone = next_phone()
    order = await delivered_order(stack, [(dress, 2), (belt, 1)], phone=phone, bonus=5_000)
    order_id, totals = order["order_id"], order["totals"]
    assert order["shipments"][0]["location_id"] == "MSK-002" and len(order["shipments"]) == 1
    pos_of = {l["sku"]: l["pos_id"] for l in order["lines"]}
    assert await ledger_row(stack, dress, "MSK-001") == (0, 0)

    # 1st return: one dress, brought to another store of the chain
    r = await stack.api.post(f"/v1/orders/{order_id}/returns", headers={"Idempotency-Key": f"ret1-{order_id}"}, json={
        "lines": [{"pos_id": pos_of[dress], "qty": 1, "reason": "не подошёл размер"}],
        "method": "in_store", "store_id": "MSK-001"})
    assert r.status_code == 201, r.text
    first = r.json()["return_id"]
    again = await stack.api.post(f"/v1/orders/{order_id}/returns", headers={"Idempotency-Key": f"ret1-{order_id}"}, json={
        "lines": [{"pos_id": pos_of[dress], "qty": 1, "reason": "не подошёл размер"}],
        "method": "in_store", "store_id": "MSK-001"})
    assert again.status_code == 201 and again.json()["return_id"] == first
    task = await task_for(stack, "MSK-001", order_id, kind="receive_return")
    await pos(stack, "MSK-001", task["task_id"], "received")
    await pos(stack, "MSK-001", task["task_id"], "inspected")
    ret1 = await wait_return(stack, first, "completed")
    assert ret1["location_id"] == "MSK-001" and ret1["lines"][0]["accepted"] == 1

    # 2nd return: the other dress and the belt, picked up by CDEK; two customers' taps race for it
    body2 = {"lines": [{"pos_id": pos_of[dress], "qty": 1, "reason": "брак"}, {"pos_id": pos_of[belt], "qty": 1}],
             "method": "courier_pickup"}
    racing = await asyncio.gather(*[stack.api.post(f"/v1/orders/{order_id}/returns", json=body2,
                                                   headers={"Idempotency-Key": f"ret2-{i}-{order_id}"})
                                    for i in range(2)])
    assert sorted(x.status_code for x in racing) == [201, 409], [x.text for x in racing]
    loser = next(x for x in racing if x.status_code == 409).json()
    assert loser["error"] == "too_many_units" and loser["errors"][0]["field"].startswith("lines[")
    second = next(x for x in racing if x.status_code == 201).json()["return_id"]
    parcel = await cdek_return_parcel(stack, second)
    assert parcel["is_client_return"] is True
    r = await stack.sandbox.post(f"/sandbox/courier/orders/{parcel['uuid']}/status", json={"code": "DELIVERED"})
    assert r.status_code == 200, r.text
    await wait_return(stack, second, "received")
    task = await task_for(stack, "MSK-002", order_id, kind="receive_return")
    await pos(stack, "MSK-002", task["task_id"], "received")
    await pos(stack, "MSK-002", task["task_id"], "inspected")
    ret2 = await wait_return(stack, second, "completed")

    # nothing is left to return: the rule names the field
    r = await stack.api.post(f"/v1/orders/{order_id}/returns", json={
        "lines": [{"pos_id": pos_of[belt], "qty": 1}], "method": "in_store", "store_id": "MSK-001"})
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "lines[0].qty", r.text

    # the bank: two refunds, each with its receipt, together exactly what was paid (delivery with the last)
    md = await md_order_of(stack, order_id)
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{md}")).json()
    refunds = [op["amount"] for op in bank["operations"] if op["type"] == "refunded"]
    assert refunds == [ret1["refund"]["money"] + ret1["refund"]["delivery"], ret2["refund"]["money"] + ret2["refund"]["delivery"]]
    assert sum(refunds) == totals["total"] == bank["refunded"] and bank["deposited"] == totals["total"]
    assert ret1["refund"]["delivery"] == 0 and ret2["refund"]["delivery"] == totals["delivery"]
    bundles = bank["refund_bundles"]
    assert [sum(i["itemAmount"] for i in b["cartItems"]["items"]) for b in bundles] == refunds
    # the order's view shows both returns and what was refunded
    view = (await stack.api.get(f"/v1/orders/{order_id}")).json()
    assert [x["return_id"] for x in view["returns"]] == [first, second]
    assert view["refunded"]["money"] == totals["total"] and view["payment"]["state"] == "refunded"
    # loyalty: all the written-off bonus came back, the pending accrual was taken back whole
    cust = (await stack.sandbox.get(f"/sandbox/loyalty/customers/{phone}")).json()
    assert ret1["bonus_returned"] + ret2["bonus_returned"] == totals["bonus_spent"] == 5_000
    assert cust["balance"] == 50_000 and cust["pending"] == 0 and cust["held"] == 0
    # the ledger: each unit back where it was received
    assert await ledger_row(stack, dress, "MSK-001") == (1, 0)
    assert await ledger_row(stack, dress, "MSK-002") == (2, 0)
    assert await ledger_row(stack, belt, "MSK-002") == (2, 0)
    # the ERP got a return document per return, at the receiving location
    docs = (await stack.sandbox.get("/sandbox/erp/documents", params={"type": "Return"})).json()["documents"]
    mine = {d["Number"]: d for d in docs if d["Number"] in (f"return-{first}", f"return-{second}")}
    assert mine[f"return-{first}"]["Warehouse"] == "MSK-001" and mine[f"return-{second}"]["Warehouse"] == "MSK-002"


async def test_return_refusals_name_the_field(stack: Any) -> None:
    sku = await fresh_sku(stack, {"WH-ONLINE": 3})
    r = await stack.api.post("/v1/orders", json=order_body(sku, 1))
    order_id = r.json()["order_id"]
    ok = {"lines": [{"pos_id": 1, "qty": 1}], "method": "in_store", "store_id": "MSK-001"}
    r = await stack.api.post(f"/v1/orders/{order_id}/returns", json=ok)
    assert r.status_code == 409 and r.json()["error"] == "not_delivered" and r.json()["errors"][0]["field"] == "lines[0].pos_id"
    r = await stack.api.post(f"/v1/orders/{order_id}/returns", json={**ok, "store_id": "WH-ONLINE"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "store_id"
    r = await stack.api.post(f"/v1/orders/{order_id}/returns", json={**ok, "lines": [{"pos_id": 9, "qty": 1}]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lines[0].pos_id"
    r = await stack.api.post(f"/v1/orders/{order_id}/returns", json={"lines": [{"pos_id": 1, "qty": 1}], "method": "in_store"})
    assert r.status_code == 422 and "store_id" in r.json()["message"]
    r = await stack.api.post("/v1/orders/NOPE/returns", json=ok)
    assert r.status_code == 404
    assert (await stack.api.get("/v1/returns/RNOPE")).status_code == 404


async def test_a_return_whose_request_died_is_answered_by_its_retry_never_orphaned(stack: Any) -> None:
    """The API sent the return's update-with-start, then died before answering: the workflow claimed the
    units and runs; the client's retry with the same Idempotency-Key finds that same return (one row,
    one workflow), and a request that dies before the start leaves nothing behind."""
    from services.returns import ReturnService, new_return_id

    class Crash(Exception):
        pass

    class DiesAfterStarting:
        def __init__(self, real: Any) -> None:
            self.real = real

        async def execute_update_with_start_workflow(self, *args: Any, **kwargs: Any) -> Any:
            await self.real.execute_update_with_start_workflow(*args, **kwargs)
            raise Crash("the API process died here")

    class DiesBeforeStarting:
        async def execute_update_with_start_workflow(self, *args: Any, **kwargs: Any) -> Any:
            raise Crash("the API process died here")

    sku = await fresh_sku(stack, {"MSK-003": 2})
    order = await delivered_order(stack, [(sku, 2)], phone=next_phone(), bonus=0)
    order_id = order["order_id"]
    body = {"lines": [{"pos_id": 1, "qty": 1, "reason": "не подошёл размер"}], "method": "in_store", "store_id": "MSK-001"}
    request = ReturnIn.model_validate(body).request()
    before = ReturnService(DiesBeforeStarting(), stack.engine, stack.settings)  # type: ignore[arg-type]
    with pytest.raises(Crash):
        await before.create(order_id, request, "died-before")
    assert await ReturnsRepo(stack.engine).for_order(order_id) == []  # nothing saved, nothing to repair
    key = f"died-{order_id}"
    after = ReturnService(DiesAfterStarting(stack.temporal), stack.engine, stack.settings)  # type: ignore[arg-type]
    with pytest.raises(Crash):
        await after.create(order_id, request, key)
    r = await stack.api.post(f"/v1/orders/{order_id}/returns", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    assert r.json()["return_id"] == new_return_id(order_id, key)  # the same return, not a second one
    assert [x.return_id for x in await ReturnsRepo(stack.engine).for_order(order_id)] == [r.json()["return_id"]]
    task = await task_for(stack, "MSK-001", order_id, kind="receive_return")  # its workflow runs
    assert task["task_id"].startswith(f"return-{r.json()['return_id']}")


async def test_a_refund_the_bank_refuses_parks_and_the_api_retry_refunds_once(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 1})
    order = await delivered_order(stack, [(sku, 1)], phone=next_phone(), bonus=0)
    order_id, md = order["order_id"], order["payment"]["md_order"]
    r = await stack.api.post(f"/v1/orders/{order_id}/returns",
                             json={"lines": [{"pos_id": 1, "qty": 1}], "method": "in_store", "store_id": "MSK-001"})
    assert r.status_code == 201, r.text
    rid = r.json()["return_id"]
    r = await stack.api.post(f"/v1/returns/{rid}/retry", json={"by": "support-1"})
    assert r.status_code == 409 and r.json()["error"] == "nothing_to_retry"  # nothing parked yet
    task = await task_for(stack, "MSK-001", order_id, kind="receive_return")
    r = await stack.sandbox.post("/sandbox/acquiring/faults",
                                 json={"fail_next": 1, "status": 400, "operations": ["refund"]})
    assert r.status_code == 200
    await pos(stack, "MSK-001", task["task_id"], "received")
    await pos(stack, "MSK-001", task["task_id"], "inspected", {"accepted": [{"sku": sku, "qty": 1}], "rejected": []})
    for _ in range(300):  # the refusal is visible on the return, and no money moved
        ret = (await stack.api.get(f"/v1/returns/{rid}")).json()
        if any(e["kind"] == "refund_failed" for e in ret["timeline"]):
            break
        await asyncio.sleep(0.1)
    assert any(e["kind"] == "refund_failed" for e in ret["timeline"]), [e["kind"] for e in ret["timeline"]]
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{md}")).json()
    assert bank["refunded"] == 0
    r = await stack.api.post(f"/v1/returns/{rid}/retry", json={"by": "support-1", "note": "банк ответил"})
    assert r.status_code == 200, r.text
    done = await wait_return(stack, rid, "completed")
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{md}")).json()
    assert bank["refunded"] == done["refund"]["money"] + done["refund"]["delivery"] > 0
    assert len([op for op in bank["operations"] if op["type"] == "refunded"]) == 1
    assert (await stack.api.post("/v1/returns/RNOSUCH/retry", json={"by": "x"})).status_code == 404
