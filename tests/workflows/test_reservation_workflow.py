"""ReservationWorkflow on the time-skipping server (click & reserve), with stand-in activities."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import skip_time
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from fakes import MSK
from contracts.order import CancelRequest, Customer, LineRequest, OrderLine, StoreEvent
from contracts.reservation import ReservationInput, ReservationStatus
from pickup_fakes import PickupWorld, own_ts_env as ts_env  # noqa: F401  (a time-skipping server of its own)
from workflows.reservation import ReservationWorkflow

CUSTOMER = Customer(phone="+79161234567", name="Анна", email="anna@example.ru")


def reservation(rid: str, lines: list[tuple[str, int, int]], **kw: Any) -> ReservationInput:
    return ReservationInput(
        reservation_id=rid, store=MSK, customer=CUSTOMER, number=rid,
        lines=[OrderLine(pos_id=i + 1, sku=s, name=f"Товар {s}", qty=q, unit_price=p) for i, (s, q, p) in enumerate(lines)],
        created_at=datetime(2026, 11, 23, 9, tzinfo=timezone.utc), **kw)


async def start(env: Any, inp: ReservationInput) -> tuple[WorkflowHandle[Any, Any], str]:
    queue = f"q-{uuid.uuid4()}"
    handle = await env.client.start_workflow(ReservationWorkflow.run, inp, id=f"reservation-{inp.reservation_id}",
                                             task_queue=queue)
    return handle, queue


def worker(env: Any, world: PickupWorld, queue: str) -> Worker:
    return Worker(env.client, task_queue=queue, workflows=[ReservationWorkflow], activities=world.activities())


async def wait_until(check: Any, what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def placed_and_set_aside(handle: WorkflowHandle[Any, Any], world: PickupWorld) -> str:
    placement = await handle.execute_update(ReservationWorkflow.placement)
    assert placement.status == ReservationStatus.setting_aside
    await wait_until(lambda: world.pos_tasks, "the set-aside task")
    task = world.pos_tasks[0]
    assert task.kind == "set_aside" and task.location_id == "MSK-001"
    return task.task_id


async def ready(env: Any, handle: WorkflowHandle[Any, Any], world: PickupWorld, task_id: str) -> None:
    await handle.signal(ReservationWorkflow.pos_event, StoreEvent(event="ready", task_id=task_id, event_id="e-ready"))
    await wait_until(lambda: world.notice("ready") is not None, "the 'ready' message")


async def test_pickup_in_time_sells_what_was_held_and_records_the_till_payment(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 2})
    handle, queue = await start(ts_env, reservation("R-OK", [("SKU-1", 1, 250_000)]))
    async with worker(ts_env, world, queue):
        task_id = await placed_and_set_aside(handle, world)
        assert world.units_held() == 1 and world.stock[("SKU-1", "MSK-001")] == 1
        await ready(ts_env, handle, world, task_id)
        assert await handle.query(ReservationWorkflow.status) == ReservationStatus.ready
        _, _, params = world.notice("ready")  # type: ignore[misc]
        assert params["number"] == "R-OK" and params["until"] and params["store"] == MSK.name
        await handle.signal(ReservationWorkflow.pos_event, StoreEvent(
            event="issued", task_id=task_id, event_id="e-issued", lines=[LineRequest("SKU-1", 1)], paid_amount=250_000))
        result = await handle.result()
    assert result.status == ReservationStatus.collected and result.paid_amount == 250_000
    assert result.amount_taken == 250_000
    assert world.units_held() == 0 and sum(q for *_, q in world.consumed.values()) == 1
    assert world.stock[("SKU-1", "MSK-001")] == 1  # one sold, one still available
    assert [s.items for s in world.sales] == [[("SKU-1", 1)]]
    assert world.notices == ["reserved", "ready", "collected"]
    assert world.pos_cancels == [] and world.settle_calls == 1
    last = world.reservations[-1]
    assert last.status == ReservationStatus.collected and last.paid_amount == 250_000
    assert "payment_mismatch" not in [e.kind for e in last.timeline]


async def test_expiry_after_three_days_releases_puts_back_and_notifies(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 1})
    handle, queue = await start(ts_env, reservation("R-EXP", [("SKU-1", 1, 100_000)]))
    async with worker(ts_env, world, queue):
        task_id = await placed_and_set_aside(handle, world)
        assert world.stock[("SKU-1", "MSK-001")] == 0
        await ready(ts_env, handle, world, task_id)
        result = await handle.result()  # three days pass in test time
    assert result.status == ReservationStatus.expired
    assert world.units_held() == 0 and world.stock[("SKU-1", "MSK-001")] == 1 and world.consumed == {}
    assert world.notices == ["reserved", "ready", "reminder", "expired"]
    _, ready_at, _ = world.notice("ready")  # type: ignore[misc]
    _, expired_at, _ = world.notice("expired")  # type: ignore[misc]
    assert abs(expired_at - ready_at - timedelta(days=3)) < timedelta(minutes=5)
    assert [c.task_id for c in world.pos_cancels] == [task_id]  # the store can no longer hand it out
    put_back = [t for t in world.pos_tasks if t.kind == "put_back"]
    assert len(put_back) == 1 and put_back[0].lines == [LineRequest("SKU-1", 1)]
    assert world.settle_calls == 1
    assert world.reservations[-1].status == ReservationStatus.expired


async def test_reminder_is_sent_the_day_before_expiry(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 1})
    handle, queue = await start(ts_env, reservation("R-REM", [("SKU-1", 1, 100_000)]))
    async with worker(ts_env, world, queue):
        task_id = await placed_and_set_aside(handle, world)
        await ready(ts_env, handle, world, task_id)
        _, ready_at, _ = world.notice("ready")  # type: ignore[misc]
        await skip_time(ts_env, timedelta(days=1, hours=23))
        await asyncio.sleep(0.3)
        assert world.notice("reminder") is None
        await skip_time(ts_env, timedelta(hours=2))
        await wait_until(lambda: world.notice("reminder") is not None, "the reminder")
        _, reminded_at, params = world.notice("reminder")  # type: ignore[misc]
        assert abs(reminded_at - ready_at - timedelta(days=2)) < timedelta(minutes=5)
        assert params["until"] == world.notice("ready")[2]["until"]  # type: ignore[index]
        assert await handle.query(ReservationWorkflow.status) == ReservationStatus.ready
        await handle.signal(ReservationWorkflow.pos_event, StoreEvent(event="issued", task_id=task_id,
                                                                      event_id="e-2", paid_amount=100_000))
        assert (await handle.result()).status == ReservationStatus.collected
    assert world.notices.count("reminder") == 1


async def test_cancel_after_ready_releases_once_and_refuses_a_second_cancel(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 2})
    handle, queue = await start(ts_env, reservation("R-CAN", [("SKU-1", 2, 100_000)]))
    async with worker(ts_env, world, queue):
        task_id = await placed_and_set_aside(handle, world)
        await ready(ts_env, handle, world, task_id)
        status = await handle.execute_update(ReservationWorkflow.cancel, CancelRequest(reason="передумала"))
        assert status == ReservationStatus.cancelled
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):  # refused, or the workflow has closed
            await handle.execute_update(ReservationWorkflow.cancel, CancelRequest(reason="ещё раз"))
        assert (await handle.result()).status == ReservationStatus.cancelled
    assert world.stock[("SKU-1", "MSK-001")] == 2 and world.units_held() == 0 and world.consumed == {}
    assert world.settle_calls == 1
    assert world.notices == ["reserved", "ready", "cancelled"]
    assert [t.kind for t in world.pos_tasks] == ["set_aside", "put_back"]


async def test_partial_pickup_sells_what_was_taken_and_releases_the_rest(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-2", "MSK-001"): 1})
    handle, queue = await start(ts_env, reservation("R-PART", [("SKU-1", 2, 100_000), ("SKU-2", 1, 50_000)]))
    async with worker(ts_env, world, queue):
        task_id = await placed_and_set_aside(handle, world)
        await ready(ts_env, handle, world, task_id)
        await handle.signal(ReservationWorkflow.pos_event, StoreEvent(
            event="issued", task_id=task_id, event_id="e-p",
            lines=[LineRequest("SKU-1", 1), LineRequest("SKU-2", 1)], paid_amount=150_000))
        result = await handle.result()
    assert result.status == ReservationStatus.collected
    assert result.taken == [LineRequest("SKU-1", 1), LineRequest("SKU-2", 1)]
    assert result.amount_taken == 150_000  # the bill follows what was taken
    assert sorted(world.consumed.values()) == [("SKU-1", "MSK-001", 1), ("SKU-2", "MSK-001", 1)]
    assert world.stock[("SKU-1", "MSK-001")] == 1 and world.units_held() == 0  # the other unit is back on sale
    assert [s.items for s in world.sales] == [[("SKU-1", 1), ("SKU-2", 1)]]
    put_back = [t for t in world.pos_tasks if t.kind == "put_back"]
    assert len(put_back) == 1 and put_back[0].lines == [LineRequest("SKU-1", 1)]
    kinds = [e.kind for e in world.reservations[-1].timeline]
    assert "partially_collected" in kinds and "payment_mismatch" not in kinds


async def test_store_late_with_set_aside_is_reminded_then_escalated(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 1})
    handle, queue = await start(ts_env, reservation("R-SLA", [("SKU-1", 1, 100_000)], ready_sla_minutes=30))
    async with worker(ts_env, world, queue):
        task_id = await placed_and_set_aside(handle, world)
        await skip_time(ts_env, timedelta(minutes=65))
        await wait_until(lambda: len(world.store_messages) == 2, "the reminder and the escalation")
        snap = await handle.query(ReservationWorkflow.snapshot)
        kinds = [e.kind for e in snap.timeline]
        assert "store_reminder" in kinds and "escalated" in kinds
        assert all(m.task_id == task_id and m.location_id == "MSK-001" for m in world.store_messages)
        await ready(ts_env, handle, world, task_id)
        await handle.execute_update(ReservationWorkflow.cancel, CancelRequest(reason="не дождалась"))
        await handle.result()
    assert len(world.store_messages) == 2  # no more nagging once ready


async def test_expiry_racing_the_till_the_pickup_wins_and_nothing_is_released(ts_env: Any) -> None:
    """The hold ends as the cashier hands the goods over: the POS refuses our cancel, its 'issued' follows."""
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 1}, refuse_pos_cancel=True)
    handle, queue = await start(ts_env, reservation("R-RACE", [("SKU-1", 1, 100_000)], hold_minutes=60))
    async with worker(ts_env, world, queue):
        task_id = await placed_and_set_aside(handle, world)
        await ready(ts_env, handle, world, task_id)
        await skip_time(ts_env, timedelta(minutes=61))
        await wait_until(lambda: world.pos_cancels, "the cancel attempt")
        await handle.signal(ReservationWorkflow.pos_event, StoreEvent(event="issued", task_id=task_id,
                                                                      event_id="e-r", paid_amount=100_000))
        result = await handle.result()
    assert result.status == ReservationStatus.collected
    assert world.stock[("SKU-1", "MSK-001")] == 0 and sum(q for *_, q in world.consumed.values()) == 1
    assert "expired" not in world.notices and world.settle_calls == 1


async def test_store_without_the_items_is_refused_and_holds_nothing(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 1})
    handle, queue = await start(ts_env, reservation("R-NO", [("SKU-1", 2, 100_000)]))
    async with worker(ts_env, world, queue):
        placement = await handle.execute_update(ReservationWorkflow.placement)
        assert placement.status == ReservationStatus.rejected and placement.error_code == "OutOfStock"
        assert "MSK-001" in (placement.error_message or "") and "SKU-1 × 2" in (placement.error_message or "")
        assert (await handle.result()).status == ReservationStatus.rejected
    assert world.units_held() == 0 and world.pos_tasks == [] and world.notices == []
