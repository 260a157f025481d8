"""Russian Post sends no webhooks: a post shipment's tracking is polled every ``post_poll_minutes`` (a
setting: minutes in dev so `make run` orders complete, 240 in prod), carried from the order's input
to its shipment. Time-skipping server of its own, stand-in activities."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.worker import Worker

from conftest import skip_time, time_skipping_server
from fakes import World
from contracts.order import DeliveryMethod, OrderStatus, PaymentEvent, StoreEvent
from contracts.steps import BookedShipment, TrackingResult
from test_order_workflow import child_started, order_input, wait_until
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow


async def test_post_tracking_is_polled_every_post_poll_minutes() -> None:
    world = World(stock={("SKU-1", "MSK-001"): 2})
    polls: list[Any] = []

    @activity.defn(name="track_shipment")
    async def track_shipment(b: BookedShipment) -> TrackingResult:
        polls.append(activity.info().current_attempt_scheduled_time)
        return TrackingResult(status="in_transit" if len(polls) < 2 else "delivered")

    acts = [a for a in world.activities() if getattr(a, "__temporal_activity_definition").name != "track_shipment"]
    base = order_input("POSTPOLL1", [("SKU-1", 1, 199_000)])
    inp = dataclasses.replace(base, delivery=dataclasses.replace(base.delivery, method=DeliveryMethod.post),
                              post_poll_minutes=30)
    queue = f"q-{uuid.uuid4()}"
    async with time_skipping_server() as env:
        async with Worker(env.client, task_queue=queue, workflows=[OrderWorkflow, FulfillmentWorkflow],
                          activities=[*acts, track_shipment]):
            handle = await env.client.start_workflow(OrderWorkflow.run, inp, id=f"order-{inp.order_id}",
                                                     task_queue=queue)
            await handle.execute_update(OrderWorkflow.placement)
            await handle.signal(OrderWorkflow.payment_event,
                                PaymentEvent(md_order="md-1", operation="approved", success=True))
            child = await child_started(env, f"fulfillment-{inp.order_id}-1")
            await wait_until(lambda: world.pos_tasks, "the POS assembly task")
            await child.signal(FulfillmentWorkflow.pos_event,
                               StoreEvent(event="assembled", task_id=world.pos_tasks[0].task_id))
            await wait_until(lambda: world.bookings, "the post booking")
            assert world.bookings[0].carrier == "post"
            for n in (1, 2):
                await skip_time(env, timedelta(minutes=30))
                await wait_until(lambda: len(polls) >= n, f"poll {n}")
            for _ in range(100):
                if await handle.query(OrderWorkflow.status) == OrderStatus.completed:
                    break
                await skip_time(env, timedelta(seconds=1))
            assert await handle.query(OrderWorkflow.status) == OrderStatus.completed
            await handle.terminate("test over")  # it waits out the return window from here
    assert len(polls) == 2
    assert round((polls[1] - polls[0]).total_seconds() / 60) == 30
