"""Issue 7 end to end: an order parked on an outside system's refusal, found and retried by a person
(CLI and API), completing with no double side effects in the sandboxes; the history API's masking;
the CLI's exit codes (run as a subprocess against the running stack)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import courier_order, fresh_sku, md_order_of, next_phone, order_body, pay, task_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


async def cli(stack: Any, *args: str, timeout: float = 60) -> tuple[int, str, str]:
    """``python -m cli ...`` against the stack, without blocking the event loop the worker runs on."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORKESTR_TEMPORAL_ADDRESS": stack.settings.temporal_address,
           "ORKESTR_DATABASE_URL": stack.settings.database_url, "ORKESTR_TASK_QUEUE": stack.settings.task_queue,
           "ORKESTR_LOG_FORMAT": "json", "COLUMNS": "250"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def place_and_pay(stack: Any, sku: str, phone: str) -> tuple[str, dict[str, Any]]:
    r = await stack.api.post("/v1/orders", json=order_body(sku, 1, phone=phone))
    assert r.status_code == 201, r.text
    order_id = r.json()["order_id"]
    await pay(stack, order_id)
    return order_id, r.json()["totals"]


async def deliver(stack: Any, order_id: str) -> None:
    parcel = await courier_order(stack, order_id)
    for code in ("RECEIVED_AT_SHIPMENT_WAREHOUSE", "DELIVERED"):
        r = await stack.sandbox.post(f"/sandbox/courier/orders/{parcel['uuid']}/status", json={"code": code})
        assert r.status_code == 200, r.text


async def courier_orders_for(stack: Any, order_id: str) -> list[dict[str, Any]]:
    data = (await stack.sandbox.get("/sandbox/courier/orders")).json()
    orders = data["orders"] if isinstance(data, dict) else data
    return [o for o in orders if str(o.get("number", "")).startswith(f"fulfillment-{order_id}-")]


async def test_courier_refusal_parks_the_order_and_cli_retry_completes_it_once(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 2})
    phone = next_phone()
    order_id, totals = await place_and_pay(stack, sku, phone)
    await stack.wait_order(order_id, "assembling")
    # CDEK refuses the booking (a 400 on create_order: a business refusal, not retried)
    r = await stack.sandbox.post("/sandbox/cdek/faults", json={"fail_next": 1, "status": 400,
                                                              "operations": ["create_order"]})
    assert r.status_code == 200, r.text
    task = await task_for(stack, "MSK-002", order_id)
    r = await stack.sandbox.post(f"/sandbox/pos/MSK-002/tasks/{task['task_id']}/assembled")
    assert r.status_code == 200, r.text
    held = await stack.wait_order(order_id, "on_hold")
    hold = [e for e in held["timeline"] if e["kind"] == "on_hold"][-1]
    assert hold["data"]["step"] == "courier_booking" and "cdek" in hold["data"]["error"].lower()
    assert await courier_orders_for(stack, order_id) == []

    # support finds it, a person retries it from the terminal
    code, out, err = await cli(stack, "orders", "failed")
    assert code == 0, err
    assert order_id in out and "courier_booking" in out
    code, out, err = await cli(stack, "order", "retry", order_id, "--by", "support:olga", "--note", "CDEK fixed")
    assert code == 0, out + err
    assert "resumed" in out and "courier_booking" in out
    await stack.wait_order(order_id, "assembling")
    await deliver(stack, order_id)
    await stack.wait_order(order_id, "completed")

    # one booking, one deposit of the total, one accrual
    assert len(await courier_orders_for(stack, order_id)) == 1
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{await md_order_of(stack, order_id)}")).json()
    assert bank["deposited"] == totals["total"]
    assert [op["type"] for op in bank["operations"]].count("deposited") == 1
    purchases = (await stack.sandbox.get(f"/sandbox/loyalty/customers/{phone}")).json()["purchases"]
    assert len([p for p in purchases if p["order_id"] == order_id]) == 1

    # retrying again: nothing is on hold any more (exit 6), the API says 409
    code, out, err = await cli(stack, "order", "retry", order_id, "--by", "support:olga")
    assert code == 6, out + err
    r = await stack.api.post(f"/v1/orders/{order_id}/retry", json={"by": "support:olga"})
    assert r.status_code == 409 and r.json()["error"] == "nothing_to_retry"

    # the story for support: steps with the outside systems' answers, the refusal, who retried; no personal data
    r = await stack.api.get(f"/v1/orders/{order_id}/history", headers={"X-Role": "support"})
    assert r.status_code == 200, r.text
    story = r.json()
    text = json.dumps(story, ensure_ascii=False)
    for secret in (phone, phone.lstrip("+"), "Анна Петрова", "Петрова", "anna@example.ru", "ул. Тверская, д. 1, кв. 5"):
        assert secret not in text, f"{secret!r} leaked into the support view"
    assert story["customer"]["phone"].endswith(phone[-4:]) and "***" in story["customer"]["phone"]
    steps = story["steps"]
    register = next(s for s in steps if s["name"] == "register_payment")
    assert register["outcome"] == "ok" and register["answer"]["md_order"] == bank["md_order"]
    bookings = [s for s in steps if s["name"] == "book_shipment"]
    assert [b["outcome"] for b in bookings] == ["failed", "ok"]
    assert bookings[0]["error_type"] == "CourierRefused" and bookings[1]["answer"]["tracking_number"]
    assert all(s["duration_s"] is not None for s in bookings)
    retry = next(d for d in story["decisions"] if d["name"] == "retry")
    assert retry["by"] == "support:olga" and retry["request"]["note"] == "CDEK fixed"
    assert any(e["kind"] == "on_hold" for e in story["timeline"])
    # the developer sees the real data
    r = await stack.api.get(f"/v1/orders/{order_id}/history", headers={"X-Role": "developer"})
    assert r.status_code == 200 and phone in r.text and "Анна Петрова" in r.text

    # the terminal view: status and the story in tables; the CLI replays the order against the current code
    code, out, err = await cli(stack, "order", "show", order_id, "--role", "support")
    assert code == 0, err
    assert f"Order {order_id}" in out and "completed" in out and "book_shipment" in out and phone not in out
    code, out, err = await cli(stack, "replay", order_id)
    assert code == 0, out + err
    assert out.count("replays cleanly") == 2  # the order and its shipment


async def test_erp_refusal_parks_the_order_and_api_retry_completes_it(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-002": 1})
    phone = next_phone()
    r = await stack.sandbox.post("/sandbox/erp/faults", json={"fail_next": 1, "status": 400,
                                                             "operations": ["post_customerorder"]})
    assert r.status_code == 200, r.text
    order_id, totals = await place_and_pay(stack, sku, phone)
    held = await stack.wait_order(order_id, "on_hold")
    assert [e for e in held["timeline"] if e["kind"] == "on_hold"][-1]["data"]["step"] == "erp_export"
    r = await stack.api.post(f"/v1/orders/{order_id}/retry", json={"by": "ops:ivan", "note": "ERP unblocked"})
    assert r.status_code == 200, r.text
    assert r.json()["action"] == "resumed"
    await stack.wait_order(order_id, "assembling")
    task = await task_for(stack, "MSK-002", order_id)
    await stack.sandbox.post(f"/sandbox/pos/MSK-002/tasks/{task['task_id']}/assembled")
    await deliver(stack, order_id)
    await stack.wait_order(order_id, "completed")
    docs = (await stack.sandbox.get("/sandbox/erp/documents")).json()["documents"]
    assert len([d for d in docs if d["Type"] == "CustomerOrder" and d["Number"] == order_id]) == 1
    bank = (await stack.sandbox.get(f"/sandbox/acquiring/orders/{await md_order_of(stack, order_id)}")).json()
    assert bank["deposited"] == totals["total"]


async def test_history_api_and_cli_errors(stack: Any, tmp_path: Path) -> None:
    r = await stack.api.get("/v1/orders/NOSUCHORDER/history")
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "order_id"
    r = await stack.api.get("/v1/orders/NOSUCHORDER/history", headers={"X-Role": "admin"})
    assert r.status_code == 422 and "X-Role" in r.json()["message"]
    code, out, err = await cli(stack, "order", "show", "NOSUCHORDER")
    assert code == 5 and "NOSUCHORDER" in err
    code, out, err = await cli(stack, "order", "retry", "NOSUCHORDER", "--by", "x")
    assert code == 5
    code, out, err = await cli(stack, "orders", "stuck", "--older-than", "soon")
    assert code == 2 and "--older-than" in err
    code, out, err = await cli(stack, "orders", "stuck", "--older-than", "1d")
    assert code == 0 and "no change for more than" in out

    # export a live order's history and replay the file
    sku = await fresh_sku(stack, {"WH-ONLINE": 1})
    r = await stack.api.post("/v1/orders", json=order_body(sku, 1))
    order_id = r.json()["order_id"]
    path = tmp_path / "order.json"
    code, out, err = await cli(stack, "history", "export", order_id, "-o", str(path))
    assert code == 0, err
    assert json.loads(path.read_text())["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    code, out, err = await cli(stack, "replay", "--file", str(path))
    assert code == 0 and "replays cleanly" in out, out + err
    await stack.api.post(f"/v1/orders/{order_id}/cancel", json={"reason": "test over", "by": "test"})
