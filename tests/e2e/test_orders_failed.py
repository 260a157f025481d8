"""`orkestr orders failed` finds an order whose step keeps failing (an outage, not a refusal): the store's
POS answers 503 to every task, the activity is retried, and after three attempts the order is listed as
failing at that step with the last error; once the POS is back the order goes on by itself."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.history import failed_orders
from helpers import fresh_sku, next_phone, order_body, pay, task_for
from test_tooling import cli

pytestmark = pytest.mark.e2e


async def test_an_order_whose_step_keeps_failing_is_listed_with_the_last_error(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 1})
    r = await stack.sandbox.post("/sandbox/pos/faults", json={"fail_next": 1000, "status": 503,
                                                             "operations": ["create_task"]})
    assert r.status_code == 200, r.text
    try:
        r = await stack.api.post("/v1/orders", json=order_body(sku, 1, phone=next_phone()))
        assert r.status_code == 201, r.text
        order_id = r.json()["order_id"]
        await pay(stack, order_id)
        found = None
        for _ in range(300):  # bounded: attempts 1, 2, 3 come 1 s and 2 s apart
            found = next((p for p in await failed_orders(stack.temporal, stack.engine) if p.order_id == order_id),
                         None)
            if found is not None:
                break
            await asyncio.sleep(0.2)
        assert found is not None, "the failing order was not listed"
        assert found.status == "failing"
        assert found.waiting_at.startswith("create_pos_task (fulfillment-")
        assert "attempt" in found.detail and "503" in found.detail, found.detail
        code, out, err = await cli(stack, "orders", "failed")
        assert code == 0, err
        assert order_id in out and "failing" in out and "create_pos_task" in out
    finally:
        await stack.sandbox.post("/sandbox/pos/faults", json={"fail_next": 0})
    await task_for(stack, "MSK-002", order_id)  # the POS is back: the retry created the task
    assert order_id not in {p.order_id for p in await failed_orders(stack.temporal, stack.engine)}
    await stack.api.post(f"/v1/orders/{order_id}/cancel", json={"reason": "test over", "by": "test"})
