"""The simulated store POS over real HTTP, through the real adapter (``adapters.pos.PosClient``).

A tiny FastAPI app plays Orkestr: it receives the store's events, checks ``X-Pos-Token`` and
parses each body with ``adapters.wire.pos.PosEvent``, as Orkestr's API will.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI, Header, HTTPException

from adapters.errors import ExternalRefusal
from adapters.pos import PosClient
from adapters.wire.pos import PosEvent, PosEventKind, PosLine, PosQty, PosTask, PosTaskKind, PosTaskStatus
from sandbox.demo_data import generate

CALLBACK_TOKEN = "test-pos-callback-token"
POS_TOKEN = "dev-pos-token"
DEMO = generate(42, 2000, small=True)
STORE = DEMO.stores[0].id
OTHER_STORE = DEMO.stores[1].id
SKU_A, SKU_B = DEMO.skus[0].sku, DEMO.skus[1].sku


class FakeOrkestr:
    def __init__(self) -> None:
        self.events: list[PosEvent] = []
        self.rejected = 0
        self.app = FastAPI()

        @self.app.post("/pos/events")
        async def receive(event: PosEvent, x_pos_token: str = Header("")) -> dict[str, bool]:
            if x_pos_token != CALLBACK_TOKEN:
                self.rejected += 1
                raise HTTPException(401, "bad token")
            self.events.append(event)
            return {"ok": True}

    async def wait_for(self, n: int, timeout_s: float = 10) -> list[PosEvent]:
        deadline = time.monotonic() + timeout_s
        while len(self.events) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.events


@asynccontextmanager
async def pos_sandbox(
    make_sandbox: Callable[..., Any], serve: Callable[..., Any], **config: Any
) -> AsyncIterator[tuple[FakeOrkestr, str, PosClient, httpx.AsyncClient]]:
    orkestr = FakeOrkestr()
    async with serve(orkestr.app) as served:
        async with make_sandbox(orkestr_url=served.url, pos_callback_token=CALLBACK_TOKEN, **config) as sb:
            async with httpx.AsyncClient(base_url=f"{sb.url}/pos", timeout=10) as http, httpx.AsyncClient(
                base_url=sb.url, timeout=30
            ) as drive:
                yield orkestr, f"{served.url}/pos/events", PosClient(http, token=POS_TOKEN), drive


def task(callback_url: str, task_id: str = "T-1", kind: PosTaskKind = PosTaskKind.ASSEMBLE) -> PosTask:
    return PosTask(
        task_id=task_id,
        kind=kind,
        order_id="ord-1",
        order_number="WEB-000001",
        lines=(PosLine(SKU_A, "Платье миди", 1), PosLine(SKU_B, "Платье миди", 2)),
        due_at=datetime(2025, 3, 1, 15, 0, tzinfo=timezone.utc),
        callback_url=callback_url,
        customer_name="Анна",
        phone_masked="+7 *** ***-45-67",
        note="позвонить перед выдачей",
    )


async def test_task_is_idempotent(make_sandbox: Callable[..., Any], serve: Callable[..., Any]) -> None:
    async with pos_sandbox(make_sandbox, serve) as (_, cb, pos, drive):
        await pos.create_task(location_id=STORE, task=task(cb))
        await pos.create_task(location_id=STORE, task=task(cb))
        tasks = (await drive.get(f"/sandbox/pos/{STORE}/tasks")).json()["tasks"]
        assert len(tasks) == 1 and tasks[0]["status"] == "new" and tasks[0]["customer"]["name"] == "Анна"
        state = await pos.get_task(location_id=STORE, task_id="T-1")
        assert state.status is PosTaskStatus.NEW and state.kind is PosTaskKind.ASSEMBLE
        assert state.lines == (PosLine(SKU_A, "Платье миди", 1), PosLine(SKU_B, "Платье миди", 2))
        # the raw wire: first 201, then 200 with the same task
        body = {"task_id": "T-2", "kind": "set_aside", "order_id": "o", "lines": [{"sku": SKU_A, "qty": 1}], "callback_url": cb}
        headers = {"Authorization": f"Bearer {POS_TOKEN}"}
        first = await drive.post(f"/pos/v1/stores/{STORE}/tasks", json=body, headers=headers)
        again = await drive.post(f"/pos/v1/stores/{STORE}/tasks", json=body, headers=headers)
        assert (first.status_code, first.json()) == (201, {"task_id": "T-2", "status": "new"})
        assert again.status_code == 200 and again.json()["task_id"] == "T-2"
        assert len((await drive.get(f"/sandbox/pos/{STORE}/tasks")).json()["tasks"]) == 2
        # the same task id at another store is a conflict, not a second task
        with pytest.raises(ExternalRefusal) as refused:
            await pos.create_task(location_id=OTHER_STORE, task=task(cb))
        assert refused.value.code == "task_id_taken"
        assert (await drive.get(f"/sandbox/pos/{OTHER_STORE}/tasks")).json()["tasks"] == []


async def test_assembled_and_shortage_send_events_with_the_token(make_sandbox: Callable[..., Any], serve: Callable[..., Any]) -> None:
    async with pos_sandbox(make_sandbox, serve) as (orkestr, cb, pos, drive):
        await pos.create_task(location_id=STORE, task=task(cb, "T-1"))
        await pos.create_task(location_id=STORE, task=task(cb, "T-2"))
        r = await drive.post(f"/sandbox/pos/{STORE}/tasks/T-1/assembled")
        assert r.status_code == 200 and r.json()["callback_status"] == 200
        r2 = await drive.post(f"/sandbox/pos/{STORE}/tasks/T-2/shortage", json={"sku": SKU_B, "missing_qty": 1})
        assert r2.json()["callback_status"] == 200
        events = await orkestr.wait_for(2)
        assert orkestr.rejected == 0 and len(events) == 2
        assembled, shortage = events
        assert assembled.event is PosEventKind.ASSEMBLED and assembled.task_id == "T-1"
        assert assembled.location_id == STORE and assembled.order_id == "ord-1"
        assert assembled.lines == (PosQty(SKU_A, 1), PosQty(SKU_B, 2))
        assert assembled.event_id == r.json()["event"]["event_id"]
        assert shortage.event is PosEventKind.SHORTAGE and shortage.sku == SKU_B and shortage.missing_qty == 1
        assert assembled.event_id != shortage.event_id
        assert (await pos.get_task(location_id=STORE, task_id="T-1")).status is PosTaskStatus.ASSEMBLED
        assert (await pos.get_task(location_id=STORE, task_id="T-2")).status is PosTaskStatus.SHORTAGE
        # pressing "assembled" again is refused, and nothing is sent
        assert (await drive.post(f"/sandbox/pos/{STORE}/tasks/T-1/assembled")).status_code == 409
        assert len(orkestr.events) == 2


async def test_set_aside_ready_then_issued(make_sandbox: Callable[..., Any], serve: Callable[..., Any]) -> None:
    async with pos_sandbox(make_sandbox, serve) as (orkestr, cb, pos, drive):
        await pos.create_task(location_id=STORE, task=task(cb, "R-1", PosTaskKind.SET_ASIDE))
        assert (await drive.post(f"/sandbox/pos/{STORE}/tasks/R-1/issued")).status_code == 409  # not on the shelf yet
        assert (await drive.post(f"/sandbox/pos/{STORE}/tasks/R-1/ready")).json()["callback_status"] == 200
        r = await drive.post(f"/sandbox/pos/{STORE}/tasks/R-1/issued", json={"lines": [{"sku": SKU_B, "qty": 1}], "paid_amount": 299_000})
        assert r.json()["callback_status"] == 200
        ready, issued = await orkestr.wait_for(2)
        assert ready.event is PosEventKind.READY
        assert issued.event is PosEventKind.ISSUED and issued.lines == (PosQty(SKU_B, 1),) and issued.paid_amount == 299_000
        assert (await pos.get_task(location_id=STORE, task_id="R-1")).status is PosTaskStatus.ISSUED
        with pytest.raises(ExternalRefusal) as refused:  # handed over: too late to cancel
            await pos.cancel_task(location_id=STORE, task_id="R-1", reason="late")
        assert refused.value.code == "already_done"


async def test_return_received_and_inspected(make_sandbox: Callable[..., Any], serve: Callable[..., Any]) -> None:
    async with pos_sandbox(make_sandbox, serve) as (orkestr, cb, pos, drive):
        await pos.create_task(location_id=STORE, task=task(cb, "RET-1", PosTaskKind.RECEIVE_RETURN))
        assert (await drive.post(f"/sandbox/pos/{STORE}/tasks/RET-1/assembled")).status_code == 409  # wrong kind
        await drive.post(f"/sandbox/pos/{STORE}/tasks/RET-1/received")
        r = await drive.post(
            f"/sandbox/pos/{STORE}/tasks/RET-1/inspected",
            json={"rejected": [{"sku": SKU_B, "qty": 1, "reason": "следы носки"}]},
        )
        assert r.json()["callback_status"] == 200
        received, inspected = await orkestr.wait_for(2)
        assert received.event is PosEventKind.RECEIVED
        assert inspected.accepted == (PosQty(SKU_A, 1), PosQty(SKU_B, 1))
        assert len(inspected.rejected or ()) == 1 and inspected.rejected[0].reason == "следы носки"


async def test_cancel_then_act_is_refused(make_sandbox: Callable[..., Any], serve: Callable[..., Any]) -> None:
    async with pos_sandbox(make_sandbox, serve) as (orkestr, cb, pos, drive):
        await pos.create_task(location_id=STORE, task=task(cb))
        await pos.cancel_task(location_id=STORE, task_id="T-1", reason="клиент отменил заказ")
        await pos.cancel_task(location_id=STORE, task_id="T-1", reason="клиент отменил заказ")  # idempotent
        state = await pos.get_task(location_id=STORE, task_id="T-1")
        assert state.status is PosTaskStatus.CANCELLED and state.cancel_reason == "клиент отменил заказ"
        for action in ("assembled", "ready", "issued"):
            r = await drive.post(f"/sandbox/pos/{STORE}/tasks/T-1/{action}")
            assert r.status_code == 409, action
        r = await drive.post(f"/sandbox/pos/{STORE}/tasks/T-1/shortage", json={"sku": SKU_A, "missing_qty": 1})
        assert r.status_code == 409
        assert orkestr.events == []
        notes = (await drive.get(f"/sandbox/pos/{STORE}/notifications")).json()["notifications"]
        assert [n["id"] for n in notes].count("cancel-T-1") == 1


async def test_notifications_are_idempotent_and_auth_is_checked(make_sandbox: Callable[..., Any], serve: Callable[..., Any]) -> None:
    async with pos_sandbox(make_sandbox, serve) as (_, cb, pos, drive):
        await pos.create_task(location_id=STORE, task=task(cb))
        await pos.notify(location_id=STORE, message_id="remind-1", text="Клиент придёт в 18:00", task_id="T-1")
        await pos.notify(location_id=STORE, message_id="remind-1", text="Клиент придёт в 18:00", task_id="T-1")
        notes = (await drive.get(f"/sandbox/pos/{STORE}/notifications")).json()["notifications"]
        assert [n["id"] for n in notes].count("remind-1") == 1
        assert any(n["id"] == "task-T-1" for n in notes)  # the new task was shown too
        with pytest.raises(ExternalRefusal) as refused:
            await pos.get_task(location_id=STORE, task_id="NOPE")
        assert refused.value.code == "not_found"
        with pytest.raises(ExternalRefusal) as refused:
            await pos.create_task(location_id="NOWHERE-1", task=task(cb, "T-9"))
        assert refused.value.code == "unknown_store"
        async with httpx.AsyncClient(base_url=str(drive.base_url) + "/pos", timeout=10) as http:
            with pytest.raises(ExternalRefusal) as refused:
                await PosClient(http, token="wrong").get_task(location_id=STORE, task_id="T-1")
        assert refused.value.code == "unauthorized"


async def test_auto_mode_assembles_by_itself(make_sandbox: Callable[..., Any], serve: Callable[..., Any]) -> None:
    async with pos_sandbox(make_sandbox, serve, auto=True, auto_delay_s=0.1) as (orkestr, cb, pos, drive):
        await pos.create_task(location_id=STORE, task=task(cb, "A-1"))
        await pos.create_task(location_id=STORE, task=task(cb, "A-2", PosTaskKind.SET_ASIDE))
        await pos.create_task(location_id=STORE, task=task(cb, "A-3"))
        await pos.cancel_task(location_id=STORE, task_id="A-3", reason="передумал")
        events = await orkestr.wait_for(3)
        await asyncio.sleep(0.3)  # a cancelled task must stay silent
        kinds = {(e.task_id, e.event) for e in orkestr.events}
        assert kinds == {("A-1", PosEventKind.ASSEMBLED), ("A-2", PosEventKind.READY), ("A-2", PosEventKind.ISSUED)}
        assert len(events) == 3 and orkestr.rejected == 0
        assert (await pos.get_task(location_id=STORE, task_id="A-1")).status is PosTaskStatus.ASSEMBLED
        assert (await pos.get_task(location_id=STORE, task_id="A-3")).status is PosTaskStatus.CANCELLED


async def test_task_state_and_events_cross_into_workflows(make_sandbox: Callable[..., Any], serve: Callable[..., Any]) -> None:
    """Task states and received events survive Temporal's default data converter unchanged."""
    from temporalio.converter import DataConverter

    async with pos_sandbox(make_sandbox, serve) as (orkestr, cb, pos, drive):
        await pos.create_task(location_id=STORE, task=task(cb, "RET-1", PosTaskKind.RECEIVE_RETURN))
        await drive.post(f"/sandbox/pos/{STORE}/tasks/RET-1/received")
        await drive.post(f"/sandbox/pos/{STORE}/tasks/RET-1/inspected", json={"rejected": [{"sku": SKU_A, "qty": 1, "reason": "брак"}]})
        events = await orkestr.wait_for(2)
        state = await pos.get_task(location_id=STORE, task_id="RET-1")
    assert state.status is PosTaskStatus.INSPECTED and len(events) == 2
    dc = DataConverter.default
    for value in [state, task(cb), *events]:
        (back,) = await dc.decode(await dc.encode([value]), [type(value)])
        assert back == value
