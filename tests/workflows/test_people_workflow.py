"""People in the loop on the time-skipping server: the assembly escalation ladder, shortages
(re-sourced, substituted, removed, refused, timed out), the ``complete_task`` validator, and
cancellation at each stage with its compensations (stand-in activities: people_fakes.py)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from conftest import skip_time
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from people_fakes import PeopleWorld
from contracts.order import CancelRequest, CourierEvent, OrderStatus, PaymentEvent, StoreEvent
from contracts.steps import BookedShipment, ShipmentBookingRequest
from contracts.tasks import SubstituteOffer, TaskAction, TaskDecision, TaskOutcome
from test_order_workflow import order_input
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow


class Run:
    """One order on a fresh task queue, driven like the outside world would."""

    def __init__(self, env: Any, world: PeopleWorld, handle: WorkflowHandle[Any, Any], order_id: str) -> None:
        self.env, self.world, self.handle, self.order_id = env, world, handle, order_id
        self.total = 0

    @property
    def child(self) -> WorkflowHandle[Any, Any]:
        return self.env.client.get_workflow_handle(f"fulfillment-{self.order_id}-1")

    async def until(self, check: Any, what: str) -> None:
        for _ in range(300):
            if check():
                return
            await asyncio.sleep(0.03)
        raise AssertionError(f"timed out waiting for {what}")

    async def pay_and_wait_assembly(self) -> None:
        placement = await self.handle.execute_update(OrderWorkflow.placement)
        assert placement.status == OrderStatus.awaiting_payment
        self.total = placement.totals.total
        await self.handle.signal(OrderWorkflow.payment_event,
                                 PaymentEvent(md_order="md-1", operation="approved", success=True))
        await self.until(lambda: self.world.pos_tasks, "the POS assembly task")

    async def store(self, event: str, **kw: Any) -> None:
        await self.child.signal(FulfillmentWorkflow.pos_event,
                                StoreEvent(event=event, task_id=self.world.pos_tasks[-1].task_id, **kw))

    async def deliver(self) -> OrderStatus:
        n = len(self.world.bookings)
        await self.store("assembled")
        await self.until(lambda: len(self.world.bookings) > n, "the courier booking")
        for status in ("handed_over", "delivered"):
            await self.child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status=status))
        await self.until(lambda: self.world.loyalty == "committed", "the loyalty commit")
        for _ in range(100):
            status = await self.handle.query(OrderWorkflow.status)
            if status == OrderStatus.completed:
                break
            await asyncio.sleep(0.03)
        return status

    async def timeline(self) -> list[str]:
        snap = await self.handle.query(OrderWorkflow.snapshot)
        return [e.message for e in snap.timeline]

    async def complete(self, handle: WorkflowHandle[Any, Any], decision: TaskDecision) -> TaskOutcome:
        return await handle.execute_update("complete_task", decision, result_type=TaskOutcome)


@pytest.fixture(scope="module")
async def people_env() -> Any:
    """A time-skipping server of this module's own: skipping hours here must not depend on
    workflows other test modules left waiting on task queues nobody polls any more."""
    from conftest import time_skipping_server

    async with time_skipping_server() as env:
        yield env


async def run_order(env: Any, world: PeopleWorld, lines: list[tuple[str, int, int]], test: Any,
                    bonus: int = 0) -> None:
    order_id = f"P{uuid.uuid4().hex[:8].upper()}"
    queue = f"q-{uuid.uuid4()}"
    handle = await env.client.start_workflow(OrderWorkflow.run, order_input(order_id, lines, bonus=bonus),
                                             id=f"order-{order_id}", task_queue=queue)
    async with Worker(env.client, task_queue=queue, workflows=[OrderWorkflow, FulfillmentWorkflow],
                      activities=world.activities()):
        try:
            await test(Run(env, world, handle, order_id))
        finally:  # leave nothing running (the order and its shipments) for the next test's clock
            if (await handle.describe()).status.name == "RUNNING":
                try:
                    await handle.terminate("test over")
                except RPCError as err:  # it ended on its own in between (e.g. just cancelled)
                    if err.status != RPCStatusCode.NOT_FOUND:
                        raise


# ---------------------------------------------------------------------------------------------- escalation
async def test_late_store_reminded_then_supervisor_then_shipment_moves_elsewhere(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 1, ("SKU-1", "WH-ONLINE"): 2})

    async def test(r: Run) -> None:
        await r.pay_and_wait_assembly()
        first = r.world.pos_tasks[0]
        assert first.location_id == "MSK-001"
        await skip_time(r.env, timedelta(minutes=121))  # SLA 2 h passed
        await r.until(lambda: r.world.store_messages, "a POS reminder")
        assert r.world.store_messages[0].location_id == "MSK-001" and r.world.tasks == {}
        await skip_time(r.env, timedelta(minutes=60))  # a further interval: the supervisor is asked
        await r.until(lambda: r.world.task_of("assembly_late"), "the supervisor task")
        sup = r.world.task_of("assembly_late")
        assert sup.group == "supervisors" and sup.assignee and "MSK-001" in sup.spec.title
        assert sup.spec.order_id == r.order_id and sup.spec.workflow_id == f"fulfillment-{r.order_id}-1"
        await skip_time(r.env, timedelta(minutes=60))  # still nothing: the shipment moves to the warehouse
        await r.until(lambda: len(r.world.pos_tasks) == 2, "a POS task at the other location")
        moved = r.world.pos_tasks[1]
        assert moved.location_id == "WH-ONLINE" and moved.task_id.endswith(":assemble:2")
        assert {loc for _, loc, _ in r.world.held.values()} == {"WH-ONLINE"}  # MSK released, WH held
        assert r.world.stock[("SKU-1", "MSK-001")] == 1 and r.world.calls["cancel_pos_task"] == 1
        assert r.world.tasks[sup.spec.task_id].status == "expired"
        assert await r.deliver() == OrderStatus.completed
        assert r.world.captured == [r.total]
        timeline = await r.timeline()
        for words in ("напоминание №1", "задача супервизору", "перенесена с MSK-001 на WH-ONLINE"):
            assert any(words in m for m in timeline), (words, timeline)
        snap = await r.handle.query(OrderWorkflow.snapshot)
        assert snap.shipments[0].location_id == "WH-ONLINE"

    await run_order(people_env, world, [("SKU-1", 1, 150_000)], test)


async def test_nowhere_to_move_asks_operator_default_wait_then_cancel_compensates(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 1})

    async def test(r: Run) -> None:
        await r.pay_and_wait_assembly()
        await skip_time(r.env, timedelta(minutes=241))  # reminder, supervisor, then nowhere to move
        await r.until(lambda: r.world.task_of("resource_failed"), "the cancel-or-wait task")
        op = r.world.task_of("resource_failed")
        assert "отменить" in op.spec.title and op.spec.location_id == "MSK-001"
        await skip_time(r.env, timedelta(minutes=61))  # nobody answers: the default is to wait
        await r.until(lambda: r.world.tasks[op.spec.task_id].status == "expired", "the default decision")
        assert r.world.tasks[op.spec.task_id].result["action"] == "wait"
        await skip_time(r.env, timedelta(minutes=241))  # the ladder starts again
        await r.until(lambda: len([t for t in r.world.tasks.values() if t.spec.kind.value == "resource_failed"]) == 2,
                      "a second cancel-or-wait task")
        op2 = r.world.task_of("resource_failed")
        assert len(r.world.store_messages) == 2
        out = await r.complete(r.child, TaskDecision(task_id=op2.spec.task_id, action=TaskAction.cancel, by="sup-petrov"))
        assert out.action == TaskAction.cancel
        assert await r.handle.result() == OrderStatus.cancelled
        # compensated in reverse: the POS told to stop, the hold reversed, loyalty rolled back, stock released
        assert r.world.calls["cancel_pos_task"] == 1 and r.world.reversed == 1
        assert r.world.loyalty == "rolled_back" and r.world.units_held() == 0
        assert r.world.notices[-1] == "cancelled" and r.world.captured == []

    await run_order(people_env, world, [("SKU-1", 1, 150_000)], test)


async def test_supervisor_answers_resource_now(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 1, ("SKU-1", "WH-ONLINE"): 1})

    async def test(r: Run) -> None:
        await r.pay_and_wait_assembly()
        await skip_time(r.env, timedelta(minutes=181))
        await r.until(lambda: r.world.task_of("assembly_late"), "the supervisor task")
        sup = r.world.task_of("assembly_late")
        out = await r.complete(r.child, TaskDecision(task_id=sup.spec.task_id, action=TaskAction.resource,
                                                     by="sup-ivanova"))
        assert out.action == TaskAction.resource
        await r.until(lambda: len(r.world.pos_tasks) == 2, "the task at the warehouse")
        assert r.world.pos_tasks[1].location_id == "WH-ONLINE"
        assert r.world.tasks[sup.spec.task_id].status == "done"
        # a second answer to a closed task is refused by the validator
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await r.complete(r.child, TaskDecision(task_id=sup.spec.task_id, action=TaskAction.wait))
        assert "not open" in str(err.value.cause)

    await run_order(people_env, world, [("SKU-1", 1, 150_000)], test)


# ---------------------------------------------------------------------------------------------- shortages
async def test_shortage_resourced_automatically_when_another_location_has_everything(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-1", "WH-ONLINE"): 2})

    async def test(r: Run) -> None:
        await r.pay_and_wait_assembly()
        await r.store("shortage", sku="SKU-1", missing_qty=1)
        await r.until(lambda: len(r.world.pos_tasks) == 2, "the POS task at the warehouse")
        assert r.world.pos_tasks[1].location_id == "WH-ONLINE" and r.world.tasks == {}
        assert await r.deliver() == OrderStatus.completed
        assert r.world.captured == [r.total]

    await run_order(people_env, world, [("SKU-1", 2, 150_000)], test)


async def _shortage_task(r: Run) -> Any:
    await r.pay_and_wait_assembly()
    await r.store("shortage", sku="SKU-1", missing_qty=1)
    await r.until(lambda: r.world.task_of("substitution"), "the substitution task")
    return r.world.task_of("substitution")


async def test_substitution_accepted_cheaper_captures_the_shipped_total(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1, ("SKU-2", "MSK-001"): 3})

    async def test(r: Run) -> None:
        task = await _shortage_task(r)
        assert task.spec.payload["missing_qty"] == 1 and task.group == "moscow"
        tid = task.spec.task_id
        # the validator refuses bad decisions synchronously and changes nothing
        bad = [
            (TaskDecision(task_id=tid, action=TaskAction.substitute, sku="NOPE"), "sku: unknown SKU"),
            (TaskDecision(task_id=tid, action=TaskAction.substitute, sku="SKU-2",
                          offer=SubstituteOffer("SKU-2", "Ремень", 99_000, available=0)), "out of stock"),
            (TaskDecision(task_id=tid, action=TaskAction.wait), "action:"),
            (TaskDecision(task_id="nope", action=TaskAction.remove), "not open"),
        ]
        for decision, words in bad:
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await r.complete(r.handle, decision)
            assert words in str(err.value.cause), (words, err.value.cause)
        assert r.world.tasks[tid].status == "open" and r.world.calls["begin_loyalty"] == 1
        assert [t["task_id"] for t in await r.handle.query("open_tasks", result_type=list)] == [tid]
        out = await r.complete(r.handle, TaskDecision(
            task_id=tid, action=TaskAction.substitute, sku="SKU-2", by="op-msk-volkova",
            offer=SubstituteOffer("SKU-2", "Ремень", 99_000, available=3)))
        expected = 150_000 + 99_000 + 50_000 + 39_900
        assert out.total == expected and out.extra_payment_url is None
        assert r.world.tasks[tid].status == "done" and r.world.tasks[tid].result["action"] == "substitute"
        assert r.world.calls["begin_loyalty"] == 2 and r.world.calls["rollback_loyalty"] == 1
        assert sorted((s, q) for s, _, q in r.world.held.values()) == [("SKU-1", 1), ("SKU-2", 1), ("SKU-3", 1)]
        await r.until(lambda: any("положите SKU-2" in m.text for m in r.world.store_messages), "the store told")
        assert await r.deliver() == OrderStatus.completed
        assert r.world.captured == [expected] and expected < r.total  # capture only what is shipped
        assert r.world.erp_orders[-1].amount == expected  # the ERP's customer order followed the change
        assert "substitution" in r.world.notices
        booked = {l.sku: l.qty for l in r.world.bookings[-1].lines}
        assert booked == {"SKU-1": 1, "SKU-2": 1, "SKU-3": 1}

    await run_order(people_env, world, [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], test)


async def test_dearer_substitute_needs_a_payment_for_the_difference(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 1, ("SKU-3", "MSK-001"): 1, ("SKU-9", "MSK-001"): 1})

    async def test(r: Run) -> None:
        task = await _shortage_task(r)
        out = await r.complete(r.handle, TaskDecision(
            task_id=task.spec.task_id, action=TaskAction.substitute, sku="SKU-9",
            offer=SubstituteOffer("SKU-9", "Пальто", 250_000, available=1)))
        assert out.extra_payment_url and out.total == r.total + 100_000
        assert r.world.registered[f"order-{r.order_id}~2"] == 100_000
        assert "extra_payment" in r.world.notices
        await r.handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-2", operation="approved",
                                                                        success=True))
        await r.until(lambda: any("SKU-9" in m.text for m in r.world.store_messages), "the store told")
        assert await r.deliver() == OrderStatus.completed
        assert r.world.captured == [r.total, 100_000]

    await run_order(people_env, world, [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)], test)


async def test_substitution_refused_by_the_customer_cancels_and_compensates(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 1, ("SKU-3", "MSK-001"): 1})

    async def test(r: Run) -> None:
        task = await _shortage_task(r)
        out = await r.complete(r.handle, TaskDecision(task_id=task.spec.task_id, action=TaskAction.cancel))
        assert out.action == TaskAction.cancel
        assert await r.handle.result() == OrderStatus.cancelled
        assert r.world.reversed == 1 and r.world.loyalty == "rolled_back" and r.world.units_held() == 0
        assert r.world.calls["cancel_pos_task"] == 1 and r.world.notices[-1] == "cancelled"

    await run_order(people_env, world, [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)], test, bonus=10_000)


async def test_nobody_answers_the_missing_line_is_removed_by_default(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1})

    async def test(r: Run) -> None:
        task = await _shortage_task(r)
        await skip_time(r.env, timedelta(minutes=31))  # half the deadline: given to the next operator
        await r.until(lambda: r.world.tasks[task.spec.task_id].reassigned == 1, "the reassignment")
        await skip_time(r.env, timedelta(minutes=30))  # the deadline: remove the missing unit
        await r.until(lambda: r.world.tasks[task.spec.task_id].status == "expired", "the default")
        assert r.world.tasks[task.spec.task_id].result["action"] == "remove"
        await r.until(lambda: any("уберите SKU-1" in m.text for m in r.world.store_messages), "the store told")
        assert await r.deliver() == OrderStatus.completed
        assert r.world.captured == [150_000 + 50_000 + 39_900]
        assert sum(q for _, _, q in r.world.consumed.values()) == 2

    await run_order(people_env, world, [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], test)


# ---------------------------------------------------------------------------------------------- cancellation
@pytest.mark.parametrize("stage", ["awaiting_payment", "assembling", "booked", "substitution"])
async def test_cancel_at_each_stage_compensates_what_was_done(people_env: Any, stage: str) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1})

    async def test(r: Run) -> None:
        if stage == "awaiting_payment":
            await r.handle.execute_update(OrderWorkflow.placement)
        elif stage == "substitution":
            await _shortage_task(r)
        else:
            await r.pay_and_wait_assembly()
            if stage == "booked":
                await r.store("assembled")
                await r.until(lambda: r.world.bookings, "the courier booking")
        status = await r.handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="передумала"))
        assert status == OrderStatus.cancelled
        assert r.world.units_held() == 0 and r.world.loyalty == "rolled_back" and r.world.captured == []
        assert r.world.reversed == (0 if stage == "awaiting_payment" else 1)
        assert r.world.calls["cancel_pos_task"] == (0 if stage == "awaiting_payment" else 1)
        assert r.world.cancelled_bookings == (1 if stage == "booked" else 0)
        assert await r.handle.result() == OrderStatus.cancelled
        assert r.world.notices[-1] == "cancelled"  # the customer is told once everything is undone
        if stage == "substitution":
            assert all(t.status == "expired" for t in r.world.tasks.values())

    await run_order(people_env, world, [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], test, bonus=5_000)


async def test_removal_that_empties_one_shipment_cancels_only_that_shipment(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 1, ("SKU-3", "WH-ONLINE"): 1})

    async def test(r: Run) -> None:
        await r.pay_and_wait_assembly()
        await r.until(lambda: len(r.world.pos_tasks) == 2, "both shipments' POS tasks")
        by_loc = {t.location_id: t for t in r.world.pos_tasks}
        wh, msk = by_loc["WH-ONLINE"], by_loc["MSK-001"]
        wh_child = r.env.client.get_workflow_handle(wh.task_id.split(":")[0])
        await wh_child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="shortage", task_id=wh.task_id,
                                                                        sku="SKU-3", missing_qty=1))
        await r.until(lambda: r.world.task_of("substitution"), "the substitution task")
        task = r.world.task_of("substitution")
        out = await r.complete(r.handle, TaskDecision(task_id=task.spec.task_id, action=TaskAction.remove,
                                                      by="op-anna"))
        assert "отменена" in out.message and out.total == 150_000 + 39_900
        assert (await wh_child.result())["cancelled"]  # that shipment ends, its store told to stop
        assert r.world.calls["cancel_pos_task"] == 1
        assert sorted(r.world.held.values()) == [("SKU-1", "MSK-001", 1)] and r.world.stock[("SKU-3", "WH-ONLINE")] == 1
        assert await r.handle.query(OrderWorkflow.status) == OrderStatus.assembling  # the order goes on
        msk_child = r.env.client.get_workflow_handle(msk.task_id.split(":")[0])
        await msk_child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="assembled", task_id=msk.task_id))
        await r.until(lambda: r.world.bookings, "the courier booking")
        for status in ("handed_over", "delivered"):
            await msk_child.signal(FulfillmentWorkflow.courier_event, CourierEvent(status=status))
        for _ in range(100):
            if await r.handle.query(OrderWorkflow.status) == OrderStatus.completed:
                break
            await asyncio.sleep(0.05)
        assert r.world.captured == [out.total] and out.total < r.total
        assert r.world.erp_orders[-1].amount == out.total and [l.sku for l in r.world.erp_orders[-1].lines] == ["SKU-1"]
        snap = await r.handle.query(OrderWorkflow.snapshot)
        assert snap.status == OrderStatus.completed and [l.sku for l in snap.lines] == ["SKU-1"]
        assert sorted(s.status.value for s in snap.shipments) == ["cancelled", "delivered"]

    await run_order(people_env, world, [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)], test)


@dataclass
class SlowCourierWorld(PeopleWorld):
    """The courier's booking answers only when the test opens the gate."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def activities(self) -> list[Any]:
        w = self
        base = [a for a in PeopleWorld.activities(self)
                if getattr(a, "__temporal_activity_definition").name != "book_shipment"]

        @activity.defn(name="book_shipment")
        async def book_shipment(req: ShipmentBookingRequest) -> BookedShipment:
            w.bookings.append(req)
            await w.gate.wait()
            return BookedShipment(carrier=req.carrier, external_id=f"uuid-{req.shipment_id}", tracking_number="1000")

        return [*base, book_shipment]


async def test_cancel_while_the_courier_is_booking_cancels_the_booking_too(people_env: Any) -> None:
    world = SlowCourierWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1})

    async def test(r: Run) -> None:
        await r.pay_and_wait_assembly()
        await r.store("assembled")
        await r.until(lambda: world.bookings, "the booking under way")
        cancel = asyncio.create_task(r.handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="передумала")))
        await asyncio.sleep(0.5)  # the cancel reaches the shipment while its booking is in flight
        world.gate.set()  # the courier confirms the booking after the customer cancelled
        assert await cancel == OrderStatus.cancelled
        assert world.cancelled_bookings == 1 and world.calls["cancel_pos_task"] == 1
        assert world.units_held() == 0 and world.reversed == 1 and world.captured == []

    await run_order(people_env, world, [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], test)
