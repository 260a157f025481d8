"""``python -m bench e2e``: an order end to end against the bare workflow with its step mix, in one run.

What it does, in order (every wait bounded in count and time):

1. starts its own stack as ``make run`` does (``bench.stack``: a free port base, a temporary home,
   the sandbox in auto mode at ``--delay`` seconds, everything removed afterwards);
2. warms up: ``--warmup`` orders one after the other, each to ``completed``;
3. idles ``--idle-s`` seconds to read what every part burns with no order (``idle_cpu_per_s``);
4. **full**: ``--orders`` orders through the API (``POST /v1/orders``, a one-line courier order paid by
   card, each with an Idempotency-Key, as a storefront sends it), at most ``--concurrency`` in flight:
   an order is in flight from its request until its status is ``completed``;
5. **bare**: the same number of ``bench.bare.BareOrderWorkflow`` runs at the same concurrency on the
   same Temporal server, started and answered through the Temporal client (start, then the
   ``placement`` Update, as the API does), with the step mix of a real order of step 4: the most common
   (activities, local activities, children, Updates) among them, in that order's sequence;
6. **open loop**: orders arriving at ``--rate`` per second for ``--open-loop-s`` seconds, whatever the
   answers (the placement p99 target of issue 17 is ≤ 300 ms at 1 order/s).

Figures (``RESULT_KEYS``): throughput (completed per second, from the first request to the last
completion), placement p50/p99 (the client's wall time of the request, or of start + Update),
completion p50/p99 (from the request to the moment the order's status became ``completed``: the
server time of the search-attribute upsert that set it; the bare workflow's close time), CPU seconds
per completed order of each part (``bench.stack.BenchStack.cpu_seconds``), their total with and without
the sandbox, and the history of an order (its workflow and its children): events, workflow tasks,
signals, search-attribute upserts, activities, local activities, children, Updates. Ratios are full /
bare. Completion is noticed by polling Temporal's visibility (``OrderStatus = 'completed'``; for the bare
workflow ``ExecutionStatus = 'Completed'``) every ``POLL_S``, the same for both.

Everything goes to a JSON file (``bench/results/e2e-<UTC time>.json``, git-ignored; ``--out`` elsewhere);
``python -m bench compare A.json B.json`` prints the differences of two runs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

from bench.stack import ROOT, BenchError, BenchStack, spawn_bare_worker

RESULTS = ROOT / "bench" / "results"
#: how often completions are looked up in Temporal's visibility (both kinds of workflow alike)
POLL_S = 0.25
#: the parts an order costs; the bare workflow needs only Temporal and its own worker
FULL_PARTS = ("temporal", "worker", "api", "sandbox", "postgres")
BARE_PARTS = ("temporal", "bare_worker")
HISTORY_KEYS = ("events", "workflow_tasks", "signals", "search_attribute_upserts", "activities",
                "local_activities", "children", "updates", "timers")
#: the figures every run has (the smoke test checks each is there)
RESULT_KEYS = {
    "full": ("throughput_per_s", "placement_ms", "completion_ms", "cpu_s_per_order", "history_per_order"),
    "bare": ("throughput_per_s", "placement_ms", "completion_ms", "cpu_s_per_order", "history_per_order"),
    "ratios": ("throughput", "cpu_per_order", "cpu_per_order_without_sandbox", "placement_p50", "placement_p99",
               "completion_p50", "completion_p99"),
    "open_loop": ("rate_per_s", "placed", "placement_ms", "completion_ms", "cpu_s_per_order", "target_p99_ms",
                  "met"),
}
PLACEMENT_TARGET_MS = 300.0


@dataclass
class Config:
    orders: int = 100
    concurrency: int = 50
    delay_s: float = 0.05
    rate: float = 1.0
    open_loop_s: float = 30.0
    warmup: int = 2
    idle_s: float = 5.0
    products: int = 2000
    #: a bound on each phase (orders not completed by then count as timed out)
    phase_timeout_s: float = 600.0
    startup_timeout_s: float = 240.0
    out: Path | None = None
    seed: int = 20261129
    #: py-spy's samples of the worker, API and sandbox during the full phase go here (py-spy on PATH
    #: or next to this Python; not a dependency of the project)
    profile: Path | None = None


@dataclass
class Sample:
    workflow_id: str = ""
    started_at: float = 0.0  # wall clock (time.time) when the request went out
    placement_s: float | None = None
    noticed_at: float | None = None  # when the poller saw it complete
    completed_at: float | None = None  # when it completed, from its history (else noticed_at)
    error: str | None = None


# --- percentiles and CPU ---------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (q in 0..1) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency_ms(values_s: list[float]) -> dict[str, float | None]:
    ms = [v * 1000 for v in values_s]
    return {"p50": _r(percentile(ms, 0.5)), "p99": _r(percentile(ms, 0.99)), "max": _r(max(ms) if ms else None),
            "n": len(ms)}


def _r(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)


def _own_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


class CpuWindow:
    """The CPU each part of the stack (and this process, ``bench_client``) uses between ``start`` and ``stop``."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self.before: dict[str, float] = {}
        self.delta: dict[str, float] = {}
        self.elapsed_s = 0.0
        self._t0 = 0.0

    def start(self) -> "CpuWindow":
        self.before = {**self.stack.cpu_seconds(), "bench_client": _own_cpu()}
        self._t0 = time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        after = {**self.stack.cpu_seconds(), "bench_client": _own_cpu()}
        self.elapsed_s = time.monotonic() - self._t0
        self.delta = {k: max(0.0, v - self.before.get(k, 0.0)) for k, v in after.items()}
        return self.delta


def per_order(cpu: dict[str, float], n: int, parts: tuple[str, ...]) -> dict[str, float | None]:
    if n <= 0:
        return {**{k: None for k in cpu}, "total": None, "without_sandbox": None}
    out: dict[str, float | None] = {k: round(v / n, 4) for k, v in sorted(cpu.items())}
    total = sum(cpu.get(p, 0.0) for p in parts) / n
    out["total"] = round(total, 4)
    out["without_sandbox"] = round(total - cpu.get("sandbox", 0.0) / n if "sandbox" in parts else total, 4)
    return out


# --- completions, noticed through Temporal's visibility ------------------------------------------------
class Completions:
    """One poller for every workflow being waited for: ``wait(id)`` returns when visibility lists it."""

    def __init__(self, client: Any, query: str) -> None:
        self.client = client
        self.query = query
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Completions":
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def wait(self, workflow_id: str, timeout_s: float) -> float:
        fut = self.waiting.setdefault(workflow_id, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), max(0.01, timeout_s))
        finally:
            if fut.done():
                self.waiting.pop(workflow_id, None)

    async def _poll(self) -> None:
        """Ask only for the ids still awaited (``WorkflowId IN (...)``, 50 at a time): a poll costs the same
        whether 10 or 10,000 workflows have completed before."""
        while True:
            await asyncio.sleep(POLL_S)
            ids = sorted(wid for wid, f in self.waiting.items() if not f.done())
            for i in range(0, len(ids), 50):
                chunk = ", ".join(f"'{wid}'" for wid in ids[i:i + 50])
                try:
                    async for wf in self.client.list_workflows(f"{self.query} AND WorkflowId IN ({chunk})",
                                                               page_size=100):
                        fut = self.waiting.get(wf.id)
                        if fut is not None and not fut.done():
                            fut.set_result(time.time())
                except Exception:  # noqa: BLE001 - a slow or refused poll: the next one tries again
                    self.errors += 1


# --- histories and the step mix ------------------------------------------------------------------------
async def fetch_tree(client: Any, workflow_id: str, limit: int = 20) -> dict[str, list[Any]]:
    """The histories of a workflow and of its children (recursively, at most ``limit`` workflows)."""
    from temporalio.api.enums.v1 import EventType

    tree: dict[str, list[Any]] = {}
    todo = [workflow_id]
    while todo and len(tree) < limit:
        wid = todo.pop(0)
        history = await client.get_workflow_handle(wid).fetch_history()
        tree[wid] = list(history.events)
        for e in history.events:
            if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                todo.append(e.start_child_workflow_execution_initiated_event_attributes.workflow_id)
    return tree


#: the history figures counted by event type (local activities: markers of the SDK's kind, below)
COUNTED = {
    "EVENT_TYPE_WORKFLOW_TASK_COMPLETED": "workflow_tasks",
    "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED": "signals",
    "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES": "search_attribute_upserts",
    "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED": "activities",
    "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED": "children",
    "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED": "updates",
    "EVENT_TYPE_TIMER_STARTED": "timers",
}


def history_counts(tree: dict[str, list[Any]]) -> dict[str, int]:
    """The history figures of one order: the sum over its workflow and its children."""
    from temporalio.api.enums.v1 import EventType

    counted = {EventType.Value(name): key for name, key in COUNTED.items()}
    c: Counter[str] = Counter()
    for events in tree.values():
        for e in events:
            c["events"] += 1
            if e.event_type in counted:
                c[counted[e.event_type]] += 1
            elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and _is_local_activity(e):
                c["local_activities"] += 1
    return {k: c.get(k, 0) for k in HISTORY_KEYS}


def _is_local_activity(event: Any) -> bool:
    return event.marker_recorded_event_attributes.marker_name == "core_local_activity"


def plan_from_history(tree: dict[str, list[Any]], workflow_id: str) -> dict[str, Any]:
    """The bare plan of a recorded workflow (``bench.bare``): its activities, local activities, children
    and the moment its first Update was answered, in the order its history has them."""
    from temporalio.api.enums.v1 import EventType as E

    steps: list[str] = []
    children: list[dict[str, Any]] = []
    answered = False
    for e in tree.get(workflow_id, []):
        t = e.event_type
        if t == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            steps.append("activity")
        elif t == E.EVENT_TYPE_MARKER_RECORDED and _is_local_activity(e):
            steps.append("local")
        elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED and not answered:
            steps.append("answer")
            answered = True
        elif t == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            steps.append("child")
            children.append(plan_from_history(
                tree, e.start_child_workflow_execution_initiated_event_attributes.workflow_id))
    return {"steps": steps, "children": children}


def plan_counts(plan: dict[str, Any]) -> dict[str, int]:
    c = Counter(s for s in plan["steps"] if s != "answer")
    out = {"activities": c["activity"], "local_activities": c["local"], "children": c["child"],
           "updates": 1 if "answer" in plan["steps"] else 0}
    for child in plan["children"]:
        for k, v in plan_counts(child).items():
            out[k] += v
    return out


def status_completed_at(tree: dict[str, list[Any]], workflow_id: str, status: str = "completed") -> float | None:
    """When the order's status became ``status``: the time of the upsert that set ``OrderStatus`` to it."""
    from temporalio.api.enums.v1 import EventType as E
    from temporalio.converter import PayloadConverter

    for e in tree.get(workflow_id, []):
        if e.event_type == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            if "OrderStatus" in fields:
                try:
                    value = PayloadConverter.default.from_payloads([fields["OrderStatus"]])[0]
                except Exception:  # noqa: BLE001 - an attribute we cannot read is not the one we look for
                    continue
                if value == status or value == [status]:
                    return e.event_time.ToDatetime(tzinfo=timezone.utc).timestamp()
    return None


def closed_at(tree: dict[str, list[Any]], workflow_id: str) -> float | None:
    from temporalio.api.enums.v1 import EventType as E

    for e in reversed(tree.get(workflow_id, [])):
        if e.event_type == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            return e.event_time.ToDatetime(tzinfo=timezone.utc).timestamp()
    return None


async def read_histories(client: Any, samples: list[Sample], completed_at: Callable[[dict[str, list[Any]], str], float | None],
                         parallel: int = 8) -> dict[str, dict[str, list[Any]]]:
    """Every completed sample's history tree; sets its ``completed_at`` from it."""
    sem = asyncio.Semaphore(parallel)
    trees: dict[str, dict[str, list[Any]]] = {}

    async def one(s: Sample) -> None:
        async with sem:
            try:
                tree = await asyncio.wait_for(fetch_tree(client, s.workflow_id), 60)
            except Exception as err:  # noqa: BLE001 - the figure is then missing for this one, said below
                s.error = s.error or f"history: {type(err).__name__}: {err}"
                return
        trees[s.workflow_id] = tree
        s.completed_at = completed_at(tree, s.workflow_id) or s.noticed_at

    await asyncio.gather(*(one(s) for s in samples if s.noticed_at is not None))
    return trees


def history_summary(trees: dict[str, dict[str, list[Any]]]) -> dict[str, Any]:
    counts = [history_counts(t) for t in trees.values()]
    if not counts:
        return {k: None for k in HISTORY_KEYS} | {"orders": 0}
    out: dict[str, Any] = {k: round(statistics.mean(c[k] for c in counts), 2) for k in HISTORY_KEYS}
    out["min_events"] = min(c["events"] for c in counts)
    out["max_events"] = max(c["events"] for c in counts)
    out["workflows_per_order"] = round(statistics.mean(len(t) for t in trees.values()), 2)
    out["orders"] = len(counts)
    return out


def typical_plan(trees: dict[str, dict[str, list[Any]]]) -> tuple[str, dict[str, Any]]:
    """The plan of the order with the most common (activities, local activities, children, Updates)."""
    if not trees:
        raise BenchError("no order completed: there is no history to take the bare workflow's step mix from")
    plans = {wid: plan_from_history(tree, wid) for wid, tree in trees.items()}
    mix = Counter(tuple(plan_counts(p).values()) for p in plans.values())
    common = mix.most_common(1)[0][0]
    wid = next(w for w, p in sorted(plans.items()) if tuple(plan_counts(p).values()) == common)
    return wid, plans[wid]


# --- the orders --------------------------------------------------------------------------------------------
_phone_counter = itertools.count(random.Random().randrange(1_000_000, 8_000_000))


def order_body(sku: str) -> dict[str, Any]:
    """A storefront's one-line courier order to Moscow, paid by card (the happy path)."""
    return {
        "channel": "web",
        "customer": {"phone": f"+7926{next(_phone_counter):07d}", "name": "Анна Петрова", "email": "anna@example.ru"},
        "lines": [{"sku": sku, "qty": 1}],
        "delivery": {"method": "courier", "address": {"region": "RU-MOW", "city": "Москва",
                                                      "line": "ул. Тверская, д. 1, кв. 5", "postcode": "125009"}},
        "payment": {"method": "card"},
        "bonus_to_spend": 0,
    }


async def stocked_skus(http: Any, need: int, rng: random.Random, wait_s: float = 120.0) -> list[str]:
    """``need`` SKUs (repeats allowed) the online warehouse holds, at most half of a SKU's units each,
    spread over many SKUs (no hot row), read through the API (``/v1/products``, ``/v1/stock``). The stock
    arrives last in the initial ERP import: asked again every second for up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return await _stocked_skus(http, need, rng)
        except BenchError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


async def _stocked_skus(http: Any, need: int, rng: random.Random) -> list[str]:
    skus: list[str] = []
    for offset in range(0, 2000, 200):
        r = await http.get("/v1/products", params={"limit": 200, "offset": offset})
        r.raise_for_status()
        items = r.json()["items"]
        skus += [s["sku"] for p in items for s in p["skus"]]
        if len(items) < 200 or len(skus) >= 10 * need + 500:
            break
    capacity: dict[str, int] = {}
    for i in range(0, len(skus), 100):
        r = await http.get("/v1/stock", params={"sku": skus[i:i + 100], "location": "WH-ONLINE"})
        r.raise_for_status()
        for item in r.json()["items"]:
            if item["available"] >= 4:
                capacity[item["sku"]] = item["available"] // 2
    if sum(capacity.values()) < need:
        raise BenchError(f"the online warehouse holds too little stock for {need} orders "
                         f"({sum(capacity.values())} units usable over {len(capacity)} SKUs)")
    pool = sorted(capacity)
    rng.shuffle(pool)
    out: list[str] = []
    while len(out) < need:
        for sku in pool:
            if capacity[sku] > 0 and len(out) < need:
                out.append(sku)
                capacity[sku] -= 1
    return out


class Orders:
    """Places orders through the API and waits for each to reach ``completed``."""

    def __init__(self, http: Any, completions: Completions, skus: list[str], deadline: float) -> None:
        self.http = http
        self.completions = completions
        self.skus = iter(skus)
        self.deadline = deadline

    async def one(self) -> Sample:
        s = Sample(started_at=time.time())
        t0 = time.perf_counter()
        try:
            r = await self.http.post("/v1/orders", json=order_body(next(self.skus)),
                                     headers={"Idempotency-Key": f"bench-{uuid.uuid4().hex}"})
        except Exception as err:  # noqa: BLE001 - counted and shown, the run goes on
            s.error = f"POST /v1/orders: {type(err).__name__}: {err}"
            return s
        s.placement_s = time.perf_counter() - t0
        if r.status_code != 201:
            s.error = f"POST /v1/orders answered {r.status_code}: {r.text[:200]}"
            return s
        s.workflow_id = f"order-{r.json()['order_id']}"  # README: OrderWorkflow (order-{id})
        await self._completion(s)
        return s

    async def _completion(self, s: Sample) -> None:
        try:
            s.noticed_at = await self.completions.wait(s.workflow_id, self.deadline - time.monotonic())
        except asyncio.TimeoutError:
            s.error = "not completed within the phase's time bound"


class BareRuns:
    """Starts bare workflows and calls their ``placement`` Update through the Temporal client, as the API
    does for an order, then waits for each to complete."""

    def __init__(self, client: Any, completions: Completions, plan: dict[str, Any], task_queue: str,
                 deadline: float) -> None:
        self.client = client
        self.completions = completions
        self.plan = plan
        self.task_queue = task_queue
        self.deadline = deadline
        self.n = itertools.count(1)

    async def one(self) -> Sample:
        from bench.bare import WORKFLOW

        s = Sample(workflow_id=f"bench-bare-{uuid.uuid4().hex[:12]}", started_at=time.time())
        t0 = time.perf_counter()
        try:
            handle = await self.client.start_workflow(WORKFLOW, self.plan, id=s.workflow_id,
                                                      task_queue=self.task_queue)
            await handle.execute_update("placement", result_type=str)
        except Exception as err:  # noqa: BLE001 - counted and shown
            s.error = f"bare start/placement: {type(err).__name__}: {err}"
            return s
        s.placement_s = time.perf_counter() - t0
        try:
            s.noticed_at = await self.completions.wait(s.workflow_id, self.deadline - time.monotonic())
        except asyncio.TimeoutError:
            s.error = "not completed within the phase's time bound"
        return s


async def closed_loop(make: Callable[[], Awaitable[Sample]], n: int, concurrency: int) -> list[Sample]:
    """``n`` runs, at most ``concurrency`` at once (each holds its slot until it completes)."""
    sem = asyncio.Semaphore(concurrency)

    async def slot() -> Sample:
        async with sem:
            return await make()

    return list(await asyncio.gather(*(slot() for _ in range(n))))


async def open_loop(make: Callable[[], Awaitable[Sample]], rate: float, duration_s: float) -> list[Sample]:
    """``rate × duration`` runs arriving every ``1 / rate`` s, whatever the answers (open loop)."""
    count = max(1, int(round(rate * duration_s)))
    t0 = time.monotonic()
    tasks = []
    for i in range(count):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(make()))
    return list(await asyncio.gather(*tasks))


def phase_summary(samples: list[Sample], t0: float, cpu: CpuWindow, parts: tuple[str, ...],
                  trees: dict[str, dict[str, list[Any]]], polls_failed: int = 0) -> dict[str, Any]:
    done = [s for s in samples if s.completed_at is not None]
    errors = Counter(s.error[:200] for s in samples if s.error)
    last = max((s.completed_at for s in done), default=None)  # type: ignore[type-var]
    elapsed = (last - t0) if last is not None else None
    return {
        "requested": len(samples),
        "completed": len(done),
        "failed": len(samples) - len(done),
        "errors": [{"error": e, "count": c} for e, c in errors.most_common(5)],
        "elapsed_s": _r(elapsed, 2),
        "throughput_per_s": _r(len(done) / elapsed, 3) if elapsed else None,
        "placement_ms": latency_ms([s.placement_s for s in samples if s.placement_s is not None and not
                                    (s.error or "").startswith(("POST", "bare"))]),
        "completion_ms": latency_ms([s.completed_at - s.started_at for s in done]),  # type: ignore[operator]
        "cpu_s": {k: round(v, 3) for k, v in sorted(cpu.delta.items())},
        "cpu_window_s": round(cpu.elapsed_s, 2),
        "cpu_s_per_order": per_order(cpu.delta, len(done), parts),
        "history_per_order": history_summary(trees),
        "poll_errors": polls_failed,
    }


def ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    return None if a is None or not b else round(a / b, digits)


# --- the run -------------------------------------------------------------------------------------------------
def stack_env(cfg: Config) -> dict[str, str]:
    return {
        "ORKESTR_SANDBOX_AUTO": "true", "ORKESTR_SANDBOX_AUTO_DELAY_S": str(cfg.delay_s),
        "ORKESTR_SANDBOX_PRODUCTS": str(cfg.products), "ORKESTR_WORKER_SHUTDOWN_SECONDS": "2",
    }


async def run_phases(stack: BenchStack, cfg: Config, say: Callable[[str], None]) -> dict[str, Any]:
    import httpx
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    rng = random.Random(cfg.seed)
    client = await asyncio.wait_for(Client.connect(stack.temporal_address, namespace=stack.namespace,
                                                   data_converter=pydantic_data_converter), 30)
    open_count = max(1, int(round(cfg.rate * cfg.open_loop_s)))
    limits = httpx.Limits(max_connections=cfg.concurrency + open_count + 10)
    result: dict[str, Any] = {"pids": stack.pids()}
    async with httpx.AsyncClient(base_url=stack.api, timeout=60, limits=limits) as http:
        skus = await stocked_skus(http, cfg.warmup + cfg.orders + open_count, rng)
        full_query = "OrderStatus = 'completed'"
        async with Completions(client, full_query) as done:
            # warm-up: imports, caches, connections; each order on its own
            orders = Orders(http, done, skus, time.monotonic() + min(cfg.phase_timeout_s, 60 + 30 * cfg.warmup))
            for i in range(cfg.warmup):
                s = await orders.one()
                if s.error:
                    raise BenchError(f"warm-up order {i + 1} failed: {s.error}; the end of the stack's log:\n"
                                     f"{stack.log_tail()}")
            say(f"warmed up with {cfg.warmup} order(s)")
            idle = CpuWindow(stack).start()
            await asyncio.sleep(cfg.idle_s)
            idle.stop()
            result["idle_cpu_per_s"] = {k: round(v / idle.elapsed_s, 4) for k, v in sorted(idle.delta.items())}

            say(f"full: {cfg.orders} orders, {cfg.concurrency} in flight")
            result["load_average"] = {"start": os.getloadavg()}
            orders.deadline = time.monotonic() + cfg.phase_timeout_s
            spies = start_profiles(stack, cfg.profile) if cfg.profile else []
            cpu = CpuWindow(stack).start()
            t0 = time.time()
            try:
                samples = await closed_loop(orders.one, cfg.orders, cfg.concurrency)
            finally:
                cpu.stop()
                stop_profiles(spies)
            trees = await read_histories(client, samples, status_completed_at)
            result["full"] = phase_summary(samples, t0, cpu, FULL_PARTS, trees, done.errors)

        wid, plan = typical_plan(trees)
        result["mix"] = {"from": wid, **plan_counts(plan), "plan": plan}
        queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
        bare_proc = spawn_bare_worker(stack, queue)
        async with Completions(client, "WorkflowType = 'BareOrderWorkflow' AND ExecutionStatus = 'Completed'") as done:
            bare = BareRuns(client, done, plan, queue, time.monotonic() + 120)
            for i in range(max(1, cfg.warmup)):
                s = await bare.one()
                if s.error:
                    raise BenchError(f"warm-up bare workflow {i + 1} failed: {s.error}; bare worker "
                                     f"{'exited with ' + str(bare_proc.poll()) if bare_proc.poll() is not None else 'running'}")
            say(f"bare: {cfg.orders} runs of the mix {plan_counts(plan)}, {cfg.concurrency} in flight")
            bare.deadline = time.monotonic() + cfg.phase_timeout_s
            cpu = CpuWindow(stack).start()
            t0 = time.time()
            samples = await closed_loop(bare.one, cfg.orders, cfg.concurrency)
            cpu.stop()
            trees = await read_histories(client, samples, closed_at)
            result["bare"] = phase_summary(samples, t0, cpu, BARE_PARTS, trees, done.errors)
        stack.extra.pop("bare_worker", None)
        bare_proc.terminate()
        try:
            bare_proc.wait(15)
        except subprocess.TimeoutExpired:
            bare_proc.kill()

        say(f"open loop: {cfg.rate:g} order/s for {cfg.open_loop_s:g} s")
        async with Completions(client, full_query) as done:
            orders = Orders(http, done, skus[cfg.warmup + cfg.orders:], time.monotonic() + cfg.open_loop_s + 120)
            cpu = CpuWindow(stack).start()
            t0 = time.time()
            samples = await open_loop(orders.one, cfg.rate, cfg.open_loop_s)
            cpu.stop()
            trees = await read_histories(client, samples, status_completed_at)
            ol = phase_summary(samples, t0, cpu, FULL_PARTS, trees, done.errors)
        p99 = ol["placement_ms"]["p99"]
        result["open_loop"] = {
            "rate_per_s": cfg.rate, "duration_s": cfg.open_loop_s, "placed": sum(1 for s in samples if s.workflow_id),
            "completed": ol["completed"], "errors": ol["errors"], "placement_ms": ol["placement_ms"],
            "completion_ms": ol["completion_ms"], "cpu_s_per_order": ol["cpu_s_per_order"],
            "history_per_order": ol["history_per_order"], "target_p99_ms": PLACEMENT_TARGET_MS, "met": p99 is not None and p99 <= PLACEMENT_TARGET_MS,
        }
        result["load_average"]["end"] = os.getloadavg()
    full, bare_r = result["full"], result["bare"]
    result["ratios"] = {
        "throughput": ratio(full["throughput_per_s"], bare_r["throughput_per_s"]),
        "cpu_per_order": ratio(full["cpu_s_per_order"]["total"], bare_r["cpu_s_per_order"]["total"]),
        "cpu_per_order_without_sandbox": ratio(full["cpu_s_per_order"]["without_sandbox"],
                                               bare_r["cpu_s_per_order"]["total"]),
        "placement_p50": ratio(full["placement_ms"]["p50"], bare_r["placement_ms"]["p50"]),
        "placement_p99": ratio(full["placement_ms"]["p99"], bare_r["placement_ms"]["p99"]),
        "completion_p50": ratio(full["completion_ms"]["p50"], bare_r["completion_ms"]["p50"]),
        "completion_p99": ratio(full["completion_ms"]["p99"], bare_r["completion_ms"]["p99"]),
    }
    return result


PROFILED = ("worker", "api", "sandbox")


def start_profiles(stack: BenchStack, directory: Path) -> list[subprocess.Popen[bytes]]:
    """``py-spy record`` (collapsed stacks, 100 Hz, without pausing the target) of each Python part."""
    import shutil

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise BenchError("--profile needs py-spy (pip install py-spy into this venv; not a project dependency)")
    directory.mkdir(parents=True, exist_ok=True)
    pids = stack.pids()
    return [subprocess.Popen([spy, "record", "--pid", str(pids[part]), "--format", "raw", "--rate", "100",
                              "--nonblocking", "--output", str(directory / f"{part}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for part in PROFILED if part in pids]


def stop_profiles(spies: list[subprocess.Popen[bytes]]) -> None:
    import signal

    for p in spies:
        p.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    for p in spies:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def git_revision() -> dict[str, Any]:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
        return {"commit": head or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def run(cfg: Config, say: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)) -> dict[str, Any]:
    """The whole benchmark; returns the results (also written as JSON). Raises ``BenchError``."""
    started = datetime.now(timezone.utc)
    say(f"starting a stack (sandbox auto, {cfg.delay_s:g} s delay, {cfg.products} products)")
    t = time.monotonic()
    with BenchStack.start(stack_env(cfg), timeout_s=cfg.startup_timeout_s) as stack:
        say(f"stack up in {time.monotonic() - t:.0f} s on port base {stack.base}")
        body = asyncio.run(run_phases(stack, cfg, say))
    result = {
        "benchmark": "e2e", "schema": 1, "started_at": started.isoformat(timespec="seconds"),
        "git": git_revision(), "host": {"cpus": os.cpu_count()},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        **body,
    }
    path = cfg.out or RESULTS / f"e2e-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    result["path"] = str(path)
    return result


# --- the report ------------------------------------------------------------------------------------------------
def _f(x: Any, fmt: str = "{:.3g}") -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return fmt.format(x) if isinstance(x, (int, float)) else str(x)


def report(r: dict[str, Any]) -> str:
    full, bare, rat, ol = r["full"], r["bare"], r["ratios"], r["open_loop"]
    cfg, mix = r["config"], r["mix"]
    fc, bc = full["cpu_s_per_order"], bare["cpu_s_per_order"]
    rows: list[tuple[str, str, str, str]] = [
        ("throughput (completed/s)", _f(full["throughput_per_s"]), _f(bare["throughput_per_s"]), _f(rat["throughput"])),
        ("placement p50 / p99 ms", f"{_f(full['placement_ms']['p50'], '{:.0f}')} / {_f(full['placement_ms']['p99'], '{:.0f}')}",
         f"{_f(bare['placement_ms']['p50'], '{:.0f}')} / {_f(bare['placement_ms']['p99'], '{:.0f}')}",
         f"{_f(rat['placement_p50'])} / {_f(rat['placement_p99'])}"),
        ("completion p50 / p99 ms", f"{_f(full['completion_ms']['p50'], '{:.0f}')} / {_f(full['completion_ms']['p99'], '{:.0f}')}",
         f"{_f(bare['completion_ms']['p50'], '{:.0f}')} / {_f(bare['completion_ms']['p99'], '{:.0f}')}",
         f"{_f(rat['completion_p50'])} / {_f(rat['completion_p99'])}"),
        ("CPU s per order, all parts", _f(fc["total"]), _f(bc["total"]), _f(rat["cpu_per_order"])),
        ("  without the sandbox", _f(fc["without_sandbox"]), _f(bc["total"]), _f(rat["cpu_per_order_without_sandbox"])),
    ]
    for part in ("temporal", "worker", "bare_worker", "api", "sandbox", "postgres", "supervisor", "bench_client"):
        if part in fc or part in bc:
            counted = "" if part in FULL_PARTS + BARE_PARTS else " (not counted)"
            rows.append((f"  {part}{counted}", _f(fc.get(part) if part != "bare_worker" else None),
                         _f(bc.get(part) if part in BARE_PARTS or part == "bench_client" else None), ""))
    fh, bh = full["history_per_order"], bare["history_per_order"]
    for key in ("events", "workflow_tasks", "signals", "search_attribute_upserts", "activities", "local_activities",
                "children", "updates"):
        rows.append((f"history: {key.replace('_', ' ')}", _f(fh.get(key), "{:.1f}"), _f(bh.get(key), "{:.1f}"),
                     _f(ratio(fh.get(key), bh.get(key), 2))))
    w = max(len(a) for a, *_ in rows)
    lines = [
        f"e2e: {cfg['orders']} orders, {cfg['concurrency']} in flight, sandbox auto at {cfg['delay_s']:g} s; "
        f"bare workflow with the mix of {mix['from']}: {mix['activities']} activities, {mix['local_activities']} "
        f"local activities, {mix['children']} child(ren), {mix['updates']} Update(s)",
        f"{'':<{w}}  {'full order':>14}  {'bare':>14}  {'full/bare':>12}",
        *(f"{a:<{w}}  {b:>14}  {c:>14}  {d:>12}" for a, b, c, d in rows),
        f"completed: full {full['completed']}/{full['requested']}, bare {bare['completed']}/{bare['requested']}",
        f"placement at {ol['rate_per_s']:g} order/s for {ol['duration_s']:g} s ({ol['placed']} orders): p50 "
        f"{_f(ol['placement_ms']['p50'], '{:.0f}')} ms, p99 {_f(ol['placement_ms']['p99'], '{:.0f}')} ms "
        f"(target ≤ {ol['target_p99_ms']:.0f} ms: {'met' if ol['met'] else 'NOT met'}); completion p50 "
        f"{_f(ol['completion_ms']['p50'], '{:.0f}')} ms; CPU per order {_f(ol['cpu_s_per_order']['total'])} s",
        "idle CPU per second: " + ", ".join(f"{k} {v:.3f}" for k, v in r["idle_cpu_per_s"].items()),
        "load average (1, 5, 15 min): start " + " ".join(f"{x:.2f}" for x in r["load_average"]["start"])
        + ", end " + " ".join(f"{x:.2f}" for x in r["load_average"]["end"]),
    ]
    for name in ("full", "bare"):
        for e in r[name]["errors"]:
            lines.append(f"{name} error ×{e['count']}: {e['error']}")
    for e in ol["errors"]:
        lines.append(f"open loop error ×{e['count']}: {e['error']}")
    lines.append(f"results: {r['path']}")
    return "\n".join(lines)


def parse(argv: list[str]) -> Config:
    d = Config()
    p = argparse.ArgumentParser(prog="python -m bench e2e", description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=d.orders, help="orders (and bare runs) in the closed loop")
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="at most this many in flight")
    p.add_argument("--delay", type=float, default=d.delay_s, dest="delay_s",
                   help="the sandbox's auto mode delay between steps, seconds")
    p.add_argument("--rate", type=float, default=d.rate, help="open loop arrivals per second")
    p.add_argument("--open-loop-s", type=float, default=d.open_loop_s, help="open loop duration, seconds")
    p.add_argument("--warmup", type=int, default=d.warmup, help="warm-up orders, one at a time")
    p.add_argument("--idle-s", type=float, default=d.idle_s, help="idle window for the background CPU, seconds")
    p.add_argument("--products", type=int, default=d.products, help="the sandbox ERP's catalog size")
    p.add_argument("--phase-timeout-s", type=float, default=d.phase_timeout_s, help="bound of each phase, seconds")
    p.add_argument("--startup-timeout-s", type=float, default=d.startup_timeout_s)
    p.add_argument("--out", type=Path, default=None, help="the JSON file (default bench/results/e2e-<time>.json)")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="py-spy samples of the worker, API and sandbox during the full phase, one collapsed-stack "
                        "file each in DIR (needs py-spy; it perturbs the CPU figures a little)")
    a = p.parse_args(argv)
    if a.orders < 1 or a.concurrency < 1 or a.rate <= 0 or a.open_loop_s <= 0 or a.warmup < 1:
        p.error("--orders, --concurrency, --warmup must be ≥ 1; --rate and --open-loop-s > 0")
    return Config(**{k: v for k, v in vars(a).items()})


def main(argv: list[str]) -> int:
    cfg = parse(argv)
    try:
        result = run(cfg)
    except BenchError as err:
        print(f"e2e benchmark failed: {err}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("e2e benchmark interrupted: the stack was stopped and removed", file=sys.stderr, flush=True)
        return 130
    print(report(result), flush=True)
    return 0
