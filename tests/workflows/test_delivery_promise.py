"""The promise on the order (time-skipping server, stand-in activities): the workflow prices the
delivery and promises its dates from the region's carrier rules applied to the plan that holds the
stock, the customer pays that price, the dates are on the shipment, and the fulfillment flags a
delivery after the last promised day (on the customer's calendar) as late."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any

import pytest

from domain.promise import CarrierRule, DeliveryMethod as PromiseMethod
from fakes import World
from contracts.order import CourierEvent, OrderStatus, PaymentEvent, StoreEvent
from test_order_workflow import child_started, order_input, start, wait_until, worker
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow

MSK_TZ = timezone(timedelta(hours=3))


@pytest.mark.parametrize("delivered_msk, late", [
    (datetime(2026, 11, 25, 23, 50, tzinfo=MSK_TZ), False),  # the last promised day, late evening in Moscow
    (datetime(2026, 11, 26, 0, 20, tzinfo=MSK_TZ), True),  # 21:20 UTC on the 25th, but the 26th in Moscow
])
async def test_delivery_after_the_promised_day_is_late(ts_env: Any, delivered_msk: datetime, late: bool) -> None:
    # placed Mon 23 Nov 12:00 in Moscow, assembled in 2 h, before the 18:00 cut-off: handed over the
    # same day, delivered in 1-2 days
    world = World(stock={("SKU-1", "MSK-001"): 2}, carrier_rules=[
        CarrierRule(carrier="cdek", method=PromiseMethod.COURIER, region="RU-MOW", price=34_900, days_min=1,
                    days_max=2, cutoff=time(18, 0)),
        CarrierRule(carrier="post", method=PromiseMethod.COURIER, region="RU-MOW", price=19_900, days_min=3,
                    days_max=6, cutoff=time(18, 0))])
    order_id = f"PROMISE{int(late)}"
    inp = order_input(order_id, [("SKU-1", 1, 150_000)])
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
    assert shipment.carrier == "cdek" and world.bookings[0].carrier == "cdek"  # the earliest promise wins
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


async def test_a_method_no_rule_offers_for_the_cart_refuses_the_order_naming_the_field(ts_env: Any) -> None:
    world = World(stock={("SKU-1", "MSK-001"): 1}, carrier_rules=[
        CarrierRule(carrier="post", method=PromiseMethod.POST, region="RU-MOW", price=29_900, days_min=3,
                    days_max=6, cutoff=time(18, 0))])
    handle, queue = await start(ts_env, world, order_input("NOCOURIER", [("SKU-1", 1, 150_000)]))
    async with worker(ts_env, world, queue):
        placement = await handle.execute_update(OrderWorkflow.placement)
        assert placement.status == OrderStatus.rejected and placement.error_code == "method_not_offered"
        assert placement.error_field == "delivery.method" and "offered: post" in (placement.error_message or "")
        assert await handle.result() == OrderStatus.rejected
    assert world.units_held() == 0 and world.calls["reserve_stock"] == 0 and world.loyalty == "none"
