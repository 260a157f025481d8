"""`orkestr run` for real, as a user starts it in the background next to another stack: a port base of its
own, a data directory of its own, the sandbox in auto mode. The worker is killed with SIGKILL while ten
orders are under way: a new worker is started within 10 s (serving again within 30 s even on a busy
machine); all ten complete. A second worker (its metrics port
taken) and a second stack (its ports taken) exit at once naming the port. The CLI finds the stack through
its state file with no variables. SIGINT (ignored by the shell, as for a background job, and still
handled) stops it in the order that loses nothing. Slow steps are bounded."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import psutil
import pytest

from devstack import port_is_free, read_state
from helpers import order_body

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ORDERS = 10


def free_port_block(size: int = 5) -> int:
    """A base N with N..N+size-1 free on loopback (random, so parallel runs rarely meet)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20_000, 60_000, 10)
        if all(port_is_free("127.0.0.1", base + i) for i in range(size)):
            return base
    raise RuntimeError("no free block of ports")


@dataclass
class RunningStack:
    base: int
    home: Path
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]
    state: dict[str, Any]

    @property
    def api(self) -> str:
        return self.state["urls"]["API"]

    @property
    def sandbox(self) -> str:
        return f"http://127.0.0.1:{self.base + 1}"

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def worker_pid(self) -> int | None:
        for child in psutil.Process(self.proc.pid).children():
            try:
                if child.cmdline()[-2:] == ["cli", "worker"]:
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        return None

    def cli(self, *args: str, timeout: float = 60, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=self.home, capture_output=True, text=True,
                              timeout=timeout, env={**self.env, "COLUMNS": "250", **extra_env})


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ORKESTR_")}


@pytest.fixture(scope="module")
def running() -> Any:
    home = Path(tempfile.mkdtemp(prefix="orkestr-run-"))
    base = free_port_block()
    env = {**clean_env(), "ORKESTR_PORT_BASE": str(base)}
    stack_env = {**env, "ORKESTR_LOG_FORMAT": "json", "ORKESTR_SANDBOX_AUTO": "true",
                 "ORKESTR_SANDBOX_AUTO_DELAY_S": "0.5", "ORKESTR_SANDBOX_PRODUCTS": "60",
                 "ORKESTR_ERP_SYNC_DELTA_EVERY_SECONDS": "2", "ORKESTR_WORKER_SHUTDOWN_SECONDS": "5"}
    log = home / "run.log"
    with log.open("wb") as out:
        # SIGINT ignored, as a shell leaves it for a job started with `&`: the stack must handle it anyway
        proc = subprocess.Popen([sys.executable, "-m", "cli", "run"], cwd=home, env=stack_env, stdout=out,
                                stderr=subprocess.STDOUT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    data_dir = home / ".orkestr" / f"port-{base}"
    state = None
    for _ in range(900):  # bounded: 180 s
        state = read_state(data_dir)
        if state is not None or proc.poll() is not None:
            break
        time.sleep(0.2)
    if state is None:
        proc.kill()
        pytest.fail(f"orkestr run did not come up (exit {proc.poll()}):\n{log.read_text()[-4000:]}")
    stack = RunningStack(base=base, home=home, proc=proc, log=log, env=env, state=state)
    yield stack
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def test_the_cli_finds_the_stack_through_its_state_file(running: RunningStack) -> None:
    state = running.state
    assert state["env"]["ORKESTR_TEMPORAL_ADDRESS"] == f"127.0.0.1:{running.base + 2}"
    assert state["urls"]["Temporal UI"] == f"http://127.0.0.1:{running.base + 3}"
    assert state["env"]["ORKESTR_ERP_URL"] == f"http://127.0.0.1:{running.base + 1}/erp"
    assert "ORKESTR_DATABASE_URL" not in running.env  # the CLI gets nothing but the port base
    out = running.cli("orders", "stuck", "--older-than", "1s")
    assert out.returncode == 0, out.stderr
    assert "Orders with no change for more than" in out.stdout
    out = running.cli("orders", "failed")
    assert out.returncode == 0, out.stderr
    out = running.cli("order", "show", "NOSUCHORDER")
    assert out.returncode == 5 and "NOSUCHORDER" in out.stderr  # it reached this stack's Temporal


def test_a_second_worker_with_its_metrics_port_taken_exits_at_once(running: RunningStack) -> None:
    started = time.monotonic()
    out = running.cli("worker", timeout=30)
    took = time.monotonic() - started
    assert out.returncode == 1
    assert f"metrics port 127.0.0.1:{running.base + 4} (ORKESTR_METRICS_PORT) is taken" in out.stdout + out.stderr
    assert took < 15, f"{took:.1f}s"


def test_a_second_stack_on_the_same_ports_names_them_and_starts_nothing(running: RunningStack) -> None:
    other = Path(tempfile.mkdtemp(prefix="orkestr-run2-"))
    try:
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "cli", "run", "--port-base", str(running.base)], cwd=other,
                             env={**clean_env(), "ORKESTR_LOG_FORMAT": "json"}, capture_output=True, text=True,
                             timeout=60)
        said = out.stdout + out.stderr
        assert out.returncode == 1, said
        assert f"port {running.base} (API, ORKESTR_API_PORT) is taken by another process" in said
        assert f"port {running.base + 1} (sandbox, ORKESTR_SANDBOX_PORT) is taken" in said
        assert time.monotonic() - started < 30
        assert not (other / ".orkestr" / f"port-{running.base}" / "pg").exists()  # nothing was started
    finally:
        shutil.rmtree(other, ignore_errors=True)
    assert running.proc.poll() is None  # and the first stack is untouched


async def _stocked_skus(running: RunningStack, http: httpx.AsyncClient, n: int) -> list[str]:
    r = await http.get(f"{running.api}/v1/products", params={"limit": n})
    r.raise_for_status()
    skus = [p["skus"][0]["sku"] for p in r.json()["items"]][:n]
    assert len(skus) == n
    r = await http.post(f"{running.sandbox}/sandbox/erp/stock", json={"items": [
        {"sku": sku, "location_id": "MSK-002", "quantity": 5} for sku in skus]})
    r.raise_for_status()
    for sku in skus:  # the delta sync loop (every 2 s here) brings the stock in
        for _ in range(150):
            r = await http.get(f"{running.api}/v1/stock", params={"sku": sku})
            if r.status_code == 200 and any(l["location_id"] == "MSK-002" and l["available"] >= 1
                                            for l in r.json()["items"][0]["locations"]):
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"{sku}: stock never synced: {r.text}")
    return skus


async def _wait_worker(running: RunningStack, http: httpx.AsyncClient, old_pid: int) -> tuple[float, float]:
    """(seconds until the supervisor started a new worker, seconds until that worker serves again).
    The first is the supervisor's (its backoff: 0.5 s); the second adds the worker's own start (imports,
    connecting to Temporal): about 2 s on a quiet machine, several on one running other test suites."""
    started = time.monotonic()
    respawned = None
    while time.monotonic() - started < 60:
        pid = running.worker_pid()
        if pid is not None and pid != old_pid:
            respawned = respawned or time.monotonic() - started
            try:
                r = await http.get(f"http://127.0.0.1:{running.base + 4}/health", timeout=1)
                if r.status_code == 200:
                    return respawned, time.monotonic() - started
            except httpx.HTTPError:
                pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"the worker was not back (respawned after {respawned}s):\n{running.log.read_text()[-3000:]}")


async def test_the_worker_killed_during_ten_orders_is_back_within_10s_and_all_complete(
        running: RunningStack, http: httpx.AsyncClient) -> None:
    skus = await _stocked_skus(running, http, ORDERS)
    first = running.worker_pid()
    assert first is not None

    # SIGTERM: the worker drains and exits at once (not after a kill timeout); the supervisor starts another
    started = time.monotonic()
    os.kill(first, signal.SIGTERM)
    psutil.Process(first).wait(15)
    assert time.monotonic() - started < 10
    respawned, serving = await _wait_worker(running, http, first)
    assert respawned < 10 and serving < 30, (respawned, serving)

    orders = []
    for i, sku in enumerate(skus):
        r = await http.post(f"{running.api}/v1/orders", json=order_body(sku, 1),
                            headers={"Idempotency-Key": f"devstack-{running.base}-{i}"})
        assert r.status_code == 201, r.text
        orders.append(r.json()["order_id"])
        if i == 3:  # mid-way: SIGKILL, no goodbye
            victim = running.worker_pid()
            assert victim is not None
            os.kill(victim, signal.SIGKILL)
            respawned, serving = await _wait_worker(running, http, victim)
            # back within 10 s: a new worker at once; serving again bounded looser (the machine is shared)
            assert respawned < 10 and serving < 30, (respawned, serving)

    pending = set(orders)
    deadline = time.monotonic() + 180
    statuses: dict[str, str] = {}
    while pending and time.monotonic() < deadline:
        for order_id in sorted(pending):
            r = await http.get(f"{running.api}/v1/orders/{order_id}")
            if r.status_code == 200:
                statuses[order_id] = r.json()["status"]
                if statuses[order_id] == "completed":
                    pending.discard(order_id)
        await asyncio.sleep(1)
    assert not pending, f"not completed: {[(o, statuses.get(o)) for o in sorted(pending)]}"

    crashes = [e for e in running.events() if e.get("event") == "devstack.crashed" and e.get("part") == "worker"]
    assert [e["exit_code"] for e in crashes] == [0, -9]
    assert len([e for e in running.events() if e.get("event") == "devstack.restarted"]) == 2
    assert running.proc.poll() is None  # the stack stayed up


async def test_api_metrics_count_requests_by_route_template(running: RunningStack, http: httpx.AsyncClient) -> None:
    for _ in range(3):
        await http.get(f"{running.api}/v1/orders/NOSUCHORDER")
    text = (await http.get(f"{running.api}/metrics")).text
    line = next(l for l in text.splitlines()
                if l.startswith("orkestr_http_requests_total{") and 'route="/v1/orders/{order_id}"' in l
                and 'status="404"' in l and 'method="GET"' in l)
    assert float(line.rsplit(" ", 1)[1]) >= 3
    assert "NOSUCHORDER" not in text  # a template, never the id
    assert 'orkestr_http_request_duration_seconds_bucket{' in text
    gauge = {m.group(1): float(m.group(2)) for m in re.finditer(r'^orkestr_orders\{status="(\w+)"\} (\S+)$', text,
                                                                    flags=re.M)}
    assert {"awaiting_payment", "completed", "on_hold", "cancelled"} <= set(gauge)
    for status in ("completed", "cancelled"):  # the projection, as the listing counts it
        r = await http.get(f"{running.api}/v1/orders", params={"status": status, "limit": 1})
        assert gauge[status] == r.json()["total"], status


def test_sigint_in_the_background_stops_everything_in_order(running: RunningStack) -> None:
    running.proc.send_signal(signal.SIGINT)
    code = running.proc.wait(90)
    events = running.events()
    assert code == 0, running.log.read_text()[-3000:]
    assert any(e.get("event") == "devstack.stopping" and e.get("signal") == "SIGINT" for e in events)
    stopped = [e["part"] for e in events if e.get("event") in ("devstack.stopped", "devstack.killed")
               and events.index(e) > max(i for i, x in enumerate(events) if x.get("event") == "devstack.stopping")]
    assert stopped == ["sandbox", "worker", "api", "temporal", "postgres"]
    assert not any(e.get("event") == "devstack.killed" for e in events)  # each stopped on SIGTERM in time
    drained = [e for e in events if e.get("event") == "worker.stopped"]
    assert drained and drained[-1]["drained_s"] < 5 + 1
    assert read_state(running.home / ".orkestr" / f"port-{running.base}") is None
    assert not (running.home / ".orkestr" / f"port-{running.base}" / "state.json").exists()
    for i in range(5):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", running.base + i)) != 0, f"port {running.base + i} still served"
