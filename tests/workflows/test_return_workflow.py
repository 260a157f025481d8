"""ReturnWorkflow on the time-skipping server with stand-in activities (tests/workflows/return_fakes.py):
each way back (in store, courier pickup, post) and each outcome (accepted, rejected, abandoned)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from temporalio.client import WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from return_fakes import DELIVERY, ORDER_LINES, ReturnWorld
from contracts.order import Address, CourierEvent, Customer, LineRequest, StoreEvent
from domain.refunds import refund_return
from contracts.returns import ReturnInput, ReturnLine, ReturnMethod, ReturnStatus
from domain.returns import paid_lines
from contracts.stock import LocationInfo
from workflows.returns import ReturnWorkflow
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from contracts.recovery import RetryRequest
from contracts.steps import ErrorType, RefundRequest

@pytest.fixture(scope="module")
async def ts_env() -> Any:
    """A time-skipping server of this module's own: workflows other tests leave waiting on timers
    (with their workers gone) would otherwise stall time skipping here."""
    from conftest import time_skipping_server

    async with time_skipping_server() as env:
        yield env


STORE = LocationInfo(id="SPB-001", name="Санкт-Петербург, Невский", kind="store", city="Санкт-Петербург",
                     region="RU-SPE", lat=59.93, lon=30.33)
ADDRESS = Address(region="RU-MOW", city="Москва", line="ул. Тверская, д. 1, кв. 5", postcode="125009")
CUSTOMER = Customer(phone="+79161234567", name="Анна Петрова", email="anna@example.ru")


def return_input(method: ReturnMethod, lines: list[tuple[int, int]], rid: str | None = None) -> ReturnInput:
    by_pos = {l.pos_id: l for l in ORDER_LINES}
    return ReturnInput(
        return_id=rid or f"R{uuid.uuid4().hex[:8].upper()}", order_id="ORD1", method=method, location=STORE,
        lines=[ReturnLine(pos_id=p, sku=by_pos[p].sku, name=by_pos[p].name, qty=q, reason="не подошёл размер",
                          unit_price=by_pos[p].unit_price) for p, q in lines],
        customer=CUSTOMER, address=None if method == ReturnMethod.in_store else ADDRESS, md_order="md-1",
        created_at=datetime(2026, 12, 1, 10, tzinfo=timezone.utc), receipt_days=14,
    )


async def start(env: Any, world: ReturnWorld, inp: ReturnInput) -> tuple[WorkflowHandle[Any, Any], Worker]:
    queue = f"rq-{uuid.uuid4()}"
    w = Worker(env.client, task_queue=queue, workflows=[ReturnWorkflow], activities=world.activities())
    handle = await env.client.start_workflow(ReturnWorkflow.run, inp, id=f"return-{inp.return_id}", task_queue=queue)
    return handle, w


async def wait_status(handle: WorkflowHandle[Any, Any], status: ReturnStatus) -> None:
    seen = None
    for _ in range(200):
        seen = await handle.query(ReturnWorkflow.status)
        if seen == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"return stayed {seen}, expected {status}")


def store_event(handle: WorkflowHandle[Any, Any], event: str, **kw: Any) -> Any:
    return handle.signal(ReturnWorkflow.pos_event, StoreEvent(event=event, task_id=f"{handle.id}:receive", **kw))


async def test_in_store_all_accepted_refunds_exactly_restocks_tells_erp(ts_env: Any) -> None:
    world = ReturnWorld()
    inp = return_input(ReturnMethod.in_store, [(1, 2), (2, 1)])
    handle, worker = await start(ts_env, world, inp)
    async with worker:
        await wait_status(handle, ReturnStatus.awaiting_goods)
        task = world.pos_tasks[0]
        assert (task.kind, task.location_id, task.task_id) == ("receive_return", "SPB-001", f"{handle.id}:receive")
        assert world.notices == ["return_registered"] and not world.bookings
        await store_event(handle, "received")
        await wait_status(handle, ReturnStatus.received)
        await store_event(handle, "inspected", accepted=[LineRequest("SKU-1", 2), LineRequest("SKU-2", 1)])
        assert await handle.result() == ReturnStatus.completed

    expected = refund_return(paid_lines(ORDER_LINES), {}, {1: 2, 2: 1}, delivery_paid=DELIVERY)
    refund = world.bank_refunds[f"{handle.id}:refund"]
    assert refund.amount == expected.money_total and refund.md_order == "md-1" and refund.delivery_amount == 0
    assert {(l.pos_id, l.qty, l.amount) for l in refund.lines} == {(x.pos_id, x.qty, x.money) for x in expected.lines}
    assert world.loyalty_returns[handle.id].lines == [(1, 2), (2, 1)]
    assert world.restocked == {f"{handle.id}:1": ("SKU-1", "SPB-001", 2), f"{handle.id}:2": ("SKU-2", "SPB-001", 1)}
    assert world.erp_returns[handle.id].items == [("SKU-1", 2), ("SKU-2", 1)]
    assert world.erp_returns[handle.id].location_id == "SPB-001"
    snap = world.last()
    assert snap.status == ReturnStatus.completed and snap.refunded and snap.refund is not None
    assert snap.refund.total == expected.money_total and snap.bonus_returned == 111
    assert world.notices == ["return_registered", "refunded"]


async def test_two_returns_of_everything_refund_the_whole_payment_with_delivery_once(ts_env: Any) -> None:
    world = ReturnWorld()
    amounts = []
    for lines in ([(1, 1)], [(1, 2), (2, 1)]):
        handle, worker = await start(ts_env, world, return_input(ReturnMethod.in_store, lines))
        async with worker:
            await wait_status(handle, ReturnStatus.awaiting_goods)
            await store_event(handle, "received")
            await store_event(handle, "inspected",
                              accepted=[LineRequest(ORDER_LINES[p - 1].sku, q) for p, q in lines])
            assert await handle.result() == ReturnStatus.completed
        amounts.append(world.bank_refunds[f"{handle.id}:refund"].amount)
    paid = sum(l.amount for l in ORDER_LINES) + DELIVERY
    assert sum(amounts) == paid
    assert world.bank_refunds[f"{handle.id}:refund"].delivery_amount == DELIVERY  # with the last unit only


async def test_courier_pickup_partly_rejected_refunds_accepted_and_ships_the_rest_back(ts_env: Any) -> None:
    world = ReturnWorld()
    inp = return_input(ReturnMethod.courier_pickup, [(1, 2)])
    handle, worker = await start(ts_env, world, inp)
    async with worker:
        await wait_status(handle, ReturnStatus.awaiting_goods)
        booking = world.bookings[0]
        assert booking.is_return and booking.carrier == "cdek" and booking.shipment_id == handle.id
        assert booking.from_location_id == "SPB-001" and booking.address == ADDRESS
        await handle.signal(ReturnWorkflow.courier_event, CourierEvent(status="handed_over", code="TAKEN_BY_COURIER"))
        await wait_status(handle, ReturnStatus.in_transit)
        await handle.signal(ReturnWorkflow.courier_event, CourierEvent(status="delivered", code="DELIVERED"))
        await wait_status(handle, ReturnStatus.received)
        await store_event(handle, "inspected", accepted=[LineRequest("SKU-1", 1)],
                          rejected=[{"sku": "SKU-1", "qty": 1, "reason": "следы носки"}])
        assert await handle.result() == ReturnStatus.completed

    expected = refund_return(paid_lines(ORDER_LINES), {}, {1: 1}, delivery_paid=DELIVERY)
    assert world.bank_refunds[f"{handle.id}:refund"].amount == expected.money_total
    back = world.bookings[1]
    assert back.shipment_id == f"{handle.id}-back" and not back.is_return and [(l.sku, l.qty) for l in back.lines] == [("SKU-1", 1)]
    assert world.restocked == {f"{handle.id}:1": ("SKU-1", "SPB-001", 1)}
    line = world.last().lines[0]
    assert (line.accepted, line.rejected, line.reject_reason) == (1, 1, "следы носки")
    assert world.last().back_to_customer == "TRK-2"
    assert world.notices == ["return_registered", "return_rejected", "refunded"]


async def test_post_return_code_then_tracking_by_polling(ts_env: Any) -> None:
    world = ReturnWorld(tracking=["created", "handed_over", "in_transit", "delivered"])
    inp = return_input(ReturnMethod.post, [(2, 1)])
    handle, worker = await start(ts_env, world, inp)
    async with worker:
        await wait_status(handle, ReturnStatus.awaiting_goods)
        assert world.bookings[0].carrier == "post" and world.bookings[0].is_return
        assert world.last().return_code == "123456"
        # the store will inspect once the parcel arrives; time runs on while we wait for the result
        await store_event(handle, "inspected", accepted=[LineRequest("SKU-2", 1)])
        assert await handle.result() == ReturnStatus.completed
    assert world.polls == 4
    kinds = [e.kind for e in world.last().timeline]
    assert kinds.index("in_transit") < kinds.index("parcel_delivered") < kinds.index("received") < kinds.index("refunded")


async def test_everything_rejected_closes_without_money_or_stock(ts_env: Any) -> None:
    world = ReturnWorld()
    handle, worker = await start(ts_env, world, return_input(ReturnMethod.in_store, [(1, 1)]))
    async with worker:
        await wait_status(handle, ReturnStatus.awaiting_goods)
        await store_event(handle, "received")
        await store_event(handle, "inspected", accepted=[], rejected=[{"sku": "SKU-1", "qty": 1, "reason": "брак по вине покупателя"}])
        assert await handle.result() == ReturnStatus.rejected
    assert not world.bank_refunds and not world.restocked and not world.loyalty_returns and not world.erp_returns
    assert world.last().claims() == {}  # the unit is the customer's again
    assert world.notices == ["return_registered", "return_rejected"]


async def test_in_store_nothing_brought_within_the_window_is_abandoned(ts_env: Any) -> None:
    world = ReturnWorld()
    handle, worker = await start(ts_env, world, return_input(ReturnMethod.in_store, [(1, 1)]))
    async with worker:
        assert await handle.result() == ReturnStatus.abandoned
    assert world.pos_cancelled == [f"{handle.id}:receive"]
    assert world.last().status == ReturnStatus.abandoned and world.last().claims() == {}
    assert world.notices == ["return_registered", "return_abandoned"] and not world.bank_refunds


async def test_courier_never_gets_the_parcel_is_abandoned_and_the_booking_cancelled(ts_env: Any) -> None:
    world = ReturnWorld()  # the carrier keeps answering "created"
    handle, worker = await start(ts_env, world, return_input(ReturnMethod.courier_pickup, [(1, 1)]))
    async with worker:
        assert await handle.result() == ReturnStatus.abandoned
    assert world.cancelled_bookings == [f"uuid-{handle.id}"] and world.polls >= 14 * 4 - 1
    assert not world.bank_refunds and not world.restocked


async def test_a_parcel_on_its_way_is_not_abandoned_at_the_deadline(ts_env: Any) -> None:
    world = ReturnWorld(tracking=["handed_over"] + ["in_transit"] * 80 + ["delivered"])
    handle, worker = await start(ts_env, world, return_input(ReturnMethod.courier_pickup, [(1, 1)]))
    async with worker:
        await wait_status(handle, ReturnStatus.awaiting_goods)
        await store_event(handle, "inspected", accepted=[LineRequest("SKU-1", 1)])
        assert await handle.result() == ReturnStatus.completed  # 82 polls × 6 h ≈ 20 days > 14
    assert not world.cancelled_bookings


# --- exchange ---------------------------------------------------------------------------------------------
from contracts.order import Delivery, DeliveryMethod, PaymentEvent  # noqa: E402
from contracts.returns import ExchangeRequest  # noqa: E402
from workflows.fulfillment import FulfillmentWorkflow  # noqa: E402


def exchange_input(price: int) -> ReturnInput:
    inp = return_input(ReturnMethod.in_store, [(1, 1)])
    return dataclasses.replace(
        inp, exchange=ExchangeRequest(pos_id=1, sku="SKU-1-L", name="Платье L", qty=1, unit_price=price),
        delivery=Delivery(method=DeliveryMethod.courier, address=ADDRESS))


async def start_exchange(env: Any, world: ReturnWorld, inp: ReturnInput) -> tuple[WorkflowHandle[Any, Any], Worker]:
    queue = f"rq-{uuid.uuid4()}"
    w = Worker(env.client, task_queue=queue, workflows=[ReturnWorkflow, FulfillmentWorkflow],
               activities=world.activities())
    handle = await env.client.start_workflow(ReturnWorkflow.run, inp, id=f"return-{inp.return_id}", task_queue=queue)
    return handle, w


async def deliver_replacement(env: Any, world: ReturnWorld, inp: ReturnInput) -> None:
    sid = f"fulfillment-ORD1-{inp.return_id}"
    for _ in range(200):
        if any(t.task_id == f"{sid}:assemble" for t in world.pos_tasks):
            break
        await asyncio.sleep(0.05)
    child = env.client.get_workflow_handle(sid)
    await child.signal("pos_event", StoreEvent(event="assembled", task_id=f"{sid}:assemble"))
    for _ in range(200):
        if any(b.shipment_id == sid for b in world.bookings):
            break
        await asyncio.sleep(0.05)
    await child.signal("courier_event", CourierEvent(status="delivered", code="DELIVERED"))


async def test_exchange_same_price_ships_the_replacement_at_no_charge(ts_env: Any) -> None:
    world = ReturnWorld(stock={("SKU-1-L", "MSK-001"): 2})
    inp = exchange_input(ORDER_LINES[0].unit_price)
    handle, worker = await start_exchange(ts_env, world, inp)
    async with worker:
        await wait_status(handle, ReturnStatus.awaiting_goods)
        for _ in range(100):
            if world.held:
                break
            await asyncio.sleep(0.05)
        assert [v for v in world.held.values()] == [("SKU-1-L", "MSK-001", 1)]  # held from the start
        await store_event(handle, "received")
        await store_event(handle, "inspected", accepted=[LineRequest("SKU-1", 1)])
        await deliver_replacement(ts_env, world, inp)
        assert await handle.result() == ReturnStatus.completed
    assert not world.bank_refunds and not world.payments and not world.loyalty_returns  # no money moves
    assert world.restocked == {f"{handle.id}:1": ("SKU-1", "SPB-001", 1)}  # the returned dress is back on sale
    assert len(world.consumed) == 1 and world.sales[0].items == [("SKU-1-L", 1)]  # the replacement was sold
    snap = world.last()
    assert snap.exchange is not None and snap.exchange.status == "delivered" and snap.exchange.difference == 0
    assert snap.claims() == {1: 1}


async def test_exchange_dearer_waits_for_the_difference_then_ships(ts_env: Any) -> None:
    world = ReturnWorld(stock={("SKU-1-L", "MSK-001"): 1})
    inp = exchange_input(ORDER_LINES[0].unit_price + 50_000)
    handle, worker = await start_exchange(ts_env, world, inp)
    async with worker:
        await wait_status(handle, ReturnStatus.awaiting_goods)
        await store_event(handle, "received")
        await store_event(handle, "inspected", accepted=[LineRequest("SKU-1", 1)])
        for _ in range(200):
            if world.payments:
                break
            await asyncio.sleep(0.05)
        assert world.payments[0].amount == 50_000 and world.payments[0].order_number == handle.id
        await handle.signal(ReturnWorkflow.payment_event, PaymentEvent(md_order="md-x", operation="approved", success=True))
        await deliver_replacement(ts_env, world, inp)
        assert await handle.result() == ReturnStatus.completed
    assert world.captured == [50_000] and not world.bank_refunds
    assert "extra_payment" in world.notices


async def test_exchange_not_paid_in_time_becomes_a_plain_return(ts_env: Any) -> None:
    world = ReturnWorld(stock={("SKU-1-L", "MSK-001"): 1})
    inp = exchange_input(ORDER_LINES[0].unit_price + 50_000)
    handle, worker = await start_exchange(ts_env, world, inp)
    async with worker:
        await wait_status(handle, ReturnStatus.awaiting_goods)
        await store_event(handle, "received")
        await store_event(handle, "inspected", accepted=[LineRequest("SKU-1", 1)])
        assert await handle.result() == ReturnStatus.completed  # the payment window passes
    expected = refund_return(paid_lines(ORDER_LINES), {}, {1: 1}, delivery_paid=DELIVERY)
    assert world.bank_refunds[f"{handle.id}:refund"].amount == expected.money_total
    assert world.released and not world.held and world.stock[("SKU-1-L", "MSK-001")] == 1
    assert world.last().exchange is not None and world.last().exchange.status == "declined"


async def test_a_refused_refund_parks_for_an_operator_and_the_retry_refunds_once(ts_env: Any) -> None:
    """The bank refuses refund.do: the return waits for a person instead of failing; after the retry
    the money goes back exactly once and the return completes."""
    world = ReturnWorld()
    bank_says_no = {"on": True}
    original = world.activities

    def refusing_bank() -> list[Any]:
        acts = original()
        real = next(a for a in acts if getattr(a, "__temporal_activity_definition").name == "refund_payment")

        @activity.defn(name="refund_payment")
        async def refund_payment(req: RefundRequest) -> None:
            if bank_says_no["on"]:
                raise ApplicationError("acquiring refused refund.do: 7: system error", type=ErrorType.PAYMENT_REFUSED,
                                       non_retryable=True)
            await real(req)

        return [refund_payment if a is real else a for a in acts]

    world.activities = refusing_bank  # type: ignore[method-assign]
    inp = return_input(ReturnMethod.in_store, [(1, 1)])
    handle, worker = await start(ts_env, world, inp)
    async with worker:
        with pytest.raises(WorkflowUpdateFailedError):  # nothing parked yet: the validator refuses
            await handle.execute_update(ReturnWorkflow.retry, RetryRequest(by="ops"))
        await wait_status(handle, ReturnStatus.awaiting_goods)
        await store_event(handle, "received")
        await store_event(handle, "inspected", accepted=[LineRequest("SKU-1", 1)])
        for _ in range(200):
            snap = await handle.query(ReturnWorkflow.snapshot)
            if any(e.kind == "refund_failed" for e in snap.timeline):
                break
            await asyncio.sleep(0.05)
        assert any(e.kind == "refund_failed" for e in snap.timeline), [e.kind for e in snap.timeline]
        assert snap.status == ReturnStatus.inspected and not world.bank_refunds  # waiting, nothing refunded
        bank_says_no["on"] = False
        assert await handle.execute_update(ReturnWorkflow.retry, RetryRequest(by="ops", note="банк починили")) is True
        assert await handle.result() == ReturnStatus.completed
    assert list(world.bank_refunds) == [f"{handle.id}:refund"]  # refunded once, with the return's key
    assert world.last().refunded


async def test_a_return_the_rules_refuse_at_registration_saves_and_arranges_nothing(ts_env: Any) -> None:
    """Another return took the last units meanwhile: the registration answers why (the API's 409 with
    the field) and the workflow ends; no row, no store task, no courier."""
    world = ReturnWorld(refuse_registration=(409, "too_many_units", "lines[0].qty"))
    inp = return_input(ReturnMethod.courier_pickup, [(1, 1)])
    queue = f"rq-{uuid.uuid4()}"
    async with Worker(ts_env.client, task_queue=queue, workflows=[ReturnWorkflow], activities=world.activities()):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await ts_env.client.execute_update_with_start_workflow(
                ReturnWorkflow.registration, start_workflow_operation=WithStartWorkflowOperation(
                    ReturnWorkflow.run, inp, id=f"return-{inp.return_id}", task_queue=queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING))
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "ReturnRefused"
        assert list(cause.details) == [409, "too_many_units", "lines[0].qty"]
        handle = ts_env.client.get_workflow_handle(f"return-{inp.return_id}")
        assert await handle.result() == ReturnStatus.refused
    assert world.snapshots == [] and world.pos_tasks == [] and world.bookings == [] and world.registered == []


async def test_registration_answers_a_retried_request_with_the_same_return(ts_env: Any) -> None:
    world = ReturnWorld()
    inp = return_input(ReturnMethod.in_store, [(2, 1)])
    queue = f"rq-{uuid.uuid4()}"

    def start_op() -> Any:
        return WithStartWorkflowOperation(ReturnWorkflow.run, inp, id=f"return-{inp.return_id}", task_queue=queue,
                                          id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)

    async with Worker(ts_env.client, task_queue=queue, workflows=[ReturnWorkflow], activities=world.activities()):
        first = await ts_env.client.execute_update_with_start_workflow(ReturnWorkflow.registration,
                                                                       start_workflow_operation=start_op())
        again = await ts_env.client.execute_update_with_start_workflow(ReturnWorkflow.registration,
                                                                       start_workflow_operation=start_op())
        assert first.return_id == again.return_id == inp.return_id and first.status == ReturnStatus.registered
        assert world.registered == [inp.return_id]  # claimed once: the retry found the running return
        await ts_env.client.get_workflow_handle(f"return-{inp.return_id}").terminate("test over")
