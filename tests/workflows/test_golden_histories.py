"""Golden histories: every workflow type and path, recorded once, replayed against the current code.

``ORKESTR_REFRESH_HISTORIES=1`` (``make histories``) runs each scenario on the time-skipping server with
the stand-in activities (tests/workflows/fakes.py, tooling_fakes.py) and saves the histories as JSON
under tests/histories/. Every test run replays all of them: a change to a workflow that would break
orders already running fails here, naming the file and the workflow.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from fakes import World
from models.order import (
    Address,
    CatalogLine,
    Channel,
    CourierEvent,
    Customer,
    Delivery,
    DeliveryMethod,
    OrderInput,
    OrderStatus,
    PaymentEvent,
    StoreEvent,
)
from models.recovery import RetryRequest
from tooling_fakes import erp_imports, refusing
from workflows import search
from workflows.erp_sync import ErpStockSyncWorkflow, SyncInput
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = ROOT / "tests" / "histories"
REFRESH = os.environ.get("ORKESTR_REFRESH_HISTORIES") == "1"
WORKFLOWS = [OrderWorkflow, FulfillmentWorkflow, ErpStockSyncWorkflow]
ADDRESS = Address(region="RU-MOW", city="Москва", line="ул. Тверская, 1", postcode="125009")
HOW_TO_REFRESH = ("If the change is deliberate, guard it with workflow.patched(...) so running workflows keep "
                  "their old path, or, if no workflow of the old shape can still be running, run `make histories` "
                  "and commit the new files.")


def order_input(order_id: str, lines: list[tuple[str, int, int]], bonus: int = 0) -> OrderInput:
    return OrderInput(
        order_id=order_id, channel=Channel.web,
        customer=Customer(phone="+79161234567", name="Анна Петрова", email="anna@example.ru"),
        lines=[CatalogLine(pos_id=i + 1, sku=s, name=f"Товар {s}", qty=q, unit_price=p)
               for i, (s, q, p) in enumerate(lines)],
        delivery=Delivery(method=DeliveryMethod.courier, address=ADDRESS),
        bonus_to_spend=bonus, placed_at=datetime(2026, 11, 23, 9, tzinfo=timezone.utc),
    )


async def until(check: Callable[[], Any], what: str) -> Any:
    for _ in range(300):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def started(env: Any, wf_id: str) -> Any:
    for _ in range(300):
        try:
            handle = env.client.get_workflow_handle(wf_id)
            await handle.describe()
            return handle
        except Exception:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{wf_id} never started")


# --------------------------------------------------------------------------------------------- scenarios
# each returns the workflow ids whose histories it produced (under the scenario's prefix)

async def _start_order(env: Any, world: World, inp: OrderInput, queue: str) -> Any:
    return await env.client.start_workflow(
        OrderWorkflow.run, inp, id=f"order-{inp.order_id}", task_queue=queue,
        search_attributes=search.initial(inp.order_id, "phonehash-golden", inp.channel.value))


async def _deliver(env: Any, world: World, order_id: str, *, parked_booking: bool = False) -> None:
    child = await started(env, f"fulfillment-{order_id}-1")
    task = await until(lambda: world.pos_tasks and world.pos_tasks[-1], "the POS task")
    await child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="assembled", task_id=task.task_id))
    if parked_booking:
        order = env.client.get_workflow_handle(f"order-{order_id}")

        async def on_hold() -> bool:
            return await order.query(OrderWorkflow.status) == OrderStatus.on_hold

        for _ in range(300):
            if await on_hold():
                break
            await asyncio.sleep(0.05)
        await order.execute_update(OrderWorkflow.retry, RetryRequest(by="operator:golden", note="адрес исправлен"))
    await until(lambda: world.bookings, "the courier booking")
    await child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status="handed_over", code="RECEIVED_AT_SHIPMENT_WAREHOUSE"))
    await child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status="delivered", code="DELIVERED"))


async def scenario_order_happy(env: Any, queue: str) -> tuple[World, list[Callable[..., Any]], Callable[[], Awaitable[list[str]]]]:
    world = World(stock={("SKU-1", "MSK-001"): 3})
    inp = order_input("GOLD-HAPPY", [("SKU-1", 2, 199_000)], bonus=10_000)

    async def drive() -> list[str]:
        handle = await _start_order(env, world, inp, queue)
        await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
        await _deliver(env, world, inp.order_id)
        assert await handle.result() == OrderStatus.completed
        return [f"order-{inp.order_id}", f"fulfillment-{inp.order_id}-1"]

    return world, world.activities(), drive


async def scenario_order_payment_expired(env: Any, queue: str) -> Any:
    world = World(stock={("SKU-1", "MSK-001"): 2})
    inp = order_input("GOLD-EXPIRED", [("SKU-1", 1, 150_000)])

    async def drive() -> list[str]:
        handle = await _start_order(env, world, inp, queue)
        await handle.execute_update(OrderWorkflow.placement)
        assert await handle.result() == OrderStatus.cancelled
        return [f"order-{inp.order_id}"]

    return world, world.activities(), drive


async def scenario_order_declined(env: Any, queue: str) -> Any:
    world = World(stock={("SKU-1", "WH-ONLINE"): 2})
    inp = order_input("GOLD-DECLINED", [("SKU-1", 1, 150_000)])

    async def drive() -> list[str]:
        handle = await _start_order(env, world, inp, queue)
        await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=False))
        assert await handle.result() == OrderStatus.cancelled
        return [f"order-{inp.order_id}"]

    return world, world.activities(), drive


async def scenario_order_out_of_stock(env: Any, queue: str) -> Any:
    world = World(stock={("SKU-1", "MSK-001"): 1})
    inp = order_input("GOLD-NOSTOCK", [("SKU-1", 2, 150_000)])

    async def drive() -> list[str]:
        handle = await _start_order(env, world, inp, queue)
        assert (await handle.execute_update(OrderWorkflow.placement)).status == OrderStatus.rejected
        assert await handle.result() == OrderStatus.rejected
        return [f"order-{inp.order_id}"]

    return world, world.activities(), drive


async def scenario_order_erp_refused_then_retried(env: Any, queue: str) -> Any:
    world = World(stock={("SKU-1", "MSK-001"): 1})
    inp = order_input("GOLD-ERPHOLD", [("SKU-1", 1, 150_000)])

    async def drive() -> list[str]:
        handle = await _start_order(env, world, inp, queue)
        await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
        for _ in range(300):
            if await handle.query(OrderWorkflow.status) == OrderStatus.on_hold:
                break
            await asyncio.sleep(0.05)
        await handle.execute_update(OrderWorkflow.retry, RetryRequest(by="operator:golden"))
        await _deliver(env, world, inp.order_id)
        assert await handle.result() == OrderStatus.completed
        return [f"order-{inp.order_id}", f"fulfillment-{inp.order_id}-1"]

    return world, refusing(world, erp_refusals=1), drive


async def scenario_fulfillment_courier_refused_then_retried(env: Any, queue: str) -> Any:
    world = World(stock={("SKU-1", "MSK-001"): 1})
    inp = order_input("GOLD-CDEKHOLD", [("SKU-1", 1, 150_000)])

    async def drive() -> list[str]:
        handle = await _start_order(env, world, inp, queue)
        await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
        await _deliver(env, world, inp.order_id, parked_booking=True)
        assert await handle.result() == OrderStatus.completed
        return [f"order-{inp.order_id}", f"fulfillment-{inp.order_id}-1"]

    return world, refusing(world, courier_refusals=1), drive


async def scenario_erp_sync(env: Any, queue: str) -> Any:
    async def drive() -> list[str]:
        for mode in ("full", "delta"):
            await env.client.execute_workflow(ErpStockSyncWorkflow.run, SyncInput(mode=mode),
                                              id=f"erp-sync-golden-{mode}", task_queue=queue)
        return ["erp-sync-golden-full", "erp-sync-golden-delta"]

    return World(), erp_imports(), drive


SCENARIOS = {
    "order_happy": scenario_order_happy,
    "order_payment_expired": scenario_order_payment_expired,
    "order_declined": scenario_order_declined,
    "order_out_of_stock": scenario_order_out_of_stock,
    "order_erp_refused_then_retried": scenario_order_erp_refused_then_retried,
    "fulfillment_courier_refused_then_retried": scenario_fulfillment_courier_refused_then_retried,
    "erp_sync": scenario_erp_sync,
}


@pytest.mark.skipif(not REFRESH, reason="set ORKESTR_REFRESH_HISTORIES=1 (make histories) to regenerate")
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_generate_history(ts_env: Any, scenario: str) -> None:
    from adapters.history import ensure_search_attributes

    await ensure_search_attributes(ts_env.client)
    queue = f"golden-{uuid.uuid4()}"
    world, activities, drive = await SCENARIOS[scenario](ts_env, queue)
    async with Worker(ts_env.client, task_queue=queue, workflows=WORKFLOWS, activities=activities):
        ids = await drive()
    HISTORIES.mkdir(parents=True, exist_ok=True)
    for old in HISTORIES.glob(f"{scenario}__*.json"):
        old.unlink()
    for wf_id in ids:
        history = await ts_env.client.get_workflow_handle(wf_id).fetch_history()
        data = json.loads(history.to_json())
        (HISTORIES / f"{scenario}__{wf_id}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def golden_files() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def workflow_id_of(path: Path) -> str:
    return path.stem.split("__", 1)[1]


def test_every_workflow_type_has_golden_histories() -> None:
    types = set()
    for path in golden_files():
        first = json.loads(path.read_text())["events"][0]
        attrs = first.get("workflowExecutionStartedEventAttributes", {})
        types.add(attrs.get("workflowType", {}).get("name"))
    assert {"OrderWorkflow", "FulfillmentWorkflow", "ErpStockSyncWorkflow"} <= types, \
        f"tests/histories/ lacks some workflow types (found {sorted(t for t in types if t)}): run `make histories`"


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: p.name)
async def test_golden_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(workflow_id_of(path), path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is not None:
        first = json.loads(path.read_text())["events"][0]
        wf_type = first["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]
        pytest.fail(f"{path.relative_to(ROOT)}: {wf_type} ({workflow_id_of(path)}) no longer replays against the "
                    f"current code: {result.replay_failure}\n{HOW_TO_REFRESH}", pytrace=False)


# --------------------------------------------------------------------------------------------- orkestr replay
BROKEN_VARIANT = "tests.workflows.nondeterministic_variant"


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORKESTR_LOG_FORMAT": "console"}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_orkestr_replay_file_passes_on_current_code() -> None:
    path = HISTORIES / "order_happy__order-GOLD-HAPPY.json"
    done = _cli("replay", "--file", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replays cleanly" in done.stdout


def test_orkestr_replay_file_detects_a_nondeterministic_change() -> None:
    """A variant of OrderWorkflow that prices the cart only after reserving stock (the steps swapped)
    must not replay a history recorded with the real order of steps."""
    path = HISTORIES / "order_happy__order-GOLD-HAPPY.json"
    done = _cli("replay", "--file", str(path), "--workflows", f"{BROKEN_VARIANT}:OrderWorkflow")
    assert done.returncode == 3, done.stdout + done.stderr
    out = done.stdout
    assert "NON-DETERMINISTIC" in out and "OrderWorkflow" in out
    assert "diverged at event" in out, out


def test_orkestr_replay_file_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    done = _cli("replay", "--file", str(tmp_path / "missing.json"))
    assert done.returncode == 2 and "missing.json" in (done.stdout + done.stderr)
