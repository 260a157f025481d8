"""Stand-ins for the reservation steps, on top of ``fakes.World`` (same names as the real activities)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError

from fakes import World
from contracts.reservation import ReservationSnapshot, SettleResult, SettleTaken
from contracts.steps import CustomerNotice, ErpMovement, ErrorType, PosCancel


@dataclass
class PickupWorld(World):
    """``World`` plus the reservation projection, keyed ledger settlement, timed notices, and a POS
    that can refuse a cancel (the store already issued the goods)."""

    reservations: list[ReservationSnapshot] = field(default_factory=list)
    timed_notices: list[tuple[str, datetime, dict[str, Any]]] = field(default_factory=list)
    pos_cancels: list[PosCancel] = field(default_factory=list)
    refuse_pos_cancel: bool = False
    sales: list[ErpMovement] = field(default_factory=list)
    settle_calls: int = 0

    def activities(self) -> list[Callable[..., Any]]:
        w = self
        replaced = {"notify_customer", "cancel_pos_task", "post_sale"}
        base = [a for a in super().activities()
                if getattr(a, "__temporal_activity_definition").name not in replaced]

        @activity.defn(name="save_reservation")
        async def save_reservation(s: ReservationSnapshot) -> None:
            w.reservations.append(s)

        @activity.defn(name="settle_reservation")
        async def settle_reservation(req: SettleTaken) -> SettleResult:
            w.settle_calls += 1
            consumed = released = 0
            for key, take in req.taken:
                if key not in w.held:
                    continue
                sku, loc, qty = w.held.pop(key)
                take = min(take, qty)
                if take:
                    w.consumed[key] = (sku, loc, take)
                w.stock[(sku, loc)] += qty - take
                consumed += take
                released += qty - take
            return SettleResult(consumed=consumed, released=released)

        @activity.defn(name="notify_customer")
        async def notify_customer(n: CustomerNotice) -> None:
            if n.key in {k for k, *_ in w.timed_notices}:
                return  # the gateway's client_msg_id: one message per key
            w.notices.append(n.event)
            w.timed_notices.append((n.key, activity.info().current_attempt_scheduled_time, {"event": n.event, **n.params}))

        @activity.defn(name="cancel_pos_task")
        async def cancel_pos_task(req: PosCancel) -> None:
            w.pos_cancels.append(req)
            if w.refuse_pos_cancel:
                raise ApplicationError("pos refused cancel_task: task is issued", "already_done",
                                       type=ErrorType.POS_REFUSED, non_retryable=True)

        @activity.defn(name="post_sale")
        async def post_sale(req: ErpMovement) -> None:
            w.sales.append(req)

        return base + [save_reservation, settle_reservation, notify_customer, cancel_pos_task, post_sale]

    def notice(self, event: str) -> tuple[str, datetime, dict[str, Any]] | None:
        return next((n for n in self.timed_notices if n[2]["event"] == event), None)


@pytest.fixture(scope="module")
async def own_ts_env() -> Any:
    """A time-skipping server for one test module: a workflow another module left running (its
    worker gone, an activity or timer pending) would stop time skipping on a shared server."""
    from conftest import time_skipping_server

    async with time_skipping_server() as env:
        yield env
