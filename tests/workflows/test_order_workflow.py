"""OrderWorkflow on the time-skipping server, with stand-in activities (tests/workflows/fakes.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.client import WorkflowUpdateFailedError
from temporalio.worker import Worker

from fakes import World
from contracts.steps import ReserveRequest
from contracts.order import (
    AddressChange,
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
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow

ADDRESS = Address(region="RU-MOW", city="Москва", line="ул. Тверская, 1", postcode="125009")


def order_input(order_id: str, lines: list[tuple[str, int, int]], bonus: int = 0) -> OrderInput:
    return OrderInput(
        order_id=order_id, channel=Channel.web, customer=Customer(phone="+79161234567", name="Анна"),
        lines=[CatalogLine(pos_id=i + 1, sku=s, name=f"Товар {s}", qty=q, unit_price=p)
               for i, (s, q, p) in enumerate(lines)],
        delivery=Delivery(method=DeliveryMethod.courier, address=ADDRESS),
        bonus_to_spend=bonus, placed_at=datetime(2026, 11, 23, 9, tzinfo=timezone.utc),
    )


async def start(env: Any, world: World, inp: OrderInput) -> tuple[WorkflowHandle[Any, Any], str]:
    queue = f"q-{uuid.uuid4()}"
    handle = await env.client.start_workflow(OrderWorkflow.run, inp, id=f"order-{inp.order_id}", task_queue=queue)
    return handle, queue


def worker(env: Any, world: World, queue: str) -> Worker:
    return Worker(env.client, task_queue=queue, workflows=[OrderWorkflow, FulfillmentWorkflow],
                  activities=world.activities())


async def child_started(env: Any, wf_id: str) -> Any:
    for _ in range(200):
        try:
            h = env.client.get_workflow_handle(wf_id)
            await h.describe()
            return h
        except Exception:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{wf_id} never started")


async def wait_until(check: Any, what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_happy_path_paid_assembled_delivered_captured(ts_env: Any) -> None:
    world = World(stock={("SKU-1", "MSK-001"): 3, ("SKU-2", "MSK-001"): 1})
    inp = order_input("HAPPY1", [("SKU-1", 2, 199_000), ("SKU-2", 1, 99_900)], bonus=10_000)
    handle, queue = await start(ts_env, world, inp)
    async with worker(ts_env, world, queue):
        placement = await handle.execute_update(OrderWorkflow.placement)
        assert placement.status == OrderStatus.awaiting_payment
        assert placement.totals is not None
        assert placement.totals.subtotal == 2 * 199_000 + 99_900
        assert placement.totals.bonus_spent == 10_000
        assert placement.totals.total == placement.totals.subtotal - 10_000 + placement.totals.delivery
        assert placement.payment_url
        assert world.units_held() == 3 and world.loyalty == "held"

        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
        child = await child_started(ts_env, "fulfillment-HAPPY1-1")
        await wait_until(lambda: world.pos_tasks, "the POS assembly task")
        task = world.pos_tasks[0]
        assert task.location_id == "MSK-001" and task.kind == "assemble"
        await child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="assembled", task_id=task.task_id))
        await wait_until(lambda: world.bookings, "the courier booking")
        await child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status="handed_over", code="RECEIVED_AT_SHIPMENT_WAREHOUSE"))
        await child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status="delivered", code="DELIVERED"))
        await wait_until(lambda: world.loyalty == "committed", "the loyalty commit")
        assert world.captured == [placement.totals.total]
        assert world.units_held() == 0 and sum(q for *_, q in world.consumed.values()) == 3
        for _ in range(100):  # the status follows the commit within the same workflow task or the next
            if await handle.query(OrderWorkflow.status) == OrderStatus.completed:
                break
            await asyncio.sleep(0.05)
        assert await handle.query(OrderWorkflow.status) == OrderStatus.completed
        # the accrual becomes spendable only when the return window closes (14 days, skipped)
        assert await handle.result() == OrderStatus.completed
    assert world.activated == 100
    assert world.calls["reverse_payment"] == 0 and world.calls["release_stock"] == 0
    assert world.notices[:2] == ["accepted", "paid"] and "shipped" in world.notices and "delivered" in world.notices
    last = world.snapshots[-1]
    assert [e.kind for e in last.timeline][:3] == ["placed", "sourced", "priced"]
    assert last.shipments[0].status.value == "delivered"


async def test_payment_window_expiry_releases_stock_and_rolls_back_loyalty(ts_env: Any) -> None:
    world = World(stock={("SKU-1", "MSK-001"): 2})
    inp = order_input("EXPIRE1", [("SKU-1", 2, 150_000)], bonus=5_000)
    handle, queue = await start(ts_env, world, inp)
    async with worker(ts_env, world, queue):
        placement = await handle.execute_update(OrderWorkflow.placement)
        assert placement.status == OrderStatus.awaiting_payment
        assert world.units_held() == 2
        assert await handle.result() == OrderStatus.cancelled  # 20 minutes pass in test time
    assert world.units_held() == 0 and world.stock[("SKU-1", "MSK-001")] == 2
    assert world.loyalty == "rolled_back"
    assert world.calls["payment_status"] >= 4  # polled the bank while no callback came
    assert world.captured == [] and world.calls["export_order"] == 0
    assert world.notices[-1] == "payment_expired"
    assert world.snapshots[-1].status == OrderStatus.cancelled


async def test_declined_payment_cancels_and_undoes_everything(ts_env: Any) -> None:
    world = World(stock={("SKU-1", "WH-ONLINE"): 5})
    inp = order_input("DECLINE1", [("SKU-1", 1, 150_000)])
    handle, queue = await start(ts_env, world, inp)
    async with worker(ts_env, world, queue):
        await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=False))
        assert await handle.result() == OrderStatus.cancelled
    assert world.units_held() == 0 and world.stock[("SKU-1", "WH-ONLINE")] == 5
    assert world.loyalty == "rolled_back" and world.reversed == 0
    assert world.notices[-1] == "payment_declined"


async def test_out_of_stock_is_refused_and_holds_nothing(ts_env: Any) -> None:
    world = World(stock={("SKU-1", "MSK-001"): 1})
    inp = order_input("NOSTOCK1", [("SKU-1", 2, 150_000)])
    handle, queue = await start(ts_env, world, inp)
    async with worker(ts_env, world, queue):
        placement = await handle.execute_update(OrderWorkflow.placement)
        assert placement.status == OrderStatus.rejected
        assert placement.error_code == "OutOfStock" and "SKU-1" in (placement.error_message or "")
        assert await handle.result() == OrderStatus.rejected
    assert world.units_held() == 0 and world.loyalty == "none" and world.calls["register_payment"] == 0
    assert world.snapshots == []  # a refused order leaves no projection row behind


async def test_stock_moved_meanwhile_is_resourced_once(ts_env: Any) -> None:
    """The first look-up shows the Moscow store; by the time we hold, it is gone: the warehouse ships."""
    world = World(stock={("SKU-1", "MSK-001"): 1, ("SKU-1", "WH-ONLINE"): 4})
    original = world.activities

    def racing() -> list[Any]:
        acts = original()
        reserve = next(a for a in acts if getattr(a, "__temporal_activity_definition").name == "reserve_stock")

        from temporalio import activity as act

        @act.defn(name="reserve_stock")
        async def reserve_after_a_store_sale(req: ReserveRequest) -> None:
            if world.calls["reserve_stock"] == 0:
                world.stock[("SKU-1", "MSK-001")] = 0  # sold at the till meanwhile
            await reserve(req)

        return [reserve_after_a_store_sale if a is reserve else a for a in acts]

    world.activities = racing  # type: ignore[method-assign]
    inp = order_input("RACE1", [("SKU-1", 1, 150_000)])
    handle, queue = await start(ts_env, world, inp)
    async with worker(ts_env, world, queue):
        placement = await handle.execute_update(OrderWorkflow.placement)
        assert placement.status == OrderStatus.awaiting_payment
        snapshot = await handle.query(OrderWorkflow.snapshot)
        await handle.terminate("test over")  # leave no timers behind on the shared time-skipping server
    assert [s.location_id for s in snapshot.shipments] == ["WH-ONLINE"]
    assert any(e.kind == "resourcing" for e in snapshot.timeline)
    assert world.calls["reserve_stock"] == 2


async def test_operator_changes_the_address_before_booking_and_not_after(ts_env: Any) -> None:
    world = World(stock={("SKU-1", "MSK-001"): 1})
    inp = order_input("ADDR1", [("SKU-1", 1, 150_000)])
    handle, queue = await start(ts_env, world, inp)
    spb = Address(region="RU-SPE", city="Санкт-Петербург", line="Невский пр., 28", postcode="191186")
    async with worker(ts_env, world, queue):
        await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
        child = await child_started(ts_env, "fulfillment-ADDR1-1")
        await wait_until(lambda: world.pos_tasks, "the POS assembly task")
        delivery = await handle.execute_update(OrderWorkflow.change_address, AddressChange(address=spb, by="op-7"))
        assert delivery.address == spb
        with pytest.raises(WorkflowUpdateFailedError):  # nobody: refused by the validator, nothing changes
            await handle.execute_update(OrderWorkflow.change_address, AddressChange(address=ADDRESS, by=" "))
        await child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="assembled", task_id=world.pos_tasks[0].task_id))
        await wait_until(lambda: world.bookings, "the courier booking")
        assert world.bookings[0].address == spb  # the courier got the new address
        for _ in range(100):
            snap = await handle.query(OrderWorkflow.snapshot)
            if snap.shipments[0].status.value == "booked":
                break
            await asyncio.sleep(0.05)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(OrderWorkflow.change_address, AddressChange(address=ADDRESS, by="op-7"))
        assert "already with the courier" in str(refused.value.cause)
        snap = await handle.query(OrderWorkflow.snapshot)
        assert snap.delivery.address == spb and any(e.kind == "address_changed" for e in snap.timeline)
        await handle.terminate("test over")
