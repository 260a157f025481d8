"""The pure parts of `python -m bench e2e`: the step mix and the history figures read from a recorded
order (the golden happy-path histories), percentiles, CPU per order, `python -m bench compare`, and
`make bench e2e` passing the name through. The harness itself runs in tests/e2e/test_bench_e2e.py."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

from temporalio.client import WorkflowHistory

from bench.compare import compare, numbers
from bench.e2e import history_counts, per_order, percentile, plan_counts, plan_from_history, status_completed_at

ROOT = Path(__file__).resolve().parents[2]
HISTORIES = ROOT / "tests" / "histories"


def golden_tree(scenario: str) -> tuple[str, dict[str, list]]:
    """The order's workflow and its children from the golden files of ``scenario``."""
    tree = {}
    root = None
    for path in sorted(HISTORIES.glob(f"{scenario}__*.json")):
        if "__run" in path.name:
            continue
        wid = path.stem.split("__", 1)[1]
        tree[wid] = list(WorkflowHistory.from_json(wid, path.read_text()).events)
        if wid.startswith("order-"):
            root = wid
    assert root is not None
    return root, tree


def raw_types(scenario: str) -> Counter[str]:
    """Event types counted straight from the JSON files (the other way round from the code under test)."""
    c: Counter[str] = Counter()
    for path in HISTORIES.glob(f"{scenario}__*.json"):
        if "__run" in path.name:
            continue
        for e in json.loads(path.read_text())["events"]:
            c[e["eventType"]] += 1
            if e["eventType"] == "EVENT_TYPE_MARKER_RECORDED" and \
                    e["markerRecordedEventAttributes"]["markerName"] == "core_local_activity":
                c["local"] += 1
    return c


def test_the_bare_plan_has_the_recorded_orders_step_mix_in_its_sequence() -> None:
    root, tree = golden_tree("order_happy")
    raw = raw_types("order_happy")
    plan = plan_from_history(tree, root)
    assert plan_counts(plan) == {
        "activities": raw["EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"], "local_activities": raw["local"],
        "children": raw["EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED"], "updates": 1}
    assert plan_counts(plan)["activities"] > 5 and plan_counts(plan)["children"] == 1
    # the placement is answered after the steps before it (pricing, holding, registering the payment)
    # and before the child starts; the child's steps are the fulfillment's own
    steps = plan["steps"]
    assert steps.count("answer") == 1 and steps.index("answer") < steps.index("child")
    assert steps[:steps.index("answer")].count("activity") >= 2
    assert len(plan["children"]) == 1 and plan["children"][0]["steps"] and "answer" not in plan["children"][0]["steps"]


def test_history_figures_sum_the_order_and_its_children() -> None:
    root, tree = golden_tree("order_happy")
    raw = raw_types("order_happy")
    counts = history_counts(tree)
    assert counts["events"] == sum(len(json.loads(p.read_text())["events"])
                                   for p in HISTORIES.glob("order_happy__*.json") if "__run" not in p.name)
    assert counts["workflow_tasks"] == raw["EVENT_TYPE_WORKFLOW_TASK_COMPLETED"]
    assert counts["signals"] == raw["EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"] > 0
    assert counts["search_attribute_upserts"] == raw["EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"] > 0
    assert counts["updates"] == raw["EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"] == 1


def test_completion_is_the_moment_the_status_became_completed() -> None:
    root, tree = golden_tree("order_happy")
    import base64
    from datetime import datetime

    at = status_completed_at(tree, root)
    events = json.loads((HISTORIES / f"order_happy__{root}.json").read_text())["events"]
    completed = [e["eventTime"] for e in events if e["eventType"] == "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"
                 and base64.b64decode(e["upsertWorkflowSearchAttributesEventAttributes"]["searchAttributes"]
                                      ["indexedFields"].get("OrderStatus", {}).get("data", "")) == b'"completed"']
    assert len(completed) == 1
    assert at == datetime.fromisoformat(completed[0].replace("Z", "+00:00")).timestamp()
    assert status_completed_at(tree, root, status="no-such-status") is None


def test_percentiles_and_cpu_per_order() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.5) == 51.0  # nearest rank of 0.5 × 99 = 49.5 → index 50 (banker's rounding: 50)
    assert percentile(values, 0.99) == 99.0  # index round(98.01) = 98
    assert percentile([], 0.5) is None
    cpu = {"temporal": 4.0, "worker": 3.0, "api": 2.0, "sandbox": 1.0, "postgres": 0.5, "bench_client": 9.0}
    got = per_order(cpu, 10, ("temporal", "worker", "api", "sandbox", "postgres"))
    assert got["total"] == (4.0 + 3.0 + 2.0 + 1.0 + 0.5) / 10  # the client is not part of an order's cost
    assert got["without_sandbox"] == (4.0 + 3.0 + 2.0 + 0.5) / 10
    assert got["worker"] == 0.3
    assert per_order(cpu, 0, ("temporal",))["total"] is None


def test_compare_prints_the_change_of_every_shared_figure() -> None:
    a = {"started_at": "a", "config": {"orders": 100}, "full": {"throughput_per_s": 1.0, "met": False},
         "pids": {"api": 1}}
    b = {"started_at": "b", "config": {"orders": 100}, "full": {"throughput_per_s": 1.5, "met": True},
         "pids": {"api": 2}}
    assert dict(numbers(a)) == {"config.orders": 100.0, "full.throughput_per_s": 1.0, "pids.api": 1.0}
    out = compare(a, b)
    line = next(l for l in out.splitlines() if l.startswith("full.throughput_per_s"))
    assert line.split()[1:] == ["1", "1.5", "+0.5", "+50.0%"]
    assert "pids.api" not in out  # process ids are not figures


def test_make_bench_e2e_runs_the_e2e_benchmark_alone() -> None:
    out = subprocess.run(["make", "-n", "bench", "e2e", "BENCH_ARGS=--orders 7"], cwd=ROOT, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "-m bench e2e --orders 7" in out.stdout
    plain = subprocess.run(["make", "-n", "bench"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert plain.returncode == 0 and "-m bench" in plain.stdout and "e2e" not in plain.stdout
