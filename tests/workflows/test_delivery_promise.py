"""The promise on the order (time-skipping server, stand-in activities): the quoted delivery price
is what the customer pays, the promised dates are on the shipment, and the fulfillment flags a
delivery after the last promised day (on the customer's calendar) as late."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from fakes import World
from contracts.order import CourierEvent, Delivery, OrderStatus, PaymentEvent, StoreEvent
from test_order_workflow import ADDRESS, child_started, order_input, start, wait_until, worker
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow

MSK_TZ = timezone(timedelta(hours=3))


@pytest.mark.parametrize("delivered_msk, late", [
    (datetime(2026, 11, 25, 23, 50, tzinfo=MSK_TZ), False),  # the last promised day, late evening in Moscow
    (datetime(2026, 11, 26, 0, 20, tzinfo=MSK_TZ), True),  # 21:20 UTC on the 25th, but the 26th in Moscow
])
async def test_delivery_after_the_promised_day_is_late(ts_env: Any, delivered_msk: datetime, late: bool) -> None:
    world = World(stock={("SKU-1", "MSK-001"): 2})
    order_id = f"PROMISE{int(late)}"
    inp = dataclasses.replace(order_input(order_id, [("SKU-1", 1, 150_000)]), delivery=Delivery(
        method="courier", address=ADDRESS, carrier="cdek", price=34_900,  # type: ignore[arg-type]
        promised_from="2026-11-24", promised_to="2026-11-25"))
    handle, queue = await start(ts_env, world, inp)
    async with worker(ts_env, world, queue):
        placement = await handle.execute_update(OrderWorkflow.placement)
        assert placement.totals is not None and placement.totals.delivery == 34_900
        assert placement.totals.total == 150_000 + 34_900
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved",
                                                                      success=True))
        child = await child_started(ts_env, f"fulfillment-{order_id}-1")
        await wait_until(lambda: world.pos_tasks, "the POS assembly task")
        await child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="assembled",
                                                                     task_id=world.pos_tasks[0].task_id))
        await wait_until(lambda: world.bookings, "the courier booking")
        await child.signal(FulfillmentWorkflow.courier_event, CourierEvent(
            status="delivered", code="DELIVERED", at=delivered_msk.astimezone(timezone.utc)))
        assert await handle.result() == OrderStatus.completed
    shipment = world.snapshots[-1].shipments[0]
    assert (shipment.promised_from, shipment.promised_to) == ("2026-11-24", "2026-11-25")
    assert shipment.late is late
    assert shipment.delivered_at == delivered_msk
    delivered = next(e for e in world.snapshots[-1].timeline if e.kind == "shipment_delivered")
    assert delivered.data["late"] is late and ("с опозданием" in delivered.message) is late


async def test_without_a_promise_nothing_is_late(ts_env: Any) -> None:
    world = World(stock={("SKU-1", "MSK-001"): 1})
    inp = order_input("NOPROMISE", [("SKU-1", 1, 150_000)])
    handle, queue = await start(ts_env, world, inp)
    async with worker(ts_env, world, queue):
        await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved",
                                                                      success=True))
        child = await child_started(ts_env, "fulfillment-NOPROMISE-1")
        await wait_until(lambda: world.pos_tasks, "the POS assembly task")
        await child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="assembled",
                                                                     task_id=world.pos_tasks[0].task_id))
        await wait_until(lambda: world.bookings, "the courier booking")
        await child.signal(FulfillmentWorkflow.courier_event, CourierEvent(
            status="delivered", code="DELIVERED", at=datetime(2030, 1, 1, tzinfo=timezone.utc)))
        assert await handle.result() == OrderStatus.completed
    shipment = world.snapshots[-1].shipments[0]
    assert shipment.promised_to is None and shipment.late is False
    assert "late" not in next(e for e in world.snapshots[-1].timeline if e.kind == "shipment_delivered").data
