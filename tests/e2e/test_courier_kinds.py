"""A CDEK reverse order carries our shipment's number, but its DELIVERED is the parcel back with
us: over the real webhook path the shipment reads not delivered, never delivered (issue 20)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from helpers import courier_order, fresh_sku, order_body, pay, task_for

pytestmark = pytest.mark.e2e


async def test_a_reverse_orders_delivery_is_not_the_customers(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 2})
    r = await stack.api.post("/v1/orders", json=order_body(sku, 1))
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    await pay(stack, order_id)
    await stack.wait_order(order_id, "assembling")
    task = await task_for(stack, "MSK-002", order_id)
    assert (await stack.sandbox.post(f"/sandbox/pos/MSK-002/tasks/{task['task_id']}/assembled")).status_code == 200
    parcel = await courier_order(stack, order_id)
    r = await stack.sandbox.post(f"/sandbox/courier/orders/{parcel['uuid']}/status", json={"code": "RECEIVED_AT_SHIPMENT_WAREHOUSE"})
    assert r.status_code == 200, r.text

    # CDEK opens a reverse order for the same shipment and brings it back to us
    linked = await stack.sandbox.post(f"/sandbox/courier/orders/{parcel['uuid']}/linked", json={"kind": "reverse"})
    assert linked.status_code == 200, linked.text
    back = linked.json()
    assert back["number"] == parcel["number"] and back["is_reverse"] is True
    r = await stack.sandbox.post(f"/sandbox/courier/orders/{back['uuid']}/status", json={"code": "DELIVERED"})
    assert r.status_code == 200, r.text

    async def settled() -> dict[str, Any]:
        for _ in range(300):  # bounded: 30 s
            order = (await stack.api.get(f"/v1/orders/{order_id}")).json()
            if order["shipments"][0]["status"] in ("delivered", "not_delivered"):
                return order
            await asyncio.sleep(0.1)
        raise AssertionError("the shipment never settled")

    order = await settled()
    assert order["shipments"][0]["status"] == "not_delivered"
    assert order["status"] != "completed" and "shipment_delivered" not in [e["kind"] for e in order["timeline"]]
