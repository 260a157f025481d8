"""Outside events that arrive together have one outcome (the order's inbox, ``workflows/inbox.py``).

Each test stops the worker, delivers two messages while nothing runs (so the next workflow task
carries both), then starts a worker again: the main loop applies them one at a time against the
order as it is at that moment. On the Temporal dev server (a stopped worker's sticky queue is given
up after its timeout, which the time-skipping server does not do); stand-in activities:
tests/workflows/people_fakes.py.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.worker import Worker

from contracts.edits import LineEdit, OrderEdit
from contracts.order import CancelRequest, CourierEvent, OrderStatus, PaymentEvent, PaymentState, StoreEvent
from people_fakes import PeopleWorld
from test_order_workflow import order_input, wait_until as until
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow


def worker(env: Any, world: PeopleWorld, queue: str) -> Worker:
    """A stopped worker's sticky queue is given up after a second: the next worker gets the task."""
    return Worker(env.client, task_queue=queue, workflows=[OrderWorkflow, FulfillmentWorkflow],
                  activities=world.activities(), sticky_queue_schedule_to_start_timeout=timedelta(seconds=1))


async def start(env: Any, order_id: str) -> tuple[WorkflowHandle[Any, Any], str]:
    queue = f"q-{uuid.uuid4()}"
    handle = await env.client.start_workflow(OrderWorkflow.run, order_input(order_id, [("SKU-1", 1, 150_000)],
                                                                            bonus=5_000),
                                             id=f"order-{order_id}", task_queue=queue)
    return handle, queue


async def test_cancel_and_bank_approval_in_one_task_cancel_and_reverse_the_hold(dev_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 1})
    handle, queue = await start(dev_env, f"RACEPAY{uuid.uuid4().hex[:6].upper()}")
    async with worker(dev_env, world, queue):
        placement = await handle.execute_update(OrderWorkflow.placement)
        assert placement.status == OrderStatus.awaiting_payment
    # nothing runs now: the bank approves and the customer cancels; the next task carries both
    await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
    cancel = asyncio.create_task(handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="передумала")))
    await asyncio.sleep(0.3)
    async with worker(dev_env, world, queue):
        assert await cancel == OrderStatus.cancelled
        assert await handle.result() == OrderStatus.cancelled
    # one outcome: cancelled, and the approved hold did not stay at the bank
    assert world.reversed == 1 and world.captured == []
    assert world.units_held() == 0 and world.loyalty == "rolled_back"
    last = world.snapshots[-1]
    assert last.status == OrderStatus.cancelled and last.payment.state == PaymentState.reversed
    assert world.pos_tasks == [] and world.bookings == []  # nothing went to a store or a courier


async def test_bank_approval_after_the_cancel_is_reversed_not_dropped(dev_env: Any) -> None:
    """The cancel is applied first (the customer could still pay the link): the approval that comes
    next finds a cancelled order and its hold is reversed at once."""
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 1})
    handle, queue = await start(dev_env, f"LATEPAY{uuid.uuid4().hex[:6].upper()}")
    async with worker(dev_env, world, queue):
        await handle.execute_update(OrderWorkflow.placement)
        world.payment_status = PaymentState.held  # the customer paid; the callback is late
        assert await handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="передумала")) \
            == OrderStatus.cancelled
        assert await handle.result() == OrderStatus.cancelled
    # closing the link found it paid: the hold is reversed, the order stays cancelled
    assert world.calls["decline_payment"] == 1 and world.reversed == 1 and world.captured == []
    assert world.units_held() == 0 and world.loyalty == "rolled_back"
    assert any(e.kind == "compensated" and "payment link" in e.message for e in world.snapshots[-1].timeline)


async def test_cancel_and_courier_pickup_in_one_task_the_parcel_that_left_is_not_cancelled(dev_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 1})
    order_id = f"RACEPICK{uuid.uuid4().hex[:6].upper()}"
    handle, queue = await start(dev_env, order_id)
    child = dev_env.client.get_workflow_handle(f"fulfillment-{order_id}-1")
    async with worker(dev_env, world, queue):
        placement = await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved",
                                                                      success=True))
        await until(lambda: world.pos_tasks, "the POS assembly task")
        await child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="assembled",
                                                                     task_id=world.pos_tasks[0].task_id))
        await until(lambda: world.bookings, "the courier booking")
        for _ in range(100):
            if (await handle.query(OrderWorkflow.snapshot)).shipments[0].status.value == "booked":
                break
            await asyncio.sleep(0.03)
    # nothing runs now: the courier takes the parcel and the customer cancels
    await child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status="handed_over", code="RECEIVED"))
    cancel = asyncio.create_task(handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="передумала")))
    await asyncio.sleep(0.3)
    async with worker(dev_env, world, queue):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await cancel
        assert "handed to the courier" in str(refused.value.cause)
        # one outcome: the parcel is on its way, sold, and the order goes on to delivery and capture
        assert world.cancelled_bookings == 0 and world.calls["cancel_pos_task"] == 0
        assert sum(q for *_, q in world.consumed.values()) == 1 and world.reversed == 0
        await child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status="delivered", code="DELIVERED"))
        await until(lambda: world.loyalty == "committed", "the loyalty commit")
        assert placement.totals is not None and world.captured == [placement.totals.total]
        await handle.terminate("test over")  # the 14-day return window is not this test's business
    assert world.calls["release_stock"] == 0
    snap = world.snapshots[-1]
    assert any(e.kind == "cancel_refused" for e in snap.timeline)


async def test_updates_taken_with_the_cancel_are_answered_before_the_order_ends(dev_env: Any) -> None:
    """An edit accepted in the same task as the cancel is applied after it and refused; the
    workflow ends only once both updates have their answer."""
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 2})
    handle, queue = await start(dev_env, f"ENDING{uuid.uuid4().hex[:6].upper()}")
    async with worker(dev_env, world, queue):
        await handle.execute_update(OrderWorkflow.placement)
    cancel = asyncio.create_task(handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="передумала")))
    await asyncio.sleep(0.3)  # the cancel reaches the server first
    edit = asyncio.create_task(handle.execute_update(OrderWorkflow.edit_lines, OrderEdit(
        lines=[LineEdit(sku="SKU-1", qty=2)], by="op-ivanova")))
    await asyncio.sleep(0.3)
    async with worker(dev_env, world, queue):
        assert await cancel == OrderStatus.cancelled
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await edit
        assert "being cancelled" in str(refused.value.cause)
        assert await handle.result() == OrderStatus.cancelled
    assert world.calls["rehold_stock"] == 0 and world.units_held() == 0
