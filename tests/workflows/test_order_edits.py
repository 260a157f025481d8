"""An operator edits an order's lines before assembly (``OrderWorkflow.edit_lines``) on the
time-skipping server with stand-in activities: unpaid orders get a new payment link for the
new total, paid orders restart their store's task and capture less, and every refusal changes
nothing (stock, loyalty, payment, store)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from contracts.edits import EditOutcome, LineEdit, OrderEdit
from contracts.order import CancelRequest, OrderStatus, PaymentEvent, PaymentState, StoreEvent
from conftest import skip_time
from people_fakes import PeopleWorld
from test_people_workflow import Run, people_env, run_order  # noqa: F401  (the fixture is shared)
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow

SCARF = LineEdit(sku="SKU-5", qty=1, name="Шарф", unit_price=30_000)
DELIVERY = 39_900


async def edit(r: Run, *lines: LineEdit, by: str = "op-ivanova") -> EditOutcome:
    return await r.handle.execute_update(OrderWorkflow.edit_lines, OrderEdit(lines=list(lines), by=by,
                                                                            reason="клиент позвонил"))


async def refused(r: Run, *lines: LineEdit, by: str = "op-ivanova") -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await edit(r, *lines, by=by)
    return str(err.value.cause)


async def placed(r: Run) -> None:
    placement = await r.handle.execute_update(OrderWorkflow.placement)
    assert placement.status == OrderStatus.awaiting_payment
    r.total = placement.totals.total


def held(world: PeopleWorld) -> list[tuple[str, str, int]]:
    return sorted(world.held.values())


async def test_unpaid_order_edited_is_repriced_reheld_and_gets_a_new_payment_link(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 3, ("SKU-3", "MSK-001"): 1, ("SKU-5", "MSK-001"): 2})

    async def test(r: Run) -> None:
        await placed(r)
        assert r.total == 150_000 + 50_000 + DELIVERY
        out = await edit(r, LineEdit(sku="SKU-1", qty=2), LineEdit(sku="SKU-3", qty=0), SCARF)
        expected = 2 * 150_000 + 30_000 + DELIVERY
        assert out.totals.total == expected and out.payment_url and "md-e1" in out.payment_url
        assert world.erp_orders == []  # not exported yet: the ERP gets the edited order after payment
        assert {(l.sku, l.qty) for l in out.lines} == {("SKU-1", 2), ("SKU-5", 1)}
        # the old link is closed at the bank, the new one asks for the new total
        assert world.declined == ["md-1"] and world.registered[f"order-{r.order_id}~e1"] == expected
        # stock: SKU-3 released, SKU-1 grown by one, the scarf held — nothing else
        assert held(world) == [("SKU-1", "MSK-001", 2), ("SKU-5", "MSK-001", 1)]
        assert world.stock[("SKU-3", "MSK-001")] == 1 and world.stock[("SKU-1", "MSK-001")] == 1
        assert world.calls["rollback_loyalty"] == 1 and world.calls["begin_loyalty"] == 2
        assert "order_changed_pay" in world.notices
        # a late callback for the closed link changes nothing
        await r.handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved",
                                                                        success=True))
        await asyncio.sleep(0.3)
        assert await r.handle.query(OrderWorkflow.status) == OrderStatus.awaiting_payment
        snap = await r.handle.query(OrderWorkflow.snapshot)
        assert snap.payment.md_order == "md-e1" and snap.payment_url == out.payment_url
        assert any("op-ivanova" in e.message and "Шарф" in e.message for e in snap.timeline)
        # the new link paid: the store assembles the new lines, the bank captures the new total
        await r.handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-e1", operation="approved",
                                                                        success=True))
        await r.until(lambda: world.pos_tasks, "the POS assembly task")
        assert {(l.sku, l.qty) for l in world.pos_tasks[0].lines} == {("SKU-1", 2), ("SKU-5", 1)}
        r.total = expected
        assert await r.deliver() == OrderStatus.completed
        assert world.captured == [expected]
        assert {(l.sku, l.qty) for l in world.bookings[0].lines} == {("SKU-1", 2), ("SKU-5", 1)}

    await run_order(people_env, world, [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)], test)


async def test_paid_order_edited_before_assembly_gets_a_new_store_task_and_captures_less(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1})

    async def test(r: Run) -> None:
        await r.pay_and_wait_assembly()
        first = world.pos_tasks[0]
        out = await edit(r, LineEdit(sku="SKU-1", qty=1))
        expected = 150_000 + 50_000 + DELIVERY
        assert out.totals.total == expected < r.total and out.payment_url is None
        await r.until(lambda: len(world.pos_tasks) == 2, "the new POS task")
        again = world.pos_tasks[1]
        assert again.task_id == first.task_id + ":2" and world.calls["cancel_pos_task"] == 1
        assert {(l.sku, l.qty) for l in again.lines} == {("SKU-1", 1), ("SKU-3", 1)}
        assert held(world) == [("SKU-1", "MSK-001", 1), ("SKU-3", "MSK-001", 1)]
        assert world.stock[("SKU-1", "MSK-001")] == 1 and world.declined == []
        await r.until(lambda: world.erp_orders, "the ERP's customer order updated")  # it was exported at payment
        assert world.erp_orders[-1].amount == expected
        assert {(l.sku, l.qty) for l in world.erp_orders[-1].lines} == {("SKU-1", 1), ("SKU-3", 1)}
        # "assembled" pressed on the cancelled task arrives late: it does not count
        await r.child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="assembled", task_id=first.task_id))
        await r.child.signal(FulfillmentWorkflow.pos_event, StoreEvent(event="shortage", task_id=first.task_id,
                                                                       sku="SKU-3", missing_qty=1))
        await asyncio.sleep(0.3)
        assert world.bookings == [] and world.tasks == {}  # neither counts: no booking, no substitution task
        r.total = expected
        assert await r.deliver() == OrderStatus.completed
        assert world.captured == [expected]  # the hold was the old total: the rest is released
        assert {(l.sku, l.qty) for l in world.bookings[0].lines} == {("SKU-1", 1), ("SKU-3", 1)}
        assert "order_changed" in world.notices

    await run_order(people_env, world, [("SKU-1", 2, 150_000), ("SKU-3", 1, 50_000)], test)


async def test_refused_edits_change_nothing(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1})

    async def test(r: Run) -> None:
        await placed(r)
        cases = [
            ((LineEdit(sku="SKU-1", qty=3),), "lines[0].sku: SKU-1: 2 more not in stock"),
            ((LineEdit(sku="NOPE", qty=1),), "lines[0].sku: unknown SKU 'NOPE'"),
            ((LineEdit(sku="SKU-1", qty=100),), "lines[0].qty: must be between 0"),
            ((LineEdit(sku="SKU-1", qty=0), LineEdit(sku="SKU-3", qty=0)), "cancel the order instead"),
            ((LineEdit(sku="SKU-1", qty=1),), "the edit changes nothing"),
            ((LineEdit(sku="SKU-3", qty=1), LineEdit(sku="SKU-3", qty=0)), "lines[1].sku: SKU-3 is named twice"),
            ((LineEdit(sku="SKU-7", qty=0),), "lines[0].qty: SKU-7 is not in the order"),
        ]
        for lines, words in cases:
            assert words in await refused(r, *lines), words
        assert "by: say who edits" in await refused(r, LineEdit(sku="SKU-1", qty=2), by=" ")
        # nothing moved: the hold, the link, loyalty
        assert held(world) == [("SKU-1", "MSK-001", 1), ("SKU-3", "MSK-001", 1)]
        assert world.declined == [] and world.calls["register_payment"] == 1 and world.calls["begin_loyalty"] == 1
        # paid: an edit the store cannot supply is refused before the store is disturbed
        await r.handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved",
                                                                        success=True))
        await r.until(lambda: world.pos_tasks, "the POS assembly task")
        assert "lines[0].sku: SKU-1: 2 more not in stock" in await refused(r, LineEdit(sku="SKU-1", qty=3))
        assert world.calls["cancel_pos_task"] == 0 and len(world.pos_tasks) == 1
        assert held(world) == [("SKU-1", "MSK-001", 1), ("SKU-3", "MSK-001", 1)]
        # once the store has assembled, the lines no longer change
        await r.store("assembled")
        await r.until(lambda: world.bookings, "the courier booking")
        assert "the lines can no longer change" in await refused(r, LineEdit(sku="SKU-3", qty=0))
        await r.handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="тест", by="operator"))
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):  # refused, or the order has already ended
            await edit(r, LineEdit(sku="SKU-3", qty=0))
        assert world.units_held() == 0 and world.reversed == 1

    await run_order(people_env, world, [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)], test)


async def test_removing_the_only_line_of_a_shipment_drops_that_shipment(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 1, ("SKU-3", "WH-ONLINE"): 1})

    async def test(r: Run) -> None:
        await placed(r)
        snap = await r.handle.query(OrderWorkflow.snapshot)
        assert len(snap.shipments) == 2
        out = await edit(r, LineEdit(sku="SKU-3", qty=0))
        assert out.totals.total == 150_000 + DELIVERY
        snap = await r.handle.query(OrderWorkflow.snapshot)
        assert [(s.location_id, [(l.sku, l.qty) for l in s.lines]) for s in snap.shipments] == [
            ("MSK-001", [("SKU-1", 1)])]
        assert held(world) == [("SKU-1", "MSK-001", 1)] and world.stock[("SKU-3", "WH-ONLINE")] == 1
        await r.handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-e1", operation="approved",
                                                                        success=True))
        await r.until(lambda: world.pos_tasks, "the POS assembly task")
        r.total = out.totals.total
        assert await r.deliver() == OrderStatus.completed
        assert [t.location_id for t in world.pos_tasks] == ["MSK-001"] and world.captured == [out.totals.total]

    await run_order(people_env, world, [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)], test)


async def test_edit_racing_the_customers_payment_is_refused_and_the_payment_wins(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 2, ("SKU-3", "MSK-001"): 1})

    async def test(r: Run) -> None:
        await placed(r)
        world.payment_status = PaymentState.held  # the customer paid the link; the bank's callback is still on its way
        assert "the customer has just paid" in await refused(r, LineEdit(sku="SKU-3", qty=0))
        assert world.calls["decline_payment"] == 1 and world.declined == []
        assert world.calls["rollback_loyalty"] == 0 and held(world) == [("SKU-1", "MSK-001", 1),
                                                                          ("SKU-3", "MSK-001", 1)]
        await r.handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-1", operation="approved",
                                                                        success=True))
        await r.until(lambda: world.pos_tasks, "the POS assembly task")
        assert {(l.sku, l.qty) for l in world.pos_tasks[0].lines} == {("SKU-1", 1), ("SKU-3", 1)}
        # now a paid order: the same edit applies before the store assembles, and the capture shrinks
        out = await edit(r, LineEdit(sku="SKU-3", qty=0))
        await r.until(lambda: len(world.pos_tasks) == 2, "the new POS task")
        r.total = out.totals.total
        assert await r.deliver() == OrderStatus.completed and world.captured == [150_000 + DELIVERY]

    await run_order(people_env, world, [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)], test)


async def test_two_edits_at_once_one_applies_the_other_is_refused(people_env: Any) -> None:
    world = PeopleWorld(stock={("SKU-1", "MSK-001"): 3, ("SKU-3", "MSK-001"): 1})

    async def test(r: Run) -> None:
        await placed(r)
        results = await asyncio.gather(edit(r, LineEdit(sku="SKU-1", qty=2), by="op-a"),
                                       edit(r, LineEdit(sku="SKU-1", qty=3), by="op-b"), return_exceptions=True)
        applied = [x for x in results if isinstance(x, EditOutcome)]
        failed = [x for x in results if isinstance(x, WorkflowUpdateFailedError)]
        assert len(applied) == 1 and len(failed) == 1, results
        assert "another edit" in str(failed[0].cause)
        want = {l.qty for l in applied[0].lines if l.sku == "SKU-1"}.pop()
        assert held(world) == sorted([("SKU-1", "MSK-001", want), ("SKU-3", "MSK-001", 1)])
        assert world.registered[f"order-{r.order_id}~e1"] == applied[0].totals.total

    await run_order(people_env, world, [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)], test)


async def dearer(r: Run) -> EditOutcome:
    """A paid order of SKU-1 + SKU-3 gets a scarf: 30 000 more than the card holds."""
    await r.pay_and_wait_assembly()
    out = await edit(r, SCARF)
    assert out.pending_payment == 30_000 and out.payment_url and "md-2" in out.payment_url
    assert r.world.registered[f"order-{r.order_id}~2"] == 30_000 and "edit_extra_payment" in r.world.notices
    # nothing released before the customer pays: the scarf is held besides the old lines; the store waits
    assert held(r.world) == [("SKU-1", "MSK-001", 1), ("SKU-3", "MSK-001", 1), ("SKU-5", "MSK-001", 1)]
    assert r.world.calls["cancel_pos_task"] == 1 and len(r.world.pos_tasks) == 1
    assert "another edit" in await refused(r, LineEdit(sku="SKU-3", qty=0))
    return out


DEARER_STOCK = {("SKU-1", "MSK-001"): 1, ("SKU-3", "MSK-001"): 1, ("SKU-5", "MSK-001"): 1}
DEARER_ORDER = [("SKU-1", 1, 150_000), ("SKU-3", 1, 50_000)]


async def test_paid_order_made_dearer_applies_once_the_difference_is_paid(people_env: Any) -> None:
    world = PeopleWorld(stock=dict(DEARER_STOCK))

    async def test(r: Run) -> None:
        await dearer(r)
        held_total = r.total
        await r.handle.signal(OrderWorkflow.payment_event, PaymentEvent(md_order="md-2", operation="approved",
                                                                        success=True))
        await r.until(lambda: len(world.pos_tasks) == 2, "the new POS task")
        assert {(l.sku, l.qty) for l in world.pos_tasks[1].lines} == {("SKU-1", 1), ("SKU-3", 1), ("SKU-5", 1)}
        assert held(world) == [("SKU-1", "MSK-001", 1), ("SKU-3", "MSK-001", 1), ("SKU-5", "MSK-001", 1)]
        assert world.units_held() == 3  # the scarf's interim hold became its line's hold, not a second one
        snap = await r.handle.query(OrderWorkflow.snapshot)
        assert snap.totals.total == held_total + 30_000
        await r.until(lambda: world.erp_orders, "the ERP's customer order updated")
        assert world.erp_orders[-1].amount == held_total + 30_000
        assert await r.deliver() == OrderStatus.completed
        assert world.captured == [held_total, 30_000]  # the card hold, then the difference

    await run_order(people_env, world, DEARER_ORDER, test)


@pytest.fixture
async def own_env() -> Any:
    """A time-skipping server of its own: after other tests terminated runs with work in flight, the
    test server skips time at a fraction of real speed (temporalio/sdk-java#3088); this test skips
    the 20-minute payment window."""
    from conftest import time_skipping_server

    async with time_skipping_server() as env:
        yield env


async def test_paid_order_made_dearer_stays_as_it_was_when_the_difference_is_not_paid(own_env: Any) -> None:
    world = PeopleWorld(stock=dict(DEARER_STOCK))

    async def test(r: Run) -> None:
        await dearer(r)
        await skip_time(r.env, timedelta(minutes=21))  # the payment window passes
        await r.until(lambda: len(world.pos_tasks) == 2, "the store's task again")
        assert {(l.sku, l.qty) for l in world.pos_tasks[1].lines} == {("SKU-1", 1), ("SKU-3", 1)}
        assert held(world) == [("SKU-1", "MSK-001", 1), ("SKU-3", "MSK-001", 1)]
        assert world.stock[("SKU-5", "MSK-001")] == 1 and "md-2" in world.declined
        assert await r.deliver() == OrderStatus.completed
        assert world.captured == [r.total]

    await run_order(own_env, world, DEARER_ORDER, test)


async def test_cancel_while_a_dearer_edit_waits_for_its_payment_leaves_nothing(people_env: Any) -> None:
    world = PeopleWorld(stock=dict(DEARER_STOCK))

    async def test(r: Run) -> None:
        await dearer(r)
        status = await r.handle.execute_update(OrderWorkflow.cancel, CancelRequest(reason="передумала"))
        assert status == OrderStatus.cancelled
        assert world.units_held() == 0 and world.reversed == 1 and "md-2" in world.declined
        assert world.loyalty == "rolled_back" and world.captured == []

    await run_order(people_env, world, DEARER_ORDER, test)
