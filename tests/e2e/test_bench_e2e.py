"""`python -m bench e2e` for real, small: its own stack comes up, three orders and three bare workflows
go through, the open loop places its orders, and the JSON has every figure (not their values: timing
targets are ratios in `make bench`, never pass/fail here). Every process it started is gone afterwards.
A stack that cannot come up ends the benchmark with the reason and the stack's own words."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bench.e2e import BARE_PARTS, FULL_PARTS, HISTORY_KEYS, RESULT_KEYS
from bench.stack import BenchError, BenchStack, free_port_base

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def test_the_e2e_benchmark_reports_every_figure_and_leaves_nothing_running(tmp_path: Path) -> None:
    out = tmp_path / "e2e.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "e2e", "--orders", "3", "--concurrency", "2", "--warmup", "1",
         "--idle-s", "0.5", "--open-loop-s", "2", "--products", "60", "--phase-timeout-s", "90",
         "--startup-timeout-s", "150", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=230)
    assert run.returncode == 0, f"stdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
    data = json.loads(out.read_text(encoding="utf-8"))

    for section, keys in RESULT_KEYS.items():
        for key in keys:
            assert data[section].get(key) is not None, f"{section}.{key} missing: {data[section]}"
    for name, parts in (("full", FULL_PARTS), ("bare", BARE_PARTS)):
        phase = data[name]
        assert phase["completed"] == 3 and phase["failed"] == 0, phase["errors"]
        for p in ("p50", "p99"):
            assert is_number(phase["placement_ms"][p]) and is_number(phase["completion_ms"][p])
        cpu = phase["cpu_s_per_order"]
        assert all(is_number(cpu[p]) for p in (*parts, "total", "without_sandbox")), cpu
        assert all(is_number(phase["history_per_order"][k]) for k in HISTORY_KEYS)
    assert all(is_number(v) for v in data["ratios"].values()), data["ratios"]
    ol = data["open_loop"]
    assert ol["placed"] == 2 and is_number(ol["placement_ms"]["p99"]) and isinstance(ol["met"], bool)
    mix = data["mix"]
    assert mix["activities"] > 0 and mix["children"] >= 1 and mix["updates"] == 1
    # the bare workflow ran the mix it was given: its histories hold exactly that many steps
    assert data["bare"]["history_per_order"]["activities"] == mix["activities"]
    assert data["bare"]["history_per_order"]["local_activities"] == mix["local_activities"]
    assert len(data["load_average"]["start"]) == 3 and set(data["idle_cpu_per_s"]) >= set(FULL_PARTS)
    assert "full/bare" in run.stdout and str(out) in run.stdout

    # nothing it started lives on
    alive = [(name, pid) for name, pid in data["pids"].items() if psutil.pid_exists(pid)
             and ROOT.name in " ".join(_cmdline(pid))]
    assert alive == []
    same = subprocess.run([sys.executable, "-m", "bench", "compare", str(out), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert same.returncode == 0 and "full.throughput_per_s" in same.stdout and "+0" in same.stdout


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def test_a_stack_that_cannot_come_up_is_named_with_its_log() -> None:
    with socket.socket() as taken:  # another process holds the API's port of the chosen base
        base = free_port_base()
        taken.bind(("127.0.0.1", base))
        taken.listen(1)
        with pytest.raises(BenchError) as err:
            BenchStack.start({"ORKESTR_PORT_BASE": str(base)}, timeout_s=60)
    message = str(err.value)
    assert "exited with 1" in message and f"port {base}" in message and "taken" in message
