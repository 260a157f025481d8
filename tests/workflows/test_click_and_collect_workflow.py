"""Click & collect orders on the time-skipping server: the order's pickup stage (ReservationWorkflow
child), transfers to the store (FulfillmentWorkflow), pay online or at the till, partial pickup, expiry."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from contracts.order import (
    CancelRequest,
    CatalogLine,
    Channel,
    CourierEvent,
    Customer,
    Delivery,
    DeliveryMethod,
    LineRequest,
    OrderInput,
    OrderStatus,
    PaymentEvent,
    PaymentMethod,
    StoreEvent,
)
from pickup_fakes import PickupWorld, own_ts_env as ts_env  # noqa: F401  (a time-skipping server of its own)
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow
from workflows.reservation import ReservationWorkflow


def pickup_order(order_id: str, lines: list[tuple[str, int, int]], *, pay: PaymentMethod = PaymentMethod.card,
                 channel: Channel = Channel.web) -> OrderInput:
    return OrderInput(
        order_id=order_id, channel=channel, customer=Customer(phone="+79161234567", name="Анна"),
        lines=[CatalogLine(pos_id=i + 1, sku=s, name=f"Товар {s}", qty=q, unit_price=p)
               for i, (s, q, p) in enumerate(lines)],
        delivery=Delivery(method=DeliveryMethod.pickup, store_id="MSK-001"), payment_method=pay,
        placed_at=datetime(2026, 11, 23, 9, tzinfo=timezone.utc), assembly_sla_minutes=30)


async def start(env: Any, inp: OrderInput) -> tuple[WorkflowHandle[Any, Any], str]:
    queue = f"q-{uuid.uuid4()}"
    return await env.client.start_workflow(OrderWorkflow.run, inp, id=f"order-{inp.order_id}", task_queue=queue), queue


def worker(env: Any, world: PickupWorld, queue: str) -> Worker:
    return Worker(env.client, task_queue=queue, workflows=[OrderWorkflow, FulfillmentWorkflow, ReservationWorkflow],
                  activities=world.activities())


async def wait_until(check: Any, what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def task(world: PickupWorld, kind: str, location: str = "MSK-001") -> Any:
    return next((t for t in world.pos_tasks if t.kind == kind and t.location_id == location), None)


async def test_paid_online_collected_in_part_captures_what_was_taken(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-2", "MSK-001"): 1})
    handle, queue = await start(ts_env, pickup_order("CC1", [("SKU-1", 2, 100_000), ("SKU-2", 1, 60_000)]))
    async with worker(ts_env, world, queue):
        placement = await handle.execute_update(OrderWorkflow.placement)
        assert placement.status == OrderStatus.awaiting_payment and placement.totals.delivery == 0  # type: ignore[union-attr]
        snap = await handle.query(OrderWorkflow.snapshot)
        assert snap.extra["pickup"]["transfer_from"] == [] and "всё есть в магазине MSK-001" in snap.extra["pickup"]["note"]
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
        await wait_until(lambda: task(world, "set_aside"), "the set-aside task")
        set_aside = task(world, "set_aside")
        assert set_aside.task_id == "reservation-CC1:set_aside" and set_aside.order_id == "CC1"
        stage = ts_env.client.get_workflow_handle("reservation-CC1")
        await stage.signal(ReservationWorkflow.pos_event, StoreEvent(event="ready", task_id=set_aside.task_id, event_id="r"))
        await wait_until(lambda: world.notice("ready") is not None, "the ready message")
        for _ in range(100):
            if await handle.query(OrderWorkflow.status) == OrderStatus.ready_for_pickup:
                break
            await asyncio.sleep(0.05)
        assert await handle.query(OrderWorkflow.status) == OrderStatus.ready_for_pickup
        await stage.signal(ReservationWorkflow.pos_event, StoreEvent(
            event="issued", task_id=set_aside.task_id, event_id="i", lines=[LineRequest("SKU-1", 2)]))
        await wait_until(lambda: world.loyalty == "committed", "the loyalty commit")
        snap = await handle.query(OrderWorkflow.snapshot)
        assert await handle.result() == OrderStatus.completed  # the return window passes in test time
    assert world.captured == [200_000]  # the bill follows what was taken: SKU-2 stayed in the store
    assert snap.status == OrderStatus.completed and snap.totals.total == 200_000
    assert [(l.sku, l.qty) for l in snap.lines] == [("SKU-1", 2)]
    assert world.stock[("SKU-2", "MSK-001")] == 1 and world.units_held() == 0
    assert sorted(world.consumed.values()) == [("SKU-1", "MSK-001", 2)]
    assert world.notices[:3] == ["accepted", "paid", "ready"] and "collected" in world.notices
    assert "expired" not in world.notices and world.calls["reverse_payment"] == 0
    assert "partially_collected" in [e.kind for e in snap.timeline]


async def test_missing_items_come_by_transfer_and_the_promise_says_so(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 1, ("SKU-2", "WH-ONLINE"): 1})
    handle, queue = await start(ts_env, pickup_order("CC2", [("SKU-1", 1, 100_000), ("SKU-2", 1, 60_000)]))
    async with worker(ts_env, world, queue):
        await handle.execute_update(OrderWorkflow.placement)
        snap = await handle.query(OrderWorkflow.snapshot)
        promise = snap.extra["pickup"]
        assert promise["transfer_from"] == ["WH-ONLINE"] and "едет в магазин MSK-001 из WH-ONLINE" in promise["note"]
        assert datetime.fromisoformat(promise["ready_by"]) > datetime(2026, 11, 24, 9, tzinfo=timezone.utc)
        transfer = next(s for s in snap.shipments if s.transfer_to)
        assert transfer.location_id == "WH-ONLINE" and transfer.transfer_to == "MSK-001" and transfer.promised_to
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
        await wait_until(lambda: task(world, "assemble", "WH-ONLINE"), "the warehouse's assembly task")
        child = ts_env.client.get_workflow_handle(transfer.shipment_id)
        await child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="assembled", task_id=task(world, "assemble", "WH-ONLINE").task_id))
        await wait_until(lambda: world.bookings, "the transfer booking")
        booking = world.bookings[0]
        assert booking.from_location_id == "WH-ONLINE" and booking.address.city == "Москва" and "MSK-001" in booking.address.line
        await child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status="handed_over"))
        await asyncio.sleep(0.3)
        assert task(world, "set_aside") is None  # the pickup waits for the transfer
        assert await handle.query(OrderWorkflow.status) == OrderStatus.assembling  # no "shipped" for a transfer
        await child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status="delivered"))
        await wait_until(lambda: task(world, "set_aside"), "the set-aside task after the transfer")
        set_aside = task(world, "set_aside")
        assert {(l.sku, l.qty) for l in set_aside.lines} == {("SKU-1", 1), ("SKU-2", 1)}
        stage = ts_env.client.get_workflow_handle("reservation-CC2")
        await stage.signal(ReservationWorkflow.pos_event, StoreEvent(event="ready", task_id=set_aside.task_id, event_id="r"))
        await wait_until(lambda: world.notice("ready") is not None, "the ready message")
        await stage.signal(ReservationWorkflow.pos_event, StoreEvent(event="issued", task_id=set_aside.task_id, event_id="i"))
        await wait_until(lambda: world.loyalty == "committed", "the loyalty commit")
        snap = await handle.query(OrderWorkflow.snapshot)
        assert await handle.result() == OrderStatus.completed  # the return window passes in test time
    assert world.captured == [160_000] and snap.status == OrderStatus.completed
    assert "shipped" not in world.notices and "ready" in world.notices
    kinds = [e.kind for e in snap.timeline]
    assert "transfer" in kinds and "shipment_delivered" in kinds and "transferred" in kinds
    assert world.units_held() == 0


async def test_pay_on_pickup_store_tablet_order_registers_no_payment_and_records_the_till(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 1})
    handle, queue = await start(ts_env, pickup_order("CC3", [("SKU-1", 1, 100_000)], pay=PaymentMethod.on_pickup,
                                                     channel=Channel.store))
    async with worker(ts_env, world, queue):
        placement = await handle.execute_update(OrderWorkflow.placement)
        assert placement.status == OrderStatus.assembling and placement.payment_url is None
        await wait_until(lambda: task(world, "set_aside"), "the set-aside task")
        set_aside = task(world, "set_aside")
        stage = ts_env.client.get_workflow_handle("reservation-CC3")
        await stage.signal(ReservationWorkflow.pos_event, StoreEvent(event="ready", task_id=set_aside.task_id, event_id="r"))
        await stage.signal(ReservationWorkflow.pos_event, StoreEvent(event="issued", task_id=set_aside.task_id,
                                                                     event_id="i", paid_amount=100_000))
        await wait_until(lambda: world.loyalty == "committed", "the loyalty commit")
        snap = await handle.query(OrderWorkflow.snapshot)
        assert await handle.result() == OrderStatus.completed  # the return window passes in test time
    assert world.calls["register_payment"] == 0 and world.captured == []
    assert snap.payment.state.value == "captured" and snap.payment.captured == 100_000
    assert world.notices[0] == "accepted_on_pickup" and "paid" not in world.notices
    assert world.consumed and world.units_held() == 0


async def test_not_collected_in_time_cancels_the_order_releases_and_reverses(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 1})
    handle, queue = await start(ts_env, pickup_order("CC4", [("SKU-1", 1, 100_000)]))
    async with worker(ts_env, world, queue):
        await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
        await wait_until(lambda: task(world, "set_aside"), "the set-aside task")
        stage = ts_env.client.get_workflow_handle("reservation-CC4")
        await stage.signal(ReservationWorkflow.pos_event, StoreEvent(event="ready", task_id=task(world, "set_aside").task_id))
        assert await handle.result() == OrderStatus.cancelled  # three days pass in test time
    assert world.stock[("SKU-1", "MSK-001")] == 1 and world.units_held() == 0 and world.consumed == {}
    assert world.reversed == 1 and world.loyalty == "rolled_back" and world.captured == []
    assert world.notices.count("expired") == 1 and "cancelled" not in world.notices
    assert world.notices.index("reminder") < world.notices.index("expired")
    assert task(world, "put_back") is not None and world.settle_calls == 1


async def test_order_cancelled_after_ready_withdraws_the_stage(ts_env: Any) -> None:
    world = PickupWorld(stock={("SKU-1", "MSK-001"): 1})
    handle, queue = await start(ts_env, pickup_order("CC5", [("SKU-1", 1, 100_000)]))
    async with worker(ts_env, world, queue):
        await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
        await wait_until(lambda: task(world, "set_aside"), "the set-aside task")
        stage = ts_env.client.get_workflow_handle_for(ReservationWorkflow.run, "reservation-CC5")
        await stage.signal(ReservationWorkflow.pos_event, StoreEvent(event="ready", task_id=task(world, "set_aside").task_id))
        await wait_until(lambda: world.notice("ready") is not None, "the ready message")
        status = await handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="не успеваю"))
        assert status == OrderStatus.cancelled
        assert (await stage.result()).status.value == "cancelled"
    assert world.stock[("SKU-1", "MSK-001")] == 1 and world.units_held() == 0 and world.reversed == 1
    assert world.notices.count("cancelled") == 1 and task(world, "put_back") is not None
