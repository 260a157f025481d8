"""Simulated store POS (1C Retail-like) under ``/pos``: tasks in, store events out.

Behaviour from ``shared/reference/erp-pos.md`` ("Store POS behaviour"): when an order
arrives or changes, the POS shows a notification (assemble this order, cancel this
reserve); staff report assembled, item missing, handed to the customer, returned.

Wire (``Authorization: Bearer <token>``):

* ``POST /pos/v1/stores/{location_id}/tasks`` — create a task; 201 ``{task_id, status}``;
  a repeat with the same ``task_id`` answers 200 with the task and creates nothing;
* ``POST /pos/v1/stores/{location_id}/tasks/{task_id}/cancel`` ``{reason}`` — idempotent;
  refused (409) once goods were handed over / inspected;
* ``GET  /pos/v1/stores/{location_id}/tasks/{task_id}``;
* ``POST /pos/v1/stores/{location_id}/notifications`` ``{id, text, task_id?}`` — idempotent by id.

Events go to the task's ``callback_url`` with header ``X-Pos-Token`` (see ``adapters.wire.pos.PosEvent``),
through the outbox (``sandbox.state.Outbox``: persisted, retried like a real system).

Drive (the store staff) under ``/sandbox/pos/{location_id}``: list tasks and
notifications, and press ``assembled``, ``shortage``, ``ready``, ``issued``, ``received``,
``inspected``. ``assembled`` takes ``{"marking_codes": {sku: [code per unit]}}``: the Честный ЗНАК
DataMatrix codes scanned for marked units (``domain.marking``; a bad, foreign or repeated code is
422), sent in the event as each line's ``marking_codes`` (absent when none: older events are
unchanged); auto mode scans a valid code for each unit of a marked SKU. Each answers with the event sent and the callback's HTTP status; acting on a
cancelled task (or out of order) answers 409. Auto mode: ``assemble`` → assembled after
``auto_delay_s``; ``set_aside`` → ready after ``auto_delay_s``, issued 2× later;
``receive_return`` → received, then inspected (all accepted) 2× later.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.common import Background, Faults, SandboxConfig, send_once
from domain.marking import MarkingCodeError, generate_marking_code, gtin_from_barcode, parse_marking_code
from sandbox.demo_data import marked, shared
from sandbox.state import Persisted

log = structlog.get_logger("sandbox.pos")

PICKING = {"assemble", "set_aside"}

#: action -> (task kinds it applies to, statuses it may follow, resulting status)
TRANSITIONS: dict[str, tuple[set[str], set[str], str]] = {
    "assembled": (PICKING, {"new", "shortage"}, "assembled"),
    "shortage": (PICKING, {"new", "assembled"}, "shortage"),
    "ready": (PICKING, {"new", "assembled", "shortage"}, "ready"),
    "issued": (PICKING, {"assembled", "ready"}, "issued"),
    "received": ({"receive_return"}, {"new"}, "received"),
    "inspected": ({"receive_return"}, {"received"}, "inspected"),
}
FINAL = {"issued", "inspected"}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# --- wire bodies ----------------------------------------------------------------------------------


class LineIn(BaseModel):
    sku: str
    name: str = ""
    qty: int = Field(ge=1)


class CustomerIn(BaseModel):
    name: str = ""
    phone_masked: str = ""


class TaskIn(BaseModel):
    task_id: str = Field(min_length=1, max_length=200)
    kind: Literal["assemble", "set_aside", "put_back", "receive_return"]
    order_id: str
    order_number: str = ""
    lines: list[LineIn] = Field(min_length=1)
    due_at: datetime | None = None
    callback_url: str
    customer: CustomerIn = Field(default_factory=CustomerIn)
    note: str = ""


class CancelIn(BaseModel):
    reason: str = ""


class NotificationIn(BaseModel):
    id: str = Field(min_length=1, max_length=200)
    text: str
    task_id: str | None = None


class QtyIn(BaseModel):
    sku: str
    qty: int = Field(ge=1)


class RejectedIn(QtyIn):
    reason: str = ""


class AssembledIn(BaseModel):
    marking_codes: dict[str, list[str]] = Field(
        default_factory=dict, description='per SKU, the Честный ЗНАК code scanned for each marked unit: {"P000001-M-RED": ["0104…"]}')


class ShortageIn(BaseModel):
    sku: str
    missing_qty: int = Field(1, ge=1)


class IssuedIn(BaseModel):
    lines: list[QtyIn] | None = None
    paid_amount: int | None = Field(None, ge=0, description="minor units paid at the till")


class InspectedIn(BaseModel):
    accepted: list[QtyIn] | None = None
    rejected: list[RejectedIn] = Field(default_factory=list)


# --- state --------------------------------------------------------------------------------------------


@dataclass
class Task:
    task_id: str
    location_id: str
    kind: str
    order_id: str
    order_number: str
    lines: list[dict[str, Any]]
    due_at: str | None
    callback_url: str
    customer: dict[str, str]
    note: str
    status: str = "new"
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    cancel_reason: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return asdict(self)


class PosSim(Persisted):
    """Tasks and notifications per store, and the store staff acting on them; kept across
    restarts. Events go to Orkestr through the outbox (persisted, retried, in order per task)."""

    persisted: ClassVar[dict[str, Any]] = {
        "tasks": dict[str, Task],
        "notifications": dict[str, dict[str, dict[str, Any]]],
    }

    faults: Faults

    def __init__(self, config: SandboxConfig, bg: Background) -> None:
        self.config = config
        self.bg = bg
        self.faults = Faults("pos")
        self.token: str = getattr(config, "pos_token", "dev-pos-token")
        data = shared(config.seed, config.products, config.small_catalog)
        self.locations = set(data.location_index)
        #: sku -> (GTIN, marked?) of the demo catalogue: auto mode scans codes of marked units
        self.catalog = {s.sku: (gtin_from_barcode(s.barcode), marked(p.category)) for p in data.products for s in p.skus}
        self.rng = random.Random(config.seed * 101 + 3)
        self.tasks: dict[str, Task] = {}
        self.notifications: dict[str, dict[str, dict[str, Any]]] = {}

    async def start(self) -> None:
        """After a restart, auto mode's staff carry on with every task they had not finished."""
        if self.config.auto:
            for task in self.tasks.values():
                if task.status not in FINAL | {"cancelled"}:
                    self.bg.spawn(self._auto(task))

    # --- wire operations ---------------------------------------------------------------------------

    def create_task(self, location_id: str, body: TaskIn) -> tuple[int, Task]:
        existing = self.tasks.get(body.task_id)
        if existing is not None:
            if existing.location_id != location_id:
                raise HTTPException(409, {"code": "task_id_taken", "message": f"task {body.task_id} belongs to {existing.location_id}"})
            return 200, existing
        task = Task(
            task_id=body.task_id,
            location_id=location_id,
            kind=body.kind,
            order_id=body.order_id,
            order_number=body.order_number,
            lines=[ln.model_dump() for ln in body.lines],
            due_at=body.due_at.isoformat() if body.due_at else None,
            callback_url=body.callback_url,
            customer=body.customer.model_dump(),
            note=body.note,
        )
        self.tasks[task.task_id] = task
        text = {
            "assemble": "Соберите заказ",
            "set_aside": "Отложите товар для клиента по заказу",
            "put_back": "Верните товар в торговый зал по заказу",
            "receive_return": "Примите возврат по заказу",
        }[task.kind]
        due = f" к {task.due_at}" if task.due_at else ""
        self.add_notification(location_id, f"task-{task.task_id}", f"{text} №{task.order_number or task.order_id}{due}", task.task_id)
        log.info("pos.task_created", location_id=location_id, task_id=task.task_id, kind=task.kind, order_id=task.order_id)
        if self.config.auto:
            self.bg.spawn(self._auto(task))
        return 201, task

    def cancel_task(self, task: Task, reason: str) -> Task:
        if task.status == "cancelled":
            return task
        if task.status in FINAL:
            raise HTTPException(409, {"code": "already_done", "message": f"task {task.task_id} is {task.status}"})
        task.status = "cancelled"
        task.cancel_reason = reason
        task.updated_at = _now()
        self.add_notification(
            task.location_id,
            f"cancel-{task.task_id}",
            f"Отмена: заказ №{task.order_number or task.order_id} отменён, верните товар в зал ({reason})",
            task.task_id,
        )
        log.info("pos.task_cancelled", location_id=task.location_id, task_id=task.task_id, reason=reason)
        return task

    def add_notification(self, location_id: str, nid: str, text: str, task_id: str | None) -> tuple[int, dict[str, Any]]:
        box = self.notifications.setdefault(location_id, {})
        if nid in box:
            return 200, box[nid]
        note = {"id": nid, "text": text, "task_id": task_id, "created_at": _now()}
        box[nid] = note
        return 201, note

    def task(self, location_id: str, task_id: str) -> Task:
        t = self.tasks.get(task_id)
        if t is None or t.location_id != location_id:
            raise HTTPException(404, {"code": "not_found", "message": f"no task {task_id} at {location_id}"})
        return t

    def store(self, location_id: str) -> None:
        if location_id not in self.locations:
            raise HTTPException(404, {"code": "unknown_store", "message": f"no store {location_id}"})

    # --- staff actions ----------------------------------------------------------------------------------

    def act(self, task: Task, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Change the task's status and build the event (no await: atomic on the loop)."""
        self.bg.touch("pos")
        kinds, allowed_from, to = TRANSITIONS[action]
        if task.status == "cancelled":
            raise HTTPException(409, {"code": "cancelled", "message": f"task {task.task_id} was cancelled: {task.cancel_reason}"})
        if task.kind not in kinds:
            raise HTTPException(409, {"code": "wrong_kind", "message": f"{action} does not apply to a {task.kind} task"})
        if task.status not in allowed_from:
            raise HTTPException(409, {"code": "wrong_status", "message": f"{action} not allowed after {task.status}"})
        event = {
            "event_id": str(uuid.uuid4()),
            "task_id": task.task_id,
            "location_id": task.location_id,
            "order_id": task.order_id,
            "event": action,
            "occurred_at": _now(),
            **payload,
        }
        task.status = to
        task.updated_at = event["occurred_at"]
        task.events.append(event)
        log.debug("pos.event", location_id=task.location_id, task_id=task.task_id, action=action)
        return event

    def validate_lines(self, task: Task, lines: list[QtyIn]) -> list[dict[str, Any]]:
        have = {ln["sku"]: ln["qty"] for ln in task.lines}
        out = []
        for ln in lines:
            if ln.sku not in have:
                raise HTTPException(422, {"code": "unknown_line", "message": f"{ln.sku} is not in task {task.task_id}"})
            if ln.qty > have[ln.sku]:
                raise HTTPException(422, {"code": "too_many", "message": f"{ln.sku}: {ln.qty} > {have[ln.sku]}"})
            out.append({"sku": ln.sku, "qty": ln.qty})
        return out

    @staticmethod
    def all_lines(task: Task) -> list[dict[str, Any]]:
        return [{"sku": ln["sku"], "qty": ln["qty"]} for ln in task.lines]

    def scanned_lines(self, task: Task, codes: dict[str, list[str]]) -> list[dict[str, Any]]:
        """All lines, each marked unit with the code scanned for it (``marking_codes``, one per
        unit, only on lines that have some: an event without codes keeps the old shape). A code
        that is not a valid Честный ЗНАК code, of another product (GTIN), repeated, or more
        codes than units is refused (422 naming the code)."""
        have = {ln["sku"]: ln["qty"] for ln in task.lines}
        seen: set[str] = set()
        for sku, given in codes.items():
            if sku not in have:
                raise HTTPException(422, {"code": "unknown_line", "message": f"marking_codes: {sku} is not in task {task.task_id}"})
            if len(given) > have[sku]:
                raise HTTPException(422, {"code": "too_many_codes", "message": f"marking_codes.{sku}: {len(given)} codes for {have[sku]} units"})
            for raw in given:
                try:
                    code = parse_marking_code(raw)
                except MarkingCodeError as exc:
                    raise HTTPException(422, {"code": "bad_marking_code", "message": f"marking_codes.{sku}: {exc}"}) from None
                gtin = self.catalog.get(sku, ("", False))[0]
                if gtin and code.gtin != gtin:
                    raise HTTPException(422, {"code": "bad_marking_code",
                                              "message": f"marking_codes.{sku}: GTIN {code.gtin} is not this SKU's {gtin}"})
                if code.identity in seen:
                    raise HTTPException(422, {"code": "duplicate_marking_code", "message": f"marking_codes.{sku}: {code.identity} scanned twice"})
                seen.add(code.identity)
        return [{**ln, "marking_codes": list(codes[ln["sku"]])} if codes.get(ln["sku"]) else ln for ln in self.all_lines(task)]

    def auto_codes(self, task: Task) -> dict[str, list[str]]:
        """What a store associate scans: a valid code for each unit of a marked SKU."""
        return {ln["sku"]: [generate_marking_code(self.catalog[ln["sku"]][0], self.rng).text() for _ in range(ln["qty"])]
                for ln in task.lines if self.catalog.get(ln["sku"], ("", False))[1]}

    def _headers(self) -> dict[str, str]:
        return {"X-Pos-Token": self.config.pos_callback_token}

    async def send(self, task: Task, event: dict[str, Any], *, wait: bool) -> int | None:
        """Post the event to the task's callback URL. ``wait``: one attempt now (the staff sees
        the answer), then the outbox redelivers it if Orkestr did not take it; otherwise straight
        to the outbox (persisted, retried, in order per task)."""
        if not wait:
            self.bg.outbox.send("pos", task.task_id, {"task_id": task.task_id}, "POST", task.callback_url,
                                json_body=event, headers=self._headers())
            return None
        resp = await send_once("POST", task.callback_url, json=event, headers=self._headers())
        if resp is None or resp.status_code >= 500:
            self.bg.outbox.send("pos", task.task_id, {"task_id": task.task_id}, "POST", task.callback_url,
                                json_body=event, headers=self._headers(), attempts_done=1)
            return resp.status_code if resp is not None else None
        return resp.status_code

    async def _auto(self, task: Task) -> None:
        """The store staff doing the task by themselves (auto mode)."""
        delay = self.config.auto_delay_s
        plans: dict[str, list[tuple[float, str, Any]]] = {
            "assemble": [(delay, "assembled", lambda: {"lines": self.scanned_lines(task, self.auto_codes(task))})],
            "set_aside": [
                (delay, "ready", lambda: {"lines": self.all_lines(task)}),
                (2 * delay, "issued", lambda: {"lines": self.all_lines(task), "paid_amount": None}),
            ],
            "receive_return": [
                (delay, "received", lambda: {"lines": self.all_lines(task)}),
                (2 * delay, "inspected", lambda: {"accepted": self.all_lines(task), "rejected": []}),
            ],
        }
        steps = plans.get(task.kind, [])
        done = {e.get("event") for e in task.events}
        try:
            for wait_s, action, payload in steps:
                if action in done:  # done before a restart
                    continue
                await asyncio.sleep(wait_s)
                try:
                    event = self.act(task, action, payload())
                except HTTPException:  # cancelled, or the staff already did it by hand
                    log.info("pos.auto_skipped", task_id=task.task_id, action=action, status=task.status)
                    return
                await self.send(task, event, wait=False)
        except Exception:  # a background task: log, never die silently
            log.exception("pos.auto_failed", task_id=task.task_id)


def router(sim: PosSim) -> APIRouter:
    r = APIRouter(tags=["pos"])

    def auth(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), sim.token):
            raise HTTPException(401, {"code": "unauthorized", "message": "bad or missing bearer token"}, headers={"WWW-Authenticate": "Bearer"})

    base = "/pos/v1/stores/{location_id}"

    @r.post(f"{base}/tasks", dependencies=[Depends(auth)])
    async def create_task(location_id: str, body: TaskIn) -> JSONResponse:
        await sim.faults.check("create_task")
        sim.store(location_id)
        status, task = sim.create_task(location_id, body)
        content = {"task_id": task.task_id, "status": task.status} if status == 201 else task.view()
        return JSONResponse(content, status_code=status)

    @r.post(f"{base}/tasks/{{task_id}}/cancel", dependencies=[Depends(auth)])
    async def cancel_task(location_id: str, task_id: str, body: CancelIn) -> dict[str, Any]:
        await sim.faults.check("cancel_task")
        return sim.cancel_task(sim.task(location_id, task_id), body.reason).view()

    @r.get(f"{base}/tasks/{{task_id}}", dependencies=[Depends(auth)])
    async def get_task(location_id: str, task_id: str) -> dict[str, Any]:
        await sim.faults.check("get_task")
        return sim.task(location_id, task_id).view()

    @r.post(f"{base}/notifications", dependencies=[Depends(auth)])
    async def notify(location_id: str, body: NotificationIn) -> JSONResponse:
        await sim.faults.check("notify")
        sim.store(location_id)
        if body.task_id is not None:
            sim.task(location_id, body.task_id)
        status, note = sim.add_notification(location_id, body.id, body.text, body.task_id)
        return JSONResponse(note, status_code=status)

    # --- drive: the store staff ----------------------------------------------------------------------

    d = APIRouter(prefix="/sandbox/pos/{location_id}", tags=["sandbox:pos"])

    @d.get("/tasks", summary="Tasks on this store's POS, newest first")
    async def list_tasks(location_id: str, status: str | None = None) -> dict[str, Any]:
        sim.store(location_id)
        tasks = [t.view() for t in sim.tasks.values() if t.location_id == location_id and (status is None or t.status == status)]
        return {"tasks": tasks[::-1]}

    @d.get("/notifications", summary="Notifications shown on this store's POS")
    async def list_notifications(location_id: str) -> dict[str, Any]:
        sim.store(location_id)
        return {"notifications": list(sim.notifications.get(location_id, {}).values())}

    async def perform(location_id: str, task_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        task = sim.task(location_id, task_id)
        event = sim.act(task, action, payload)
        status = await sim.send(task, event, wait=True)
        return {"event": event, "callback_status": status, "task_status": task.status}

    @d.post("/tasks/{task_id}/assembled", summary="All lines picked (marked units with their scanned codes)")
    async def assembled(location_id: str, task_id: str, body: AssembledIn | None = None) -> dict[str, Any]:
        task = sim.task(location_id, task_id)
        codes = (body or AssembledIn()).marking_codes
        return await perform(location_id, task_id, "assembled", {"lines": sim.scanned_lines(task, codes)})

    @d.post("/tasks/{task_id}/shortage", summary="An item is missing")
    async def shortage(location_id: str, task_id: str, body: ShortageIn) -> dict[str, Any]:
        task = sim.task(location_id, task_id)
        sim.validate_lines(task, [QtyIn(sku=body.sku, qty=body.missing_qty)])
        return await perform(location_id, task_id, "shortage", {"sku": body.sku, "missing_qty": body.missing_qty})

    @d.post("/tasks/{task_id}/ready", summary="On the pickup shelf")
    async def ready(location_id: str, task_id: str) -> dict[str, Any]:
        task = sim.task(location_id, task_id)
        return await perform(location_id, task_id, "ready", {"lines": sim.all_lines(task)})

    @d.post("/tasks/{task_id}/issued", summary="Handed to the customer")
    async def issued(location_id: str, task_id: str, body: IssuedIn | None = None) -> dict[str, Any]:
        task = sim.task(location_id, task_id)
        body = body or IssuedIn()
        lines = sim.validate_lines(task, body.lines) if body.lines else sim.all_lines(task)
        return await perform(location_id, task_id, "issued", {"lines": lines, "paid_amount": body.paid_amount})

    @d.post("/tasks/{task_id}/received", summary="Return received at the till")
    async def received(location_id: str, task_id: str) -> dict[str, Any]:
        task = sim.task(location_id, task_id)
        return await perform(location_id, task_id, "received", {"lines": sim.all_lines(task)})

    @d.post("/tasks/{task_id}/inspected", summary="Return inspected (default: all accepted)")
    async def inspected(location_id: str, task_id: str, body: InspectedIn | None = None) -> dict[str, Any]:
        task = sim.task(location_id, task_id)
        body = body or InspectedIn()
        rejected = sim.validate_lines(task, list(body.rejected))
        for out, src in zip(rejected, body.rejected):
            out["reason"] = src.reason
        if body.accepted is None:
            rejected_qty = {x["sku"]: x["qty"] for x in rejected}
            accepted = [
                {"sku": ln["sku"], "qty": ln["qty"] - rejected_qty.get(ln["sku"], 0)}
                for ln in task.lines
                if ln["qty"] - rejected_qty.get(ln["sku"], 0) > 0
            ]
        else:
            accepted = sim.validate_lines(task, body.accepted)
        return await perform(location_id, task_id, "inspected", {"accepted": accepted, "rejected": rejected})

    r.include_router(d)
    return r
