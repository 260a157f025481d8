"""ErpStockSyncWorkflow: full and delta imports from the ERP sandbox into the ledger, a failed page
retried without re-reading or duplicating, reservations kept through imports, and the schedules
``worker.bootstrap`` creates.

The time-skipping test isolates the workflow (stand-in activities); the others run through the
whole stack (``stack``: sandbox ERP over HTTP, the real worker, PostgreSQL, the dev server).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from conftest import skip_time, time_skipping_server  # noqa: E402
from helpers import fresh_sku, ledger_row, next_phone, order_body  # noqa: E402

from activities.erp import ErpActivities  # noqa: E402
from adapters.catalog import CatalogRepo  # noqa: E402
from adapters.erp import ErpClient  # noqa: E402
from adapters.errors import ExternalUnavailable  # noqa: E402
from adapters.ledger import Ledger  # noqa: E402
from contracts.steps import ImportResult  # noqa: E402
from workflows.erp_sync import ErpStockSyncWorkflow, SyncInput, SyncResult  # noqa: E402


# --- the workflow alone (time-skipping) ----------------------------------------------------------------
async def test_full_sync_runs_every_import_in_order_and_retries_a_failed_one(ts_env: Any) -> None:
    calls: list[str] = []
    attempts = {"import_stock_full": 0}

    def stub(name: str, rows: int) -> Any:
        @activity.defn(name=name)
        async def run() -> ImportResult:
            calls.append(name)
            if name == "import_stock_full":
                attempts[name] += 1
                if attempts[name] == 1:
                    raise ApplicationError("ERP answered 503 on page 3")  # retryable: a transport fault
            return ImportResult(rows=rows, version=41 if name.startswith("import_stock") else 0)

        return run

    acts = [stub("import_locations", 8), stub("import_products", 30), stub("import_prices", 300),
            stub("import_stock_full", 750), stub("import_stock_delta", 3)]
    queue = f"q-{uuid.uuid4()}"
    async with Worker(ts_env.client, task_queue=queue, workflows=[ErpStockSyncWorkflow], activities=acts):
        full = await ts_env.client.execute_workflow(ErpStockSyncWorkflow.run, SyncInput(mode="full"),
                                                    id=f"sync-{uuid.uuid4()}", task_queue=queue)
        delta = await ts_env.client.execute_workflow(ErpStockSyncWorkflow.run, SyncInput(mode="delta"),
                                                     id=f"sync-{uuid.uuid4()}", task_queue=queue)
    assert full == SyncResult(mode="full", locations=8, products=30, prices=300, stock_rows=750, version=41)
    assert delta == SyncResult(mode="delta", stock_rows=3, version=41)
    assert calls == ["import_locations", "import_products", "import_prices", "import_stock_full",
                     "import_stock_full", "import_stock_delta"]


async def test_delta_loop_imports_every_interval_survives_a_failed_round_and_continues_as_new() -> None:
    """One long-running delta sync instead of a workflow a minute: a round every ``every_seconds`` (the
    signal changes it), a round whose import fails for good does not end it, and after
    ``runs_per_history`` rounds it continues as new with the interval it has now. A time-skipping server of
    its own: the run it terminates would slow the shared one's clock (temporalio/sdk-java#3088)."""
    from temporalio.client import WorkflowExecutionStatus

    rounds: list[Any] = []

    @activity.defn(name="import_stock_delta")
    async def import_stock_delta() -> ImportResult:
        rounds.append(activity.info().current_attempt_scheduled_time)
        if len(rounds) == 2:
            raise ApplicationError("ERP refused the delta", non_retryable=True)  # this round fails for good
        return ImportResult(rows=1, version=len(rounds))

    queue = f"q-{uuid.uuid4()}"
    wf_id = f"sync-loop-{uuid.uuid4()}"
    async with time_skipping_server() as ts_env, \
            Worker(ts_env.client, task_queue=queue, workflows=[ErpStockSyncWorkflow],
            activities=[import_stock_delta]):
        handle = await ts_env.client.start_workflow(
            ErpStockSyncWorkflow.run, SyncInput(mode="delta", every_seconds=60, runs_per_history=3), id=wf_id,
            task_queue=queue)

        async def rounds_done(n: int) -> None:
            for _ in range(300):
                if len(rounds) >= n:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError(f"{len(rounds)} rounds, expected {n}")

        await rounds_done(1)
        for n in (2, 3):  # the second round fails for good
            await skip_time(ts_env, timedelta(seconds=60))
            await rounds_done(n)
        await handle.signal(ErpStockSyncWorkflow.set_interval, 600)
        await skip_time(ts_env, timedelta(seconds=60))  # the sleep already begun keeps its length
        await rounds_done(4)
        await skip_time(ts_env, timedelta(seconds=600))
        await rounds_done(5)
        latest = await ts_env.client.get_workflow_handle(wf_id).describe()
        assert latest.status == WorkflowExecutionStatus.RUNNING  # the failed round ended nothing
        assert latest.run_id != handle.first_execution_run_id  # three rounds, then a new run
        await ts_env.client.get_workflow_handle(wf_id).terminate("test over")
    gaps = [round((b - a).total_seconds()) for a, b in zip(rounds, rounds[1:])]  # an activity starts a few ms late
    assert gaps == [60, 60, 60, 600]  # every_seconds between rounds; the new run uses the interval it was told


# --- through the stack -------------------------------------------------------------------------------------
pytestmark_e2e = pytest.mark.e2e


async def erp_stock(stack: Any, sku: str) -> dict[str, int]:
    r = await stack.sandbox.get("/sandbox/erp/stock", params={"sku": sku})
    r.raise_for_status()
    return {row["location_id"]: row["quantity"] for row in r.json()["items"]}


async def ledger_stock(stack: Any, sku: str) -> dict[str, int]:
    async with stack.engine.connect() as conn:
        rows = await conn.execute(text("SELECT location_id, on_hand FROM stock WHERE sku = :s"), {"s": sku})
        return {r.location_id: r.on_hand for r in rows}


def nonzero(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}


@pytestmark_e2e
async def test_delta_brings_erp_changes_and_store_sales_into_the_ledger(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-001": 2})
    r = await stack.sandbox.post("/sandbox/erp/stock", json={"items": [
        {"sku": sku, "location_id": "MSK-001", "quantity": 7}, {"sku": sku, "location_id": "SPB-001", "quantity": 3}]})
    r.raise_for_status()
    result = await stack.sync("delta")
    assert result.mode == "delta" and result.stock_rows >= 2
    assert nonzero(await ledger_stock(stack, sku)) == {"MSK-001": 7, "SPB-001": 3}

    r = await stack.sandbox.post("/sandbox/erp/simulate-sales", json={"count": 15})
    r.raise_for_status()
    sales = r.json()["sales"]
    assert sales, "the ERP sandbox sold nothing"
    await stack.sync("delta")
    final: dict[tuple[str, str], int] = {}
    for sale in sales:  # the last movement of each pair is its quantity now
        final[(sale["Sku"], sale["Warehouse"])] = sale["Quantity"]
    for (s, loc), qty in final.items():
        assert (await ledger_stock(stack, s)).get(loc) == qty, (s, loc)

    full = await stack.sync("full")
    assert full.locations == 8 and full.products == 30 and full.stock_rows > 100
    for s in {s for s, _ in final} | {sku}:
        assert nonzero(await ledger_stock(stack, s)) == nonzero(await erp_stock(stack, s))


@pytestmark_e2e
async def test_full_sync_during_active_reservations_keeps_them(stack: Any) -> None:
    sku = await fresh_sku(stack, {"MSK-003": 5})
    r = await stack.api.post("/v1/orders", json=order_body(sku, 2, phone=next_phone()))
    assert r.status_code == 201, r.text
    assert await ledger_row(stack, sku, "MSK-003") == (5, 2)
    # the store sells 1 at the till, the ERP knows, a full import runs: the order's 2 units stay held
    r = await stack.sandbox.post("/sandbox/erp/stock", json={"items": [
        {"sku": sku, "location_id": "MSK-003", "quantity": 4}]})
    r.raise_for_status()
    await stack.sync("full")
    assert await ledger_row(stack, sku, "MSK-003") == (4, 2)
    stock = (await stack.api.get("/v1/stock", params={"sku": sku})).json()["items"][0]
    assert stock["available"] == 2


@pytestmark_e2e
async def test_failed_stock_page_is_retried_by_the_workflow(stack: Any) -> None:
    sku = await fresh_sku(stack, {"SPB-002": 4})
    await stack.sandbox.post("/sandbox/erp/stock", json={"items": [{"sku": sku, "location_id": "SPB-002",
                                                                    "quantity": 6}]})
    before = (await stack.sandbox.get("/sandbox/erp/faults")).json()["injected"]
    r = await stack.sandbox.post("/sandbox/erp/faults", json={"fail_next": 1, "operations": ["stock"]})
    r.raise_for_status()
    try:
        result = await asyncio.wait_for(stack.sync("full"), timeout=45)  # one retry after ~2 s
    finally:
        await stack.sandbox.post("/sandbox/erp/faults", json={"fail_next": 0})
    assert (await stack.sandbox.get("/sandbox/erp/faults")).json()["injected"] == before + 1
    assert result.stock_rows > 100
    assert nonzero(await ledger_stock(stack, sku)) == {"SPB-002": 6}


@pytestmark_e2e
async def test_stock_import_resumes_after_the_failed_page_without_rereading(stack: Any,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The activity itself, attempt by attempt: pages of 100 rows; the ERP fails the 3rd page; the
    retry (with the heartbeat the first attempt left) starts at row 200 and the ledger ends equal to
    the ERP with reservations untouched."""
    import activities.erp as erp_acts

    monkeypatch.setattr(erp_acts, "PAGE", 20)  # stock pages are PAGE * 5 = 100 rows
    sku = await fresh_sku(stack, {"ALA-001": 3})
    owner = f"order-RESUME{uuid.uuid4().hex[:6]}"
    from contracts.stock import Allocation

    ledger = Ledger(stack.engine)
    await ledger.reserve(owner, [Allocation(key=f"{owner}:1", sku=sku, location_id="ALA-001", qty=2)])
    s = stack.settings
    total = (await stack.sandbox.get("/sandbox/erp/stock")).json()["rows"]
    assert total > 300

    async with httpx.AsyncClient(base_url=s.erp_url, timeout=10) as http:
        acts = ErpActivities(ErpClient(http, user=s.erp_user, password=s.erp_password), CatalogRepo(stack.engine),
                             ledger, stack.engine)
        first = ActivityEnvironment()
        beats: list[tuple[Any, ...]] = []

        def on_heartbeat(*details: Any) -> None:
            beats.append(details)
            if len(beats) == 2:  # two pages applied: the ERP fails the next one
                httpx.post(f"{stack.sandbox_url}/sandbox/erp/faults",
                           json={"fail_next": 1, "operations": ["stock"]}).raise_for_status()

        first.on_heartbeat = on_heartbeat
        with pytest.raises(ExternalUnavailable):
            await first.run(acts.import_stock_full)
        assert [b[0] for b in beats] == [100, 200]

        retry = ActivityEnvironment()
        retry.info = dataclasses.replace(retry.info, attempt=2, heartbeat_details=list(beats[-1]))
        resumed = await retry.run(acts.import_stock_full)
    assert resumed.rows == total - 200  # the two pages already applied were not fetched again
    assert resumed.version == beats[-1][1]
    assert nonzero(await ledger_stock(stack, sku)) == nonzero(await erp_stock(stack, sku))
    assert await ledger_row(stack, sku, "ALA-001") == (3, 2)
    await ledger.release(owner)


@pytestmark_e2e
async def test_bootstrap_creates_the_full_schedule_and_one_delta_loop_idempotently(stack: Any) -> None:
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleIntervalSpec,
        ScheduleSpec,
        WorkflowExecutionStatus,
    )
    from temporalio.service import RPCError, RPCStatusCode

    from worker import DELTA_SYNC_ID, bootstrap

    # a queue nobody polls: nothing runs, the test looks at what bootstrap left in Temporal
    settings = stack.settings.model_copy(update={"task_queue": f"sched-{uuid.uuid4().hex[:8]}",
                                                 "erp_sync_delta_every_seconds": 45})
    # an older version left a delta *schedule* (a new workflow every minute in the UI's list)
    await stack.temporal.create_schedule(DELTA_SYNC_ID, Schedule(
        action=ScheduleActionStartWorkflow(ErpStockSyncWorkflow.run, SyncInput(mode="delta"), id=DELTA_SYNC_ID,
                                           task_queue=settings.task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=60))])))
    try:
        await bootstrap(stack.temporal, settings, schedules=True, initial_sync=False)
        restarted = settings.model_copy(update={"erp_sync_delta_every_seconds": 30})
        await bootstrap(stack.temporal, restarted, schedules=True, initial_sync=False)  # a restart: no error

        desc = await stack.temporal.get_schedule_handle("erp-sync-full").describe()
        action = desc.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "ErpStockSyncWorkflow" and action.task_queue == settings.task_queue
        assert desc.schedule.spec.intervals[0].every.total_seconds() == settings.erp_sync_full_every_minutes * 60
        with pytest.raises(RPCError) as gone:
            await stack.temporal.get_schedule_handle(DELTA_SYNC_ID).describe()
        assert gone.value.status == RPCStatusCode.NOT_FOUND

        # one delta workflow, started once, told each interval
        runs = [w async for w in stack.temporal.list_workflows(f'WorkflowId = "{DELTA_SYNC_ID}"')]
        running = [w for w in runs if w.status == WorkflowExecutionStatus.RUNNING]
        assert len(running) == 1 and running[0].task_queue == settings.task_queue
        history = await stack.temporal.get_workflow_handle(DELTA_SYNC_ID).fetch_history()
        signals = [e.workflow_execution_signaled_event_attributes for e in history.events
                   if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
        assert [s.signal_name for s in signals] == ["set_interval", "set_interval"]
        started = history.events[0].workflow_execution_started_event_attributes
        assert b"45" in started.input.payloads[0].data
    finally:
        for sched in ("erp-sync-full", DELTA_SYNC_ID):
            try:
                await stack.temporal.get_schedule_handle(sched).delete()
            except RPCError:
                pass
        try:
            await stack.temporal.get_workflow_handle(DELTA_SYNC_ID).terminate("test over")
        except RPCError:
            pass
