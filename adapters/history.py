"""Reading what Temporal knows about an order: event histories (the order and its shipments),
visibility, and the operator actions on top of them (retry a parked step, reset a failed run).

The pure part (turning events into a story for a person) is ``adapters/story.py``; the API
(``GET /v1/orders/{id}/history``) and the CLI (``orkestr order show``) both use this module.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from adapters.orders_repo import snapshot_to_json
from adapters.story import (
    Story,
    attributes,
    build_story,
    child_workflow_ids,
    describe_event,
    event_type,
    first_command_event_after,
    mask_story,
    workflow_task_boundaries,
)
from contracts.order import OrderSnapshot, order_workflow_id
from contracts.recovery import RetryRequest
from workflows.search import NAMES


async def ensure_search_attributes(client: Client, namespace: str | None = None) -> list[str]:
    """Register the custom search attributes (Keyword) that are missing; returns the names added."""
    ns = namespace or client.namespace
    try:
        have = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=ns))
        missing = [n for n in NAMES if n not in have.custom_attributes]
    except RPCError as err:  # the time-skipping test server can add but not list
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        missing = list(NAMES)
    added = []
    for name in missing:
        try:
            await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
                namespace=ns, search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}))
            added.append(name)
        except RPCError as err:
            if err.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return added


# ------------------------------------------------------------------------------------------ histories
class OrderNotFound(LookupError):
    pass


async def history_json(client: Client, workflow_id: str, run_id: str | None = None) -> dict[str, Any]:
    """One workflow's full event history as Temporal's JSON (the shape ``temporal workflow show -o json`` writes)."""
    try:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise OrderNotFound(workflow_id) from err
        raise
    data: dict[str, Any] = json.loads(history.to_json())
    return data


async def order_histories(client: Client, order_id: str) -> dict[str, dict[str, Any]]:
    """The order workflow's history and those of the fulfillment children it started."""
    main = await history_json(client, order_workflow_id(order_id))
    out = {order_workflow_id(order_id): main}
    for child in child_workflow_ids(main):
        try:
            out[child] = await history_json(client, child)
        except OrderNotFound:
            continue
    return out


async def order_story(client: Client, order_id: str, snapshot: OrderSnapshot | None, *,
                      role: str = "support") -> Story:
    """The story of an order for a person; masked unless ``role == "developer"``."""
    histories = await order_histories(client, order_id)
    story = build_story(order_id, histories, snapshot_to_json(snapshot) if snapshot else None)
    return story if role == "developer" else mask_story(story)


# ------------------------------------------------------------------------------------------ replay
@dataclass(frozen=True)
class ReplayReport:
    workflow_id: str
    workflow_type: str
    ok: bool
    events: int
    error: str | None = None
    nondeterministic: bool = False
    diverged_at: str | None = None  # "event 5 ActivityTaskScheduled price_cart"


def load_history_file(path: str) -> dict[str, Any]:
    """A saved history: Temporal's JSON (``{"events": [...]}``) as written by ``orkestr history export``,
    ``temporal workflow show --output json`` or the web UI's download."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or not isinstance(data.get("events"), list) or not data["events"]:
        raise ValueError(f"{path}: not a workflow history (expected a JSON object with a non-empty \"events\" list)")
    return data


async def replay(history: dict[str, Any], workflow_id: str, workflows: list[type]) -> ReplayReport:
    """Replay one history against ``workflows``; on non-determinism find the workflow task where it
    diverged (bisecting over prefixes that end at a workflow task) and name the event."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer
    from temporalio.workflow import NondeterminismError

    replayer = Replayer(workflows=workflows, data_converter=pydantic_data_converter)
    first = history["events"][0]
    wf_type = attributes(first).get("workflowType", {}).get("name", "?")

    async def failure(events: list[dict[str, Any]]) -> Exception | None:
        h = WorkflowHistory.from_json(workflow_id, {"events": events})
        result = await replayer.replay_workflow(h, raise_on_replay_failure=False)
        return result.replay_failure

    err = await failure(history["events"])
    if err is None:
        return ReplayReport(workflow_id, wf_type, ok=True, events=len(history["events"]))
    nondet = isinstance(err, NondeterminismError)
    message = _core_message(str(err))
    diverged = None
    if nondet:
        cuts = workflow_task_boundaries(history)
        lo, hi = 0, len(cuts) - 1  # find the first prefix that fails
        bad = len(cuts) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            if await failure(history["events"][:cuts[mid]]) is not None:
                bad, hi = mid, mid - 1
            else:
                lo = mid + 1
        # prefix `bad` fails, `bad - 1` replays: the commands of the task before cut `bad` diverged
        start = cuts[bad - 1] if bad > 0 else 0
        diverged = describe_event(first_command_event_after(history, start))
    return ReplayReport(workflow_id, wf_type, ok=False, events=len(history["events"]), error=message,
                        nondeterministic=nondet, diverged_at=diverged)


def _core_message(text: str) -> str:
    found = re.search(r'message: "((?:[^"\\]|\\.)*)"', text)
    return found.group(1).replace('\\"', '"').replace("\\'", "'") if found else text


def replay_workflows(spec: str | None) -> list[type]:
    """The worker's workflows, or ``module:Class[,module:Class]`` (e.g. a candidate version to check)."""
    from workflows.registry import WORKFLOWS

    if not spec:
        return list(WORKFLOWS)
    import importlib

    chosen = []
    for item in spec.split(","):
        module, _, name = item.strip().partition(":")
        chosen.append(getattr(importlib.import_module(module), name))
    names = {getattr(c, "__temporal_workflow_definition").name for c in chosen}
    return chosen + [w for w in WORKFLOWS if getattr(w, "__temporal_workflow_definition").name not in names]


# ------------------------------------------------------------------------------------------ operations
@dataclass(frozen=True)
class RetryResult:
    order_id: str
    action: str  # resumed | reset
    detail: str


class NothingToRetry(Exception):
    pass


async def retry_order(client: Client, order_id: str, *, by: str, note: str = "") -> RetryResult:
    """Resume what is on hold (a running order: the ``retry`` update), or reset a *failed* order
    workflow to the workflow task that scheduled its failed step (the step runs again; its
    idempotency key makes the repeat harmless)."""
    from workflows.order import OrderWorkflow

    wf_id = order_workflow_id(order_id)
    handle = client.get_workflow_handle(wf_id)
    try:
        desc = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise OrderNotFound(order_id) from err
        raise
    if desc.status == WorkflowExecutionStatus.RUNNING:
        try:
            outcome = await handle.execute_update(OrderWorkflow.retry, RetryRequest(by=by, note=note))
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            raise NothingToRetry(getattr(cause, "message", None) or str(cause)) from err
        return RetryResult(order_id, "resumed", ", ".join(outcome.resumed))
    if desc.status != WorkflowExecutionStatus.FAILED:
        raise NothingToRetry(f"the order workflow is {desc.status.name.lower() if desc.status else 'unknown'}, "
                             "not running or failed")
    history = await history_json(client, wf_id, desc.run_id)
    point, what = reset_point(history)
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

    resp = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=wf_id, run_id=desc.run_id),
        reason=f"orkestr order retry by {by}: {note or what}", workflow_task_finish_event_id=point,
        request_id=str(uuid.uuid4())))
    return RetryResult(order_id, "reset", f"reset to event {point} ({what}); new run {resp.run_id}")


def reset_point(history: dict[str, Any]) -> tuple[int, str]:
    """The ``WorkflowTaskCompleted`` that scheduled the last failed activity (else the last completed task)."""
    events = history["events"]
    scheduled = {int(e["eventId"]): e for e in events if event_type(e) == "ActivityTaskScheduled"}
    for e in reversed(events):
        if event_type(e) in ("ActivityTaskFailed", "ActivityTaskTimedOut"):
            sched = scheduled.get(int(attributes(e).get("scheduledEventId", 0)))
            if sched:
                a = attributes(sched)
                return int(a["workflowTaskCompletedEventId"]), f"the failed step {a['activityType']['name']}"
    for e in reversed(events):
        if event_type(e) == "WorkflowTaskCompleted":
            return int(e["eventId"]), "the last completed workflow task"
    raise NothingToRetry("the history has no completed workflow task to reset to")


@dataclass(frozen=True)
class ProblemOrder:
    order_id: str
    status: str
    since: datetime | None
    waiting_at: str  # the step it waits at / failed at
    detail: str = ""
    store_id: str | None = None


FINAL = ("completed", "cancelled", "rejected")


async def stuck_orders(client: Client, engine: AsyncEngine, older_than: timedelta, *,
                       limit: int = 200) -> list[ProblemOrder]:
    """Orders not final whose last change is older than ``older_than`` (projection), each with
    what its workflow is waiting at right now (visibility / describe: pending activities, retries)."""
    cut = datetime.now(timezone.utc) - older_than
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT order_id, status, store_id, updated_at FROM orders WHERE status NOT IN :final "
            "AND updated_at < :cut ORDER BY updated_at LIMIT :limit").bindparams(bindparam("final", expanding=True)),
            {"final": list(FINAL), "cut": cut, "limit": limit})).all()
    out = []
    for r in rows:
        waiting, detail = await _waiting_at(client, r.order_id, r.status)
        out.append(ProblemOrder(r.order_id, r.status, r.updated_at, waiting, detail, r.store_id))
    return out


#: an activity retried this many times is reported as failing (an outage the order waits out)
FAILING_AFTER_ATTEMPTS = 3
_ORDER_TYPES = '(WorkflowType = "OrderWorkflow" OR WorkflowType = "FulfillmentWorkflow")'


async def failed_orders(client: Client, engine: AsyncEngine | None, *, limit: int = 200,
                        failing_after: int = FAILING_AFTER_ATTEMPTS) -> list[ProblemOrder]:
    """Every order that needs a person, from both sources, each once, with the reason:

    - **on hold** in the projection (a step refused; ``waiting_at`` is the step, ``detail`` the refusal);
    - **parked** in Temporal (``OrderStatus="on_hold"`` on a running order or shipment workflow), which
      also finds what the projection has not caught up with;
    - **failing**: a running order or shipment workflow whose activity has been retried ``failing_after``
      times or more (an outage: the last error is the reason), or whose workflow task keeps failing (a bug);
    - **failed**: an order or shipment workflow closed as failed, terminated or timed out.

    Temporal is read through visibility (each list bounded by ``limit``); the failing ones need a describe
    of each running workflow, so at most ``limit`` of them are looked at."""
    import asyncio

    out: dict[str, ProblemOrder] = {}
    if engine is not None:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT order_id, status, store_id, updated_at, snapshot FROM orders WHERE status = 'on_hold' "
                "ORDER BY updated_at LIMIT :limit"), {"limit": limit})).all()
        for r in rows:
            holds = [e for e in (r.snapshot or {}).get("timeline", []) if e.get("kind") == "on_hold"]
            last = holds[-1] if holds else {}
            out[r.order_id] = ProblemOrder(r.order_id, "on_hold", r.updated_at,
                                           str(last.get("data", {}).get("step") or "?"),
                                           str(last.get("data", {}).get("error") or last.get("message") or ""),
                                           r.store_id)

    async for wf in client.list_workflows(f'{_ORDER_TYPES} AND ExecutionStatus = "Running" AND OrderStatus = "on_hold"',
                                          limit=limit):
        order_id = _order_id_of(wf.id)
        if order_id and order_id not in out:
            out[order_id] = ProblemOrder(order_id, "on_hold", wf.start_time, f"{wf.workflow_type} ({wf.id})",
                                         "parked: a step was refused, waiting for `orkestr order retry`")

    closed = ('ExecutionStatus = "Failed" OR ExecutionStatus = "Terminated" OR ExecutionStatus = "TimedOut"')
    async for wf in client.list_workflows(f"{_ORDER_TYPES} AND ({closed})", limit=limit):
        order_id = _order_id_of(wf.id)
        if order_id and order_id not in out:
            status = wf.status.name.lower() if wf.status is not None else "failed"
            out[order_id] = ProblemOrder(order_id, status, wf.close_time, wf.workflow_type,
                                         f"{wf.id} {status} (run {wf.run_id})")

    running = [wf async for wf in client.list_workflows(f'{_ORDER_TYPES} AND ExecutionStatus = "Running"', limit=limit)]
    gate = asyncio.Semaphore(8)

    async def failing(wf: Any) -> ProblemOrder | None:
        async with gate:
            try:
                desc = (await client.get_workflow_handle(wf.id, run_id=wf.run_id).describe()).raw_description
            except RPCError:
                return None
        order_id = _order_id_of(wf.id)
        if order_id is None:
            return None
        task = desc.pending_workflow_task
        if desc.HasField("pending_workflow_task") and task.attempt > 1:
            return ProblemOrder(order_id, "failing", wf.start_time, f"workflow task ({wf.id})",
                                f"attempt {task.attempt}: the workflow code fails (see the worker's log; "
                                "`orkestr replay` after a fix)")
        for act in desc.pending_activities:
            if act.attempt >= failing_after:
                last = act.last_failure.message if act.HasField("last_failure") else ""
                return ProblemOrder(order_id, "failing", wf.start_time, f"{act.activity_type.name} ({wf.id})",
                                    f"attempt {act.attempt}" + (f", last error: {last}" if last else ""))
        return None

    for problem in await asyncio.gather(*(failing(wf) for wf in running)):
        if problem is not None and problem.order_id not in out:
            out[problem.order_id] = problem
    return list(out.values())


async def _waiting_at(client: Client, order_id: str, status: str) -> tuple[str, str]:
    ids = [order_workflow_id(order_id)]
    try:
        main = await history_json(client, ids[0])
        ids += child_workflow_ids(main)
    except OrderNotFound:
        return "no workflow", ""
    for wf_id in ids:
        try:
            desc = await client.get_workflow_handle(wf_id).describe()
        except RPCError:
            continue
        if desc.status != WorkflowExecutionStatus.RUNNING:
            continue
        pending = list(desc.raw_description.pending_activities)
        if pending:
            p = pending[0]
            last = p.last_failure.message if p.HasField("last_failure") else ""
            return (f"{p.activity_type.name} ({wf_id})",
                    f"attempt {p.attempt}" + (f", last error: {last}" if last else ""))
    return {"awaiting_payment": "the customer's payment", "assembling": "the store's assembly",
            "shipped": "the courier's delivery", "on_hold": "an operator (orkestr order retry)",
            "paid": "ERP export / fulfilment start", "pending": "placement"}.get(status, status), ""


def _order_id_of(workflow_id: str) -> str | None:
    if workflow_id.startswith("order-"):
        return workflow_id[len("order-"):]
    if workflow_id.startswith("fulfillment-"):
        return workflow_id[len("fulfillment-"):].rsplit("-", 1)[0]
    return None


def parse_age(text_: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``3d`` -> timedelta."""
    found = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text_ or "")
    if not found:
        raise ValueError(f"{text_!r}: expected a number and a unit, e.g. 90s, 15m, 2h, 3d")
    n, unit = int(found.group(1)), found.group(2)
    return timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])
