"""One port base moves every port and every URL made of them; what is set explicitly wins; a port someone
else holds is named before anything starts; the state file is what the CLI joins; the supervisor restarts
what may restart and stops on what may not (real child processes, no stack)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import devstack
from devstack import Part, Stack, StackError, check_ports, planned_ports, read_state, stack_env, write_state
from settings import PORT_OFFSETS, SANDBOX_SYSTEMS, Settings

ROOT = Path(__file__).resolve().parents[2]


def settings(**kw: Any) -> Settings:
    return Settings(_env_file=None, **kw)


def all_urls(s: Settings) -> list[str]:
    return [s.public_url, s.sandbox_url(), s.return_url(), *(getattr(s, f) for f in SANDBOX_SYSTEMS)]


def test_the_defaults_are_the_documented_ports() -> None:
    s = settings()
    assert (s.api_port, s.sandbox_port, s.temporal_port, s.temporal_ui_port, s.metrics_port) == (8000, 8100, 7233,
                                                                                                    8233, 9464)
    assert s.public_url == "http://127.0.0.1:8000"
    assert {getattr(s, f) for f in SANDBOX_SYSTEMS} == {f"http://127.0.0.1:8100/{p}" for p in SANDBOX_SYSTEMS.values()}
    assert s.data_dir == Path(".orkestr")


def test_a_port_base_moves_every_port_and_url_together() -> None:
    a, b = settings(port_base=20000), settings(port_base=30000)
    for s, base in ((a, 20000), (b, 30000)):
        assert (s.api_port, s.sandbox_port, s.temporal_port, s.temporal_ui_port, s.metrics_port) == tuple(
            base + PORT_OFFSETS[k] for k in ("api_port", "sandbox_port", "temporal_port", "temporal_ui_port",
                                             "metrics_port"))
        assert s.temporal_address == f"127.0.0.1:{base + 2}"
        assert s.public_url == f"http://127.0.0.1:{base}"
        assert s.return_url() == f"http://127.0.0.1:{base}/v1/payment-return"
        for field, path in SANDBOX_SYSTEMS.items():
            assert getattr(s, field) == f"http://127.0.0.1:{base + 1}/{path}", field
        assert s.data_dir == Path(".orkestr") / f"port-{base}"
    # two stacks side by side share no port, no URL and no data directory, nor with a default stack
    default = settings()
    ports = [{p for *_, p in planned_ports(s)} for s in (a, b, default)]
    assert not (ports[0] & ports[1]) and not (ports[0] & ports[2]) and not (ports[1] & ports[2])
    assert not set(all_urls(a)) & set(all_urls(b)) and not set(all_urls(a)) & set(all_urls(default))


def test_moving_one_port_moves_the_urls_made_of_it() -> None:
    s = settings(api_port=9100, sandbox_port=9200)
    assert s.public_url == "http://127.0.0.1:9100"
    assert s.cdek_url == "http://127.0.0.1:9200/cdek" and s.notify_url == "http://127.0.0.1:9200/notify"
    assert settings(api_host="0.0.0.0").public_url == "http://127.0.0.1:8000"  # listen everywhere, dial loopback


def test_an_explicit_variable_wins_over_the_port_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORKESTR_PORT_BASE", "20000")
    monkeypatch.setenv("ORKESTR_API_PORT", "9000")
    monkeypatch.setenv("ORKESTR_ERP_URL", "https://erp.example.test/odata")
    monkeypatch.setenv("ORKESTR_PUBLIC_URL", "https://orkestr.example.test")
    s = Settings(_env_file=None)
    assert s.api_port == 9000 and s.sandbox_port == 20001
    assert s.erp_url == "https://erp.example.test/odata" and s.acquiring_url == "http://127.0.0.1:20001/acquiring"
    assert s.public_url == "https://orkestr.example.test"


def test_post_polling_is_minutes_in_dev_and_hours_in_prod() -> None:
    from settings import DEV_SECRETS

    assert settings().post_poll_minutes == 2

    prod = {name: f"real-{name}" for name in DEV_SECRETS}
    assert settings(env="prod", **prod).post_poll_minutes == 240
    assert settings(post_poll_minutes=15).post_poll_minutes == 15


def test_a_taken_port_is_named_before_anything_starts() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    try:
        with pytest.raises(StackError) as err:
            check_ports(settings(port_base=taken - 1))  # the sandbox's port (base + 1) is held
        assert f"port {taken} (sandbox, ORKESTR_SANDBOX_PORT) is taken by another process" in err.value.message
        assert "--port-base" in err.value.message
        with pytest.raises(StackError) as err:
            check_ports(settings(port_base=taken - 4))  # the worker's metrics port
        assert f"port {taken} (worker metrics, ORKESTR_METRICS_PORT)" in err.value.message
    finally:
        holder.close()


def test_the_state_file_is_read_only_while_its_stack_lives(tmp_path: Path) -> None:
    s = settings(data_dir=tmp_path, port_base=23000)
    path = write_state(s, stack_env(s, "postgresql://u@/orkestr?host=/x"), {"API": s.public_url})
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds the database URL
    state = read_state(tmp_path)
    assert state is not None and state["pid"] == os.getpid()
    assert state["env"]["ORKESTR_DATABASE_URL"] == "postgresql://u@/orkestr?host=/x"
    assert state["env"]["ORKESTR_TEMPORAL_ADDRESS"] == "127.0.0.1:23002"
    assert state["env"]["ORKESTR_POST_URL"] == "http://127.0.0.1:23001/post"
    # a stack that died without cleaning up: its pid is gone, the file is ignored
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    data = json.loads(path.read_text())
    data["pid"] = int(dead.stdout)
    path.write_text(json.dumps(data))
    assert read_state(tmp_path) is None


def test_every_cli_command_joins_the_running_stack(tmp_path: Path) -> None:
    """`orkestr migrate` with no ORKESTR_DATABASE_URL finds the one in the state file (and says which
    database it could not reach), and an explicit variable still wins."""
    s = settings(data_dir=tmp_path)
    write_state(s, stack_env(s, "postgresql://nobody@/no_such_db?host=/nonexistent-dir"), {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORKESTR_")}
    env["ORKESTR_DATA_DIR"] = str(tmp_path)
    code = ("import os, cli; cli.join_running_stack(); "
            "print(os.environ['ORKESTR_DATABASE_URL']); print(os.environ['ORKESTR_TEMPORAL_ADDRESS'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["postgresql://nobody@/no_such_db?host=/nonexistent-dir", "127.0.0.1:7233"]
    out = subprocess.run([sys.executable, "-c", code], env={**env, "ORKESTR_DATABASE_URL": "postgresql://x@/y"},
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.split()[0] == "postgresql://x@/y"
    # with no stack and no variable: a clear error naming both
    (tmp_path / "state.json").unlink()
    out = subprocess.run([sys.executable, "-m", "cli", "orders", "stuck"], env=env, capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    said = " ".join(out.stderr.split())  # rich wraps lines
    assert out.returncode == 2
    assert "ORKESTR_DATABASE_URL is not set" in said and "no `orkestr run` is running" in said


def test_run_lists_its_options() -> None:
    out = subprocess.run([sys.executable, "-m", "cli", "run", "--help"], capture_output=True, text=True, cwd=ROOT,
                         timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0
    assert "--port-base" in out.stdout and "ORKESTR_PORT_BASE" in out.stdout and "--no-sandbox-auto" in out.stdout


# --- supervision, with real short-lived child processes ------------------------------------------------------
def _stack(tmp_path: Path) -> Stack:
    stack = Stack(settings(data_dir=tmp_path))
    stack.env = dict(os.environ)
    return stack


def test_a_crashed_part_is_restarted_with_growing_backoff(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    crash = [sys.executable, "-c", "import sys; sys.exit(3)"]
    stack.spawn(Part("api", crash, restart=True))
    starts: list[float] = [time.monotonic()]
    deadline = time.monotonic() + 20
    while len(starts) < 4 and time.monotonic() < deadline:
        pid = stack.parts["api"].proc.pid if stack.parts["api"].proc else None
        stack.check()
        part = stack.parts["api"]
        if part.proc is not None and part.proc.pid != pid:
            starts.append(time.monotonic())
        time.sleep(0.05)
    try:
        assert len(starts) == 4, f"restarted {len(starts) - 1} times"
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert gaps[0] >= devstack.BACKOFF_FIRST_S and gaps[1] >= 2 * devstack.BACKOFF_FIRST_S
        assert gaps[2] >= 4 * devstack.BACKOFF_FIRST_S and gaps[2] < 4 * devstack.BACKOFF_FIRST_S + 2
        assert stack.parts["api"].restarts == 3
    finally:
        stack.stop()


def test_temporal_or_postgresql_dying_stops_the_stack(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    stack.spawn(Part("temporal", [sys.executable, "-c", "import sys; sys.exit(7)"], restart=False))
    stack.parts["temporal"].proc.wait(30)
    with pytest.raises(StackError, match="temporal exited with 7: stopping the stack"):
        stack.check()

    class GonePostgres:
        def get_postmaster_info(self) -> Any:
            raise FileNotFoundError("postmaster.pid")

    stack = _stack(tmp_path)
    stack.pg = GonePostgres()
    with pytest.raises(StackError, match="PostgreSQL stopped"):
        stack.check()
    stack.pg = None


def test_stop_goes_senders_first_and_waits_for_the_worker_to_drain(tmp_path: Path) -> None:
    """Each part writes when SIGTERM reached it; the worker takes a second to drain and is waited for."""
    stack = _stack(tmp_path)
    log = tmp_path / "order.log"
    body = ("import signal, sys, time\n"
            "def bye(*_):\n"
            "    time.sleep({drain}); open({log!r}, 'a').write({name!r} + '\\n'); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, bye)\n"
            "open({log!r}, 'a').write('up ' + {name!r} + '\\n')\n"
            "while True: time.sleep(0.1)\n")
    for name in ("temporal", "api", "worker", "sandbox"):  # started in another order than they stop
        stack.spawn(Part(name, [sys.executable, "-c", body.format(drain=1.0 if name == "worker" else 0, log=str(log),
                                                                  name=name)], restart=name != "temporal"))
    for _ in range(200):
        if log.exists() and log.read_text().count("up ") == 4:
            break
        time.sleep(0.05)
    stack.stop()
    assert [line for line in log.read_text().split("\n") if line and not line.startswith("up ")] == [
        "sandbox", "worker", "api", "temporal"]


# --- a part that cannot serve exits at once, non-zero ----------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens there once closed


def _run_part(part: str, tmp_path: Path, **env: str) -> tuple[int, float, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ORKESTR_")}
    full.update({"ORKESTR_DATA_DIR": str(tmp_path), "ORKESTR_LOG_FORMAT": "json",
                 "ORKESTR_DATABASE_URL": "postgresql://nobody@/nothing?host=/nonexistent", **env})
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "cli", part], env=full, capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    return out.returncode, time.monotonic() - started, out.stdout + out.stderr


def test_an_api_or_worker_that_cannot_reach_temporal_exits_non_zero_at_once(tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{_closed_port()}"
    code, took, said = _run_part("api", tmp_path, ORKESTR_TEMPORAL_ADDRESS=nowhere, ORKESTR_API_PORT=str(_closed_port()))
    assert code != 0 and took < 30, said[-2000:]
    assert "Connection refused" in said
    code, took, said = _run_part("worker", tmp_path, ORKESTR_TEMPORAL_ADDRESS=nowhere,
                                 ORKESTR_METRICS_PORT=str(_closed_port()))
    assert code == 1 and took < 45, said[-2000:]
    assert f"cannot connect to Temporal at {nowhere}" in said


def test_a_server_whose_port_is_taken_exits_non_zero(tmp_path: Path) -> None:
    """The sandbox, served like the API (`cli._serve`: uvicorn binds after the app's start-up, which for the
    API needs Temporal, so the sandbox shows the bind failure alone)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        code, took, said = _run_part("sandbox", tmp_path, ORKESTR_SANDBOX_PORT=str(holder.getsockname()[1]))
        assert code != 0 and took < 45, said[-2000:]
        assert "address already in use" in said.lower()
    finally:
        holder.close()
