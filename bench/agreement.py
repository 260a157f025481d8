"""Does the fast model agree with the real system? ``python -m bench agreement``.

The same small world runs twice:

* **through the full stack** — embedded PostgreSQL, the Temporal dev server, the worker, the API
  and the sandbox (the small demo chain: WH-ONLINE and 7 stores in Moscow, Saint Petersburg and
  Almaty) over loopback HTTP. This bench plays everyone outside Orkestr, at once instead of at
  human speed (the fast-forward): the customer places each order through ``POST /v1/orders`` and
  pays at the bank's drive endpoint; the store staff look at the POS task and press "assembled"
  when the shelf (the truth table below) has every line, else "shortage" with the first line
  they cannot find; the operator answers every substitution task with ``remove`` (the default
  answer).
* **through the fast model** — ``sim.engine.Simulation`` on the same chain, with the same ERP
  records, the same shelves, the same orders (at the same time of day), no offline sales, no
  random errors, the same operator answer.

The shelves differ from the ERP's records: a third of the store pairs hold one unit less than
the record says (seeded), the warehouse is exact; 40 % of the orders ask for SKUs the warehouse
does not carry, so a shortage there may not move and reaches the operator; and one such SKU is on
no shelf at all, so its orders move from store to store and end cancelled. Orders go one at a time (each settles before
the next), so reservations cannot race. Compared per order: refused at placement, where it was
first sourced, not assemblable there, moved, cancelled, units removed. **Tolerance**: every share
within 5 percentage points and at least 90 % of the orders with the same outcome in both.
What this does not cover: timers (SLA ladder, payment window, operator deadline), which need
simulated time, and offline sales, which the stack has no store floor for.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

ORDERS = 40
TOLERANCE_PP = 5.0
MIN_SAME = 0.90
PHANTOM_SHARE = 1 / 3


@dataclass
class OrderResult:
    rejected: bool = False
    first_locs: tuple[str, ...] = ()
    first_failed: bool = False
    moved: bool = False
    cancelled: bool = False
    removed: bool = False

    def key(self) -> tuple[Any, ...]:
        return (self.rejected, self.first_locs, self.first_failed, self.moved, self.cancelled, self.removed)


def _world(seed: int) -> tuple[Any, dict[tuple[str, str], int], list[dict[str, Any]]]:
    """The small demo chain, the shelves (truth) and the orders (lines, city)."""
    from sim.world import chain_from_demo

    chain = chain_from_demo(small=True)
    rng = random.Random(f"agreement:{seed}")
    stores = {l.id for l in chain.locations if l.kind == "store"}
    truth = {}
    for (sku, loc), q in sorted(chain.target.items()):
        truth[(sku, loc)] = q - 1 if loc in stores and q > 0 and rng.random() < PHANTOM_SHARE else q
    cities = sorted({(l.region, l.city) for l in chain.locations if l.kind == "store"})
    stocked = sorted({sku for (sku, _), q in chain.target.items() if q > 0})
    at_wh = {sku for (sku, loc), q in chain.target.items() if q > 0 and loc not in stores}
    store_only = [s for s in stocked if s not in at_wh]  # a shortage there reaches the operator
    orders = []
    for _ in range(ORDERS):
        region, city = rng.choice(cities)
        pool = store_only if store_only and rng.random() < 0.4 else stocked
        lines = rng.sample(pool, min(len(pool), rng.choice((1, 1, 2))))
        orders.append({"region": region, "city": city, "lines": [(s, 1) for s in lines]})
    if store_only:  # one SKU no shelf has although every record says so: moved from store to store, then removed
        gone = store_only[0]
        for key in truth:
            if key[0] == gone:
                truth[key] = 0
        for n in (5, 25):
            orders[n] = {**orders[n], "lines": [(gone, 1)]}
    return chain, truth, orders


async def _through_the_stack(chain: Any, truth: dict[tuple[str, str], int], orders: list[dict[str, Any]],
                             url: str) -> tuple[list[OrderResult], list[datetime], list[float]]:
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    from adapters.db import make_engine
    from tests.conftest import SEARCH_ATTRIBUTES, free_port, running_stack, venv_binary

    extra: list[str] = []
    for name in SEARCH_ATTRIBUTES:
        extra += ["--search-attribute", f"{name}=Keyword"]
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=venv_binary("temporal"),
                                                data_converter=pydantic_data_converter, ui=False, port=free_port(),
                                                dev_server_extra_args=extra)
    engine = make_engine(url, pool_size=10)
    shelf = dict(truth)
    results: list[OrderResult] = []
    placed: list[datetime] = []
    latency: list[float] = []
    try:
        async with running_stack(env, engine, url, log_level="WARNING") as stack:
            for n, spec in enumerate(orders):
                t0 = time.perf_counter()
                placed.append(datetime.now(timezone.utc))
                results.append(await _one_order(stack, n, spec, shelf))
                latency.append((time.perf_counter() - t0) * 1000)
    finally:
        await engine.dispose()
        await env.shutdown()
    return results, placed, latency


async def _one_order(stack: Any, n: int, spec: dict[str, Any], shelf: dict[tuple[str, str], int]) -> OrderResult:
    body = {"channel": "web", "customer": {"phone": f"+79169{n:06d}", "name": "Агата Сим"},
            "lines": [{"sku": s, "qty": q} for s, q in spec["lines"]],
            "delivery": {"method": "courier", "address": {"region": spec["region"], "city": spec["city"],
                                                          "line": "ул. Тестовая, 1", "postcode": "101000"}},
            "payment": {"method": "card"}}
    r = await stack.api.post("/v1/orders", json=body, headers={"Idempotency-Key": f"agree-{uuid.uuid4()}"})
    if r.status_code == 409:
        return OrderResult(rejected=True)
    r.raise_for_status()
    order_id = r.json()["order_id"]
    await stack.wait_order(order_id, "awaiting_payment")
    md = (await stack.api.get(f"/v1/orders/{order_id}")).json()["payment"]["md_order"]
    (await stack.sandbox.post(f"/sandbox/acquiring/orders/{md}/pay", json={"outcome": "approve"})).raise_for_status()
    out = OrderResult()
    handled: dict[str, str] = {}  # POS task id → what the store pressed
    lines_at_short: dict[str, list[tuple[str, int]]] = {}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        order = (await stack.api.get(f"/v1/orders/{order_id}")).json()
        if not out.first_locs and order["shipments"]:
            out.first_locs = tuple(sorted(s["location_id"] for s in order["shipments"]))
        if order["status"] in ("cancelled", "rejected"):
            break
        # operators: every substitution task is answered "remove" (the default answer)
        tasks = (await stack.api.get("/v1/tasks", params={"order_id": order_id, "status": "open"})).json()["items"]
        for t in tasks:
            if t["kind"] == "substitution":
                await stack.api.post(f"/v1/tasks/{t['id']}/complete", json={"action": "remove", "operator": "bench"})
        settled = bool(order["shipments"])
        for sh in order["shipments"]:
            if sh["status"] == "cancelled":
                continue
            loc = sh["location_id"]
            live = [t for t in await stack.pos_tasks(loc)
                    if t["order_id"] == order_id and t["kind"] == "assemble" and t["status"] != "cancelled"]
            if not live:
                settled = False
                continue
            task = live[-1]
            tid = task["task_id"]
            out.moved = out.moved or ":assemble:" in tid  # attempt 2+: the shipment moved here
            lines = [(l["sku"], l["qty"]) for l in sh["lines"]]
            pressed = handled.get(tid)
            if pressed is None:
                short = next(((s, q - max(shelf.get((s, loc), 0), 0)) for s, q in lines
                              if shelf.get((s, loc), 0) < q), None)
                if short is None:
                    await _press(stack, loc, tid, "assembled", lines, shelf)
                    handled[tid] = "assembled"
                else:
                    out.first_failed = out.first_failed or tid.endswith(":assemble")
                    r = await stack.sandbox.post(f"/sandbox/pos/{loc}/tasks/{tid}/shortage",
                                                 json={"sku": short[0], "missing_qty": short[1]})
                    r.raise_for_status()
                    handled[tid], lines_at_short[tid] = "shortage", lines
                settled = False
            elif pressed == "shortage":
                # the operator's answer revised the shipment: the store assembles what is left
                if lines != lines_at_short[tid] and all(shelf.get((s, loc), 0) >= q for s, q in lines):
                    await _press(stack, loc, tid, "assembled", lines, shelf)
                    handled[tid] = "assembled"
                settled = False
        if settled:
            break
        await asyncio.sleep(0.15)
    else:
        raise AssertionError(f"order {order_id} did not settle in 90 s")
    order = (await stack.api.get(f"/v1/orders/{order_id}")).json()
    out.removed = _removed(order, spec)
    out.cancelled = out.cancelled or order["status"] == "cancelled"
    return out


def _removed(order: dict[str, Any], spec: dict[str, Any]) -> bool:
    have = {l["sku"]: l["qty"] for l in order.get("lines", [])}
    return any(have.get(s, 0) < q for s, q in spec["lines"])


async def _press(stack: Any, loc: str, task_id: str, what: str, lines: list[tuple[str, int]],
                 shelf: dict[tuple[str, str], int]) -> None:
    r = await stack.sandbox.post(f"/sandbox/pos/{loc}/tasks/{task_id}/{what}")
    if r.status_code == 409:  # the task was cancelled meanwhile (the order went on without it)
        return
    r.raise_for_status()
    for s, q in lines:
        shelf[(s, loc)] = shelf.get((s, loc), 0) - q


def _through_the_model(chain: Any, truth: dict[tuple[str, str], int], orders: list[dict[str, Any]],
                       placed: list[datetime]) -> list[OrderResult]:
    from sim.engine import START, OrderIntent, Simulation
    from sim.world import Behaviour, Policy

    quiet = Behaviour(offline_units_per_store_day=(0.0, 0.0), record_error_share=(0.0, 0.0), misplaced_share=(0.0, 0.0),
                      shrink_units_per_store_day=(0.0, 0.0), misscan_share=(0.0, 0.0), receiving_error_share=(0.0, 0.0),
                      spot_count_after_shortage=0.0, replenish_every_days=10_000, store_pick_mean_min=(5.0, 5.0),
                      warehouse_pick_mean_min=5.0, substitute_accepted=0.0, remove_rather_than_cancel=1.0,
                      unpaid_share=0.0, pickup_share=0.0)
    policy = Policy("agreement", "as the stack runs: re-sourcing on, the locations' safety stock",
                    auto_resource=True, configured_safety=True)
    intents = []
    for n, (spec, at) in enumerate(zip(orders, placed)):
        msk = at.astimezone(START.tzinfo)
        minute = n * 1440 + msk.hour * 60 + msk.minute + msk.second / 60  # one order a day, at the stack's clock time
        intents.append(OrderIntent(at=minute, city=-1, pickup_store=None, lines=tuple(spec["lines"]), u=0.99,
                                   order_id=f"AGREE{n:03d}", place=(spec["region"], spec["city"])))
    sim = Simulation(chain, quiet, policy, seed=1, days=len(orders) + 1, warmup_days=0, intents=intents)
    for (sku, loc), q in truth.items():
        p = sim.pid.get((sku, sim.loc_index[loc]))
        if p is not None:
            sim.shelf[p], sim.lost[p] = q, 0
    sim.run()
    by_id = {o.intent.order_id: o for o in sim.orders}
    out = []
    for n in range(len(orders)):
        o = by_id.get(f"AGREE{n:03d}")
        if o is None:
            out.append(OrderResult(rejected=True))
            continue
        out.append(OrderResult(first_locs=tuple(sorted(o.first_locs)), first_failed=o.first_failed, moved=o.moved,
                               cancelled=o.cancelled or all(s.state == "cancelled" for s in o.shipments),
                               removed=o.removed > 0))
    return out


def _shares(results: list[OrderResult]) -> dict[str, float]:
    n = len(results) or 1
    return {k: 100.0 * sum(getattr(r, k) for r in results) / n
            for k in ("rejected", "first_failed", "moved", "cancelled", "removed")}


def agreement(seed: int = 16) -> Any:
    """Run both, compare, print the comparison; the Result's note says PASS or FAIL."""
    import sys

    from bench.__main__ import Result, _demo_database, _percentiles

    chain, truth, orders = _world(seed)
    with _demo_database() as url:
        stack_results, placed, latency = asyncio.run(_through_the_stack(chain, truth, orders, url))
    model_results = _through_the_model(chain, truth, orders, placed)
    a, b = _shares(stack_results), _shares(model_results)
    same = sum(x.key() == y.key() for x, y in zip(stack_results, model_results)) / len(orders)
    worst = max(abs(a[k] - b[k]) for k in a)
    ok = worst <= TOLERANCE_PP and same >= MIN_SAME
    lines = [f"agreement: {len(orders)} orders, stack vs fast model (tolerance ±{TOLERANCE_PP:.0f} pp, "
             f"≥ {MIN_SAME:.0%} same outcome)"]
    for k in a:
        lines.append(f"  {k:<13} stack {a[k]:5.1f} %   model {b[k]:5.1f} %   diff {b[k] - a[k]:+5.1f} pp")
    lines.append(f"  same outcome per order: {same:.0%}")
    for n, (x, y) in enumerate(zip(stack_results, model_results)):
        if x.key() != y.key():
            lines.append(f"  order {n}: stack {x.key()} model {y.key()}")
    sys.stdout.write("\n".join(lines) + "\n")
    r = _percentiles("agreement", latency, "")
    return Result(r.name, r.runs, r.p50_ms, r.p99_ms, r.max_ms,
                  note=f"{'PASS' if ok else 'FAIL'}: worst share diff {worst:.1f} pp, same outcome {same:.0%} "
                       f"(times: one order placed → settled through the stack)")


if __name__ == "__main__":  # pragma: no cover
    print(agreement())
