"""Golden histories: every workflow type and path, recorded once, replayed against the current code.

``ORKESTR_REFRESH_HISTORIES=1`` (``make histories``) runs each scenario on a time-skipping server with
the stand-in activities (tests/workflows/fakes.py, tooling_fakes.py, return_fakes.py, people_fakes.py)
and saves the histories as JSON under tests/histories/ as ``<scenario>__<workflow id>.json``. Every
test run replays all of them: a change to a workflow that would break orders, returns or shipments
already running fails here, naming the file and the workflow.

The return and operator (people in the loop) scenarios drive the workflows with the helpers of
test_return_workflow.py and test_people_workflow.py, so a golden path is the same path those tests check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from conftest import skip_time
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from fakes import World
from contracts.order import (
    Address,
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
    StoreEvent,
)
from contracts.recovery import RetryRequest
from contracts.returns import ReturnInput, ReturnMethod, ReturnStatus
from contracts.tasks import SubstituteOffer, TaskAction, TaskDecision
from people_fakes import PeopleWorld
from return_fakes import ORDER_LINES, ReturnWorld
from contracts.edits import LineEdit
from test_order_edits import edit, placed
from test_people_workflow import Run, SlowCourierWorld, _shortage_task
from test_return_workflow import deliver_replacement, exchange_input, return_input, store_event, wait_status
from tooling_fakes import erp_imports, refusing
from workflows.registry import WORKFLOWS as RUNNING_WORKFLOWS
from workflows import search
from workflows.erp_sync import ErpStockSyncWorkflow, SyncInput
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow
from workflows.returns import ReturnWorkflow

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = ROOT / "tests" / "histories"
REFRESH = os.environ.get("ORKESTR_REFRESH_HISTORIES") == "1"
#: every workflow type the worker runs (workflows.registry.WORKFLOWS): the replayer needs each type that appears in a
#: history (ReturnWorkflow starts FulfillmentWorkflow children for exchanges), and every one of them must
#: have golden histories. The helpers (Edits, Substitutions, EscalationLadder, Recovery, TaskBoard, …) are parts of
#: these classes, not workflow types of their own.
WORKFLOWS: list[type] = list(RUNNING_WORKFLOWS)
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


async def _deliver(env: Any, world: World, order_id: str, *, parked_booking: bool = False, shipment: int = 1) -> None:
    child = await started(env, f"fulfillment-{order_id}-{shipment}")
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


async def scenario_erp_sync_delta_loop(env: Any, queue: str) -> Any:
    """The long-running delta sync: two rounds, continued as new, one more round with a new interval,
    then cancelled (so the last run's history is closed)."""
    from datetime import timedelta

    from conftest import skip_time

    wf_id = "erp-sync-golden-loop"

    async def drive() -> list[str]:
        handle = await env.client.start_workflow(
            ErpStockSyncWorkflow.run, SyncInput(mode="delta", every_seconds=60, runs_per_history=2), id=wf_id,
            task_queue=queue)
        await skip_time(env, timedelta(seconds=125))  # two rounds, then a new run and its first round
        await handle.signal(ErpStockSyncWorkflow.set_interval, 90)
        await skip_time(env, timedelta(seconds=1))
        latest = env.client.get_workflow_handle(wf_id)
        await latest.cancel()
        with contextlib.suppress(Exception):
            await latest.result()
        return [wf_id]

    return World(), erp_imports(), drive

# --------------------------------------------------------------------------------------------- returns
# the paths of test_return_workflow.py, with fixed return ids (file names stay put when regenerated)

async def _start_return(env: Any, inp: ReturnInput, queue: str) -> Any:
    return await env.client.start_workflow(ReturnWorkflow.run, inp, id=f"return-{inp.return_id}", task_queue=queue)


def _return_scenario(inp: ReturnInput, new_world: Callable[[], ReturnWorld],
                     steps: Callable[[Any, Any, ReturnWorld], Awaitable[None]], expected: ReturnStatus,
                     extra_ids: tuple[str, ...] = ()) -> Callable[[Any, str], Awaitable[Any]]:
    async def scenario(env: Any, queue: str) -> Any:
        world = new_world()

        async def drive() -> list[str]:
            handle = await _start_return(env, inp, queue)
            await steps(env, handle, world)
            assert await handle.result() == expected
            return [handle.id, *extra_ids]

        return world, world.activities(), drive

    return scenario


async def _in_store_accepted(env: Any, handle: Any, world: ReturnWorld) -> None:
    await wait_status(handle, ReturnStatus.awaiting_goods)
    await store_event(handle, "received")
    await wait_status(handle, ReturnStatus.received)
    await store_event(handle, "inspected", accepted=[LineRequest("SKU-1", 2), LineRequest("SKU-2", 1)])


async def _courier_partly_rejected(env: Any, handle: Any, world: ReturnWorld) -> None:
    await wait_status(handle, ReturnStatus.awaiting_goods)
    await handle.signal(ReturnWorkflow.courier_event, CourierEvent(status="handed_over", code="TAKEN_BY_COURIER"))
    await wait_status(handle, ReturnStatus.in_transit)
    await handle.signal(ReturnWorkflow.courier_event, CourierEvent(status="delivered", code="DELIVERED"))
    await wait_status(handle, ReturnStatus.received)
    await store_event(handle, "inspected", accepted=[LineRequest("SKU-1", 1)],
                      rejected=[{"sku": "SKU-1", "qty": 1, "reason": "следы носки"}])


async def _post(env: Any, handle: Any, world: ReturnWorld) -> None:
    await wait_status(handle, ReturnStatus.awaiting_goods)
    await store_event(handle, "inspected", accepted=[LineRequest("SKU-2", 1)])  # the parcel arrives by polling


async def _nothing(env: Any, handle: Any, world: ReturnWorld) -> None:
    """Nobody brings anything: the receipt window (14 days) passes on the skipping clock."""


GOLD_EXCHANGE = dataclasses.replace(exchange_input(ORDER_LINES[0].unit_price), return_id="GOLD-EXCH")


async def _exchange_same_price(env: Any, handle: Any, world: ReturnWorld) -> None:
    await wait_status(handle, ReturnStatus.awaiting_goods)
    await store_event(handle, "received")
    await store_event(handle, "inspected", accepted=[LineRequest("SKU-1", 1)])
    await deliver_replacement(env, world, GOLD_EXCHANGE)


scenario_return_in_store_accepted = _return_scenario(
    return_input(ReturnMethod.in_store, [(1, 2), (2, 1)], rid="GOLD-INSTORE"), ReturnWorld,
    _in_store_accepted, ReturnStatus.completed)
scenario_return_courier_partly_rejected = _return_scenario(
    return_input(ReturnMethod.courier_pickup, [(1, 2)], rid="GOLD-COURIER"), ReturnWorld,
    _courier_partly_rejected, ReturnStatus.completed)
scenario_return_post = _return_scenario(
    return_input(ReturnMethod.post, [(2, 1)], rid="GOLD-POST"),
    lambda: ReturnWorld(tracking=["created", "handed_over", "in_transit", "delivered"]), _post,
    ReturnStatus.completed)
scenario_return_abandoned = _return_scenario(
    return_input(ReturnMethod.in_store, [(1, 1)], rid="GOLD-ABANDONED"), ReturnWorld,
    _nothing, ReturnStatus.abandoned)
scenario_return_exchange_same_price = _return_scenario(
    GOLD_EXCHANGE, lambda: ReturnWorld(stock={("SKU-1-L", "MSK-001"): 2}), _exchange_same_price,
    ReturnStatus.completed, extra_ids=(f"fulfillment-{GOLD_EXCHANGE.order_id}-{GOLD_EXCHANGE.return_id}",))


# --------------------------------------------------------------------------------------------- operators
# the people-in-the-loop paths of test_people_workflow.py (issue 5), driven with its Run helper

def _people_scenario(order_id: str, stock: dict[tuple[str, str], int], lines: list[tuple[str, int, int]],
                     steps: Callable[[Run], Awaitable[None]], expected: OrderStatus,
                     bonus: int = 0, shipments: int = 1,
                     world_type: type[PeopleWorld] = PeopleWorld) -> Callable[[Any, str], Awaitable[Any]]:
    async def scenario(env: Any, queue: str) -> Any:
        world = world_type(stock=dict(stock))
        inp = order_input(order_id, lines, bonus=bonus)

        async def drive() -> list[str]:
            handle = await _start_order(env, world, inp, queue)
            await steps(Run(env, world, handle, order_id))
            assert await handle.result() == expected
            return [f"order-{order_id}", *(f"fulfillment-{order_id}-{n}" for n in range(1, shipments + 1))]

        return world, world.activities(), drive

    return scenario


async def _escalated_to_resourcing(r: Run) -> None:
    await r.pay_and_wait_assembly()
    await skip_time(r.env, timedelta(minutes=121))  # the SLA passed: the store is reminded
    await r.until(lambda: r.world.store_messages, "a POS reminder")
    await skip_time(r.env, timedelta(minutes=60))  # the supervisor is asked
    await r.until(lambda: r.world.task_of("assembly_late"), "the supervisor task")
    await skip_time(r.env, timedelta(minutes=60))  # nobody answered: the shipment moves to the warehouse
    await r.until(lambda: len(r.world.pos_tasks) == 2, "the POS task at the warehouse")
    assert r.world.pos_tasks[1].location_id == "WH-ONLINE"
    assert await r.deliver() == OrderStatus.completed


async def _substitution_accepted(r: Run) -> None:
    task = await _shortage_task(r)
    await r.complete(r.handle, TaskDecision(
        task_id=task.spec.task_id, action=TaskAction.substitute, sku="SKU-2", by="op-msk-volkova",
        offer=SubstituteOffer("SKU-2", "Ремень", 99_000, available=3)))
    await r.until(lambda: any("положите SKU-2" in m.text for m in r.world.store_messages), "the store told")
    assert await r.deliver() == OrderStatus.completed


async def _substitution_timed_out(r: Run) -> None:
    task = await _shortage_task(r)
    await skip_time(r.env, timedelta(minutes=31))  # half the deadline: the next operator gets it
    await r.until(lambda: r.world.tasks[task.spec.task_id].reassigned == 1, "the reassignment")
    await skip_time(r.env, timedelta(minutes=30))  # the deadline: the missing unit is removed
    await r.until(lambda: r.world.tasks[task.spec.task_id].status == "expired", "the default decision")
    assert r.world.tasks[task.spec.task_id].result["action"] == "remove"
    await r.until(lambda: any("уберите SKU-1" in m.text for m in r.world.store_messages), "the store told")
    assert await r.deliver() == OrderStatus.completed


async def _cancel_while_assembling(r: Run) -> None:
    await r.pay_and_wait_assembly()
    status = await r.handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="передумала"))
    assert status == OrderStatus.cancelled


async def _edited_unpaid(r: Run) -> None:
    await placed(r)
    await edit(r, LineEdit(sku="SKU-1", qty=1), LineEdit(sku="SKU-5", qty=1, name="Шарф", unit_price=30_000))
    await r.handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-e1", operation="approved",
                                                                    success=True))
    await r.until(lambda: r.world.pos_tasks, "the POS assembly task")
    assert await r.deliver() == OrderStatus.completed


async def _edited_dearer(r: Run) -> None:
    await r.pay_and_wait_assembly()
    await edit(r, LineEdit(sku="SKU-5", qty=1, name="Шарф", unit_price=30_000))
    await r.handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-2", operation="approved",
                                                                    success=True))
    await r.until(lambda: len(r.world.pos_tasks) == 2, "the new POS task")
    assert await r.deliver() == OrderStatus.completed


async def _edited_paid(r: Run) -> None:
    await r.pay_and_wait_assembly()
    await edit(r, LineEdit(sku="SKU-3", qty=0))
    await r.until(lambda: len(r.world.pos_tasks) == 2, "the new POS task")
    assert await r.deliver() == OrderStatus.completed


async def _removal_drops_a_shipment(r: Run) -> None:
    await r.pay_and_wait_assembly()
    await r.until(lambda: len(r.world.pos_tasks) == 2, "both shipments' POS tasks")
    by_loc = {t.location_id: t for t in r.world.pos_tasks}
    wh, msk = by_loc["WH-ONLINE"], by_loc["MSK-001"]
    client = r.env.client
    await client.get_workflow_handle(wh.task_id.split(":")[0]).signal(
        FulfillmentWorkflow.pos_event, StoreEvent(event="shortage", task_id=wh.task_id, sku="SKU-3", missing_qty=1))
    await r.until(lambda: r.world.task_of("substitution"), "the substitution task")
    await r.complete(r.handle, TaskDecision(task_id=r.world.task_of("substitution").spec.task_id,
                                            action=TaskAction.remove, by="op-anna"))
    msk_child = client.get_workflow_handle(msk.task_id.split(":")[0])
    await msk_child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="assembled", task_id=msk.task_id))
    await r.until(lambda: r.world.bookings, "the courier booking")
    for status in ("handed_over", "delivered"):
        await msk_child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status=status))


async def _cancel_while_booking(r: Run) -> None:
    await r.pay_and_wait_assembly()
    await r.store("assembled")
    await r.until(lambda: r.world.bookings, "the booking under way")
    cancel = asyncio.create_task(r.handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="передумала")))
    await asyncio.sleep(0.5)
    r.world.gate.set()
    assert await cancel == OrderStatus.cancelled


scenario_people_escalated_to_resourcing = _people_scenario(
    "GOLD-ESCALATED", {("SKU-1", "MSK-001"): 1, ("SKU-1", "WH-ONLINE"): 2}, [("SKU-1", 1, 150_000)],
    _escalated_to_resourcing, OrderStatus.completed)
scenario_people_substitution_accepted = _people_scenario(
    "GOLD-SUBST", {("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1, ("SKU-2", "MSK-001"): 3},
    [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], _substitution_accepted, OrderStatus.completed)
scenario_people_substitution_timed_out = _people_scenario(
    "GOLD-SUBSTTIMEOUT", {("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1},
    [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], _substitution_timed_out, OrderStatus.completed)
scenario_people_edit_unpaid = _people_scenario(
    "GOLD-EDITUNPAID", {("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1, ("SKU-5", "MSK-001"): 1},
    [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], _edited_unpaid, OrderStatus.completed)
scenario_people_edit_paid = _people_scenario(
    "GOLD-EDITPAID", {("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1},
    [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], _edited_paid, OrderStatus.completed)
scenario_people_edit_dearer = _people_scenario(
    "GOLD-EDITDEARER", {("SKU-1", "MSK-001"): 1, ("SKU-3", "MSK-001"): 1, ("SKU-5", "MSK-001"): 1},
    [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)], _edited_dearer, OrderStatus.completed)
scenario_people_cancel_while_booking = _people_scenario(
    "GOLD-CANCELBOOKING", {("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1},
    [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], _cancel_while_booking, OrderStatus.cancelled,
    world_type=SlowCourierWorld)
scenario_people_removal_drops_shipment = _people_scenario(
    "GOLD-DROPSHIP", {("SKU-1", "MSK-001"): 1, ("SKU-3", "WH-ONLINE"): 1},
    [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)], _removal_drops_a_shipment, OrderStatus.completed, shipments=2)
scenario_people_cancel_while_assembling = _people_scenario(
    "GOLD-CANCEL", {("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1},
    [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], _cancel_while_assembling, OrderStatus.cancelled, bonus=5_000)


# --------------------------------------------------------------------------------------------- pickup
# click & collect (the order's at-store stage is a ReservationWorkflow child) and click & reserve

async def scenario_pickup_click_and_collect(env: Any, queue: str) -> Any:
    from pickup_fakes import PickupWorld
    from workflows.reservation import ReservationWorkflow

    world = PickupWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-2", "WH-ONLINE"): 1})
    inp = dataclasses.replace(order_input("GOLD-PICKUP", [("SKU-1", 2, 150_000), ("SKU-2", 1, 50_000)]),
                              delivery=Delivery(method=DeliveryMethod.pickup, store_id="MSK-001"))

    async def drive() -> list[str]:
        handle = await _start_order(env, world, inp, queue)
        await handle.execute_update(OrderWorkflow.placement)
        await handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved", success=True))
        await _deliver(env, world, inp.order_id, shipment=2)  # the transfer WH-ONLINE -> MSK-001
        stage = await started(env, f"reservation-{inp.order_id}")
        task = await until(lambda: next((t for t in world.pos_tasks if t.kind == "set_aside"), None), "set aside")
        await stage.signal(ReservationWorkflow.pos_event, StoreEvent(event="ready", task_id=task.task_id, event_id="r"))
        await until(lambda: world.notice("ready"), "the ready message")
        await stage.signal(ReservationWorkflow.pos_event, StoreEvent(
            event="issued", task_id=task.task_id, event_id="i", lines=[LineRequest("SKU-1", 1), LineRequest("SKU-2", 1)]))
        assert await handle.result() == OrderStatus.completed
        return [f"order-{inp.order_id}", f"fulfillment-{inp.order_id}-2", f"reservation-{inp.order_id}"]

    return world, world.activities(), drive


def _reservation_scenario(rid: str, ending: str) -> Callable[[Any, str], Awaitable[Any]]:
    async def scenario(env: Any, queue: str) -> Any:
        from contracts.order import OrderLine
        from contracts.reservation import ReservationInput
        from pickup_fakes import PickupWorld
        from fakes import MSK
        from workflows.reservation import ReservationWorkflow

        world = PickupWorld(stock={("SKU-1", "MSK-001"): 2})
        inp = ReservationInput(reservation_id=rid, store=MSK, customer=Customer(phone="+79161234567", name="Анна"),
                               number=rid, lines=[OrderLine(pos_id=1, sku="SKU-1", name="Товар", qty=2, unit_price=100_000)],
                               created_at=datetime(2026, 11, 23, 9, tzinfo=timezone.utc))

        async def drive() -> list[str]:
            handle = await env.client.start_workflow(ReservationWorkflow.run, inp, id=f"reservation-{rid}", task_queue=queue)
            await handle.execute_update(ReservationWorkflow.placement)
            task = await until(lambda: world.pos_tasks and world.pos_tasks[0], "the set-aside task")
            await skip_time(env, timedelta(minutes=31))  # the store is late: a reminder
            await handle.signal(ReservationWorkflow.pos_event, StoreEvent(event="ready", task_id=task.task_id, event_id="r"))
            await until(lambda: world.notice("ready"), "the ready message")
            if ending == "partial":
                await handle.signal(ReservationWorkflow.pos_event, StoreEvent(
                    event="issued", task_id=task.task_id, event_id="i", lines=[LineRequest("SKU-1", 1)],
                    paid_amount=100_000))
            elif ending == "cancelled":
                await handle.execute_update(ReservationWorkflow.cancel, CancelRequest(reason="передумала"))
            await handle.result()  # expired: three days pass in test time
            return [f"reservation-{rid}"]

        return world, world.activities(), drive

    return scenario


scenario_reservation_expired = _reservation_scenario("GOLD-RES-EXPIRED", "expired")
scenario_reservation_partial = _reservation_scenario("GOLD-RES-PARTIAL", "partial")
scenario_reservation_cancelled = _reservation_scenario("GOLD-RES-CANCELLED", "cancelled")


SCENARIOS = {
    "order_happy": scenario_order_happy,
    "order_payment_expired": scenario_order_payment_expired,
    "order_declined": scenario_order_declined,
    "order_out_of_stock": scenario_order_out_of_stock,
    "order_erp_refused_then_retried": scenario_order_erp_refused_then_retried,
    "fulfillment_courier_refused_then_retried": scenario_fulfillment_courier_refused_then_retried,
    "erp_sync": scenario_erp_sync,
    "erp_sync_delta_loop": scenario_erp_sync_delta_loop,
    "return_in_store_accepted": scenario_return_in_store_accepted,
    "return_courier_partly_rejected": scenario_return_courier_partly_rejected,
    "return_post": scenario_return_post,
    "return_abandoned": scenario_return_abandoned,
    "return_exchange_same_price": scenario_return_exchange_same_price,
    "people_escalated_to_resourcing": scenario_people_escalated_to_resourcing,
    "people_substitution_accepted": scenario_people_substitution_accepted,
    "people_substitution_timed_out": scenario_people_substitution_timed_out,
    "people_cancel_while_assembling": scenario_people_cancel_while_assembling,
    "people_edit_unpaid": scenario_people_edit_unpaid,
    "people_edit_paid": scenario_people_edit_paid,
    "people_edit_dearer": scenario_people_edit_dearer,
    "people_removal_drops_shipment": scenario_people_removal_drops_shipment,
    "people_cancel_while_booking": scenario_people_cancel_while_booking,
    "pickup_click_and_collect": scenario_pickup_click_and_collect,
    "reservation_expired": scenario_reservation_expired,
    "reservation_partial": scenario_reservation_partial,
    "reservation_cancelled": scenario_reservation_cancelled,
}


@pytest.fixture(scope="module")
async def golden_env() -> Any:
    """A time-skipping server of the generator's own (only under `make histories`): nothing other test
    modules left waiting can stall the clock the return and operator scenarios skip (days, hours)."""
    from conftest import time_skipping_server

    async with time_skipping_server() as env:
        yield env


@pytest.mark.skipif(not REFRESH, reason="set ORKESTR_REFRESH_HISTORIES=1 (make histories) to regenerate")
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
async def test_generate_history(golden_env: Any, scenario: str) -> None:
    from adapters.history import ensure_search_attributes

    ts_env = golden_env
    await ensure_search_attributes(ts_env.client)
    queue = f"golden-{uuid.uuid4()}"
    world, activities, drive = await SCENARIOS[scenario](ts_env, queue)
    async with Worker(ts_env.client, task_queue=queue, workflows=WORKFLOWS, activities=activities):
        ids = await drive()
        for wf_id in ids:  # every recorded workflow has finished: its history is the whole path
            desc = await ts_env.client.get_workflow_handle(wf_id).describe()
            assert desc.status is not None and desc.status.name != "RUNNING", f"{wf_id} is still running"
    HISTORIES.mkdir(parents=True, exist_ok=True)
    for old in HISTORIES.glob(f"{scenario}__*.json"):
        old.unlink()
    for wf_id in ids:
        runs = await runs_of(ts_env.client, wf_id)
        for n, history in enumerate(runs, start=1):
            name = f"{scenario}__{wf_id}.json" if n == len(runs) else f"{scenario}__run{n}__{wf_id}.json"
            data = json.loads(history.to_json())
            (HISTORIES / name).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n")


async def runs_of(client: Any, wf_id: str) -> list[WorkflowHistory]:
    """Every run of a workflow id, the first first: a shipment moved to another location (escalation,
    substitution) continues as new, and the path worth keeping is in the earlier runs. The last run is
    saved as ``<scenario>__<id>.json``, the earlier ones as ``<scenario>__run<n>__<id>.json``."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = None
    for _ in range(20):
        history = await client.get_workflow_handle(wf_id, run_id=run_id).fetch_history()
        runs.insert(0, history)
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return runs
    raise AssertionError(f"{wf_id}: more than 20 runs")


def why(failure: BaseException) -> str:
    """The SDK's own sentence (e.g. "Nondeterminism error: Activity type of scheduled event 'return_bonus' does
    not match activity type of activity command 'post_return'") out of the core's debug dump."""
    text = str(failure)
    found = re.search(r'message: "((?:[^"\\]|\\.)*)"', text)
    return found.group(1) if found else text


def golden_files() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def workflow_id_of(path: Path) -> str:
    return path.stem.split("__")[-1]  # <scenario>__<id> or <scenario>__run<n>__<id> (as `orkestr replay --file`)


def workflow_type_of(path: Path) -> str:
    first = json.loads(path.read_text())["events"][0]
    return first.get("workflowExecutionStartedEventAttributes", {}).get("workflowType", {}).get("name", "?")


def registered_types() -> set[str]:
    return {getattr(w, "__temporal_workflow_definition").name for w in WORKFLOWS}


def test_every_workflow_type_has_golden_histories() -> None:
    types = {workflow_type_of(p) for p in golden_files()}
    missing = registered_types() - types
    assert not missing, (f"tests/histories/ has no history of {sorted(missing)} (the worker runs it): add its paths "
                         f"to SCENARIOS in {Path(__file__).name} and run `make histories`")
    assert {"OrderWorkflow", "FulfillmentWorkflow", "ErpStockSyncWorkflow", "ReturnWorkflow"} <= types


def test_every_scenario_has_its_histories() -> None:
    recorded = {p.stem.split("__", 1)[0] for p in golden_files()}
    missing = sorted(set(SCENARIOS) - recorded)
    assert not missing, f"no golden history for scenario(s) {missing}: run `make histories` and commit tests/histories/"


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: p.name)
async def test_golden_history_replays(path: Path) -> None:
    wf_type = workflow_type_of(path)
    if wf_type not in registered_types():
        pytest.fail(f"{path.relative_to(ROOT)}: workflow type {wf_type} is not registered with the worker "
                    f"(workflows.registry.WORKFLOWS): a history of it cannot be replayed, and running ones would be stuck",
                    pytrace=False)
    history = WorkflowHistory.from_json(workflow_id_of(path), path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is not None:
        pytest.fail(f"{path.relative_to(ROOT)}: {wf_type} ({workflow_id_of(path)}) no longer replays against the "
                    f"current code: {why(result.replay_failure)}\n{HOW_TO_REFRESH}", pytrace=False)


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
