"""A whole Orkestr stack for a benchmark, started as ``make run`` starts it, and the CPU its parts use.

``BenchStack.start`` runs ``orkestr run`` (the supervisor of ``devstack.py``) as a child process in a
temporary home: a free port base of its own (so every port and URL moves together), its data
directory (PostgreSQL, the Temporal SQLite file, the sandbox's state) under that home, no ``ORKESTR_*``
variable of the caller's environment but the ones given. ``stop`` ends it in its own order (SIGTERM to
the supervisor), kills whatever is left and removes the home; it runs on every exit of the ``with``
block, Ctrl-C and SIGTERM included, and the supervisor dies with us even on SIGKILL
(``PR_SET_PDEATHSIG``: it then stops its parts itself).

``cpu_seconds`` reads the CPU time (user + system, of each process and of its reaped children, so a
PostgreSQL backend that came and went is counted) of each part: the supervisor's children by their
command line (``temporal``, ``sandbox``, ``worker``, ``api``), PostgreSQL by the postmaster's pid file,
and any extra process registered with ``track`` (the bare worker).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from devstack import _die_with_parent_hook, port_is_free, read_state

ROOT = Path(__file__).resolve().parents[1]
#: the ports of one stack: API N, sandbox N+1, Temporal N+2, its UI N+3, worker metrics N+4
PORTS = 5


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why and what was seen."""


def _ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port_base(size: int = PORTS, attempts: int = 200) -> int:
    """A base N with N..N+size-1 free on loopback, chosen at random so parallel runs rarely meet, below
    the kernel's ephemeral range (an outgoing connection may take a port there at any moment)."""
    rng = random.Random()
    top = max(12_000, min(_ephemeral_ports()[0], 60_000) - size)
    for _ in range(attempts):
        base = rng.randrange(10_000, top, 10)
        if all(port_is_free("127.0.0.1", base + i) for i in range(size)):
            return base
    raise BenchError(f"no free block of {size} ports on 127.0.0.1 after {attempts} tries")


def _cpu_of_tree(proc: psutil.Process) -> float:
    total = 0.0
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in members:
        try:
            t = p.cpu_times()
        except psutil.Error:  # gone meanwhile: its time is in its parent's children_* once reaped
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


class BenchStack:
    def __init__(self, home: Path, base: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.home = home
        self.base = base
        self.proc = proc
        self.log = log
        self.state: dict[str, Any] = {}
        self.extra: dict[str, psutil.Process] = {}
        self._seen: dict[int, psutil.Process] = {}

    # --- start and stop ------------------------------------------------------------------------
    @classmethod
    def start(cls, env: dict[str, str], *, timeout_s: float = 240.0) -> "BenchStack":
        """Start ``orkestr run`` with ``env`` (``ORKESTR_*`` settings) on a free port base in a fresh
        temporary home; return once the API answers and the initial ERP import has filled the catalog.
        Raises ``BenchError`` with the end of the stack's log when it does not come up in time."""
        deadline = time.monotonic() + timeout_s
        for attempt in (1, 2):
            home = Path(tempfile.mkdtemp(prefix="orkestr-bench-"))
            base = int(env["ORKESTR_PORT_BASE"]) if "ORKESTR_PORT_BASE" in env else free_port_base()
            clean = {k: v for k, v in os.environ.items() if not k.startswith("ORKESTR_")}
            full_env = {**clean, "ORKESTR_PORT_BASE": str(base), "ORKESTR_LOG_FORMAT": "json", **env}
            log = home / "run.log"
            with log.open("wb") as out:
                proc = subprocess.Popen([sys.executable, "-m", "cli", "run"], cwd=home, env=full_env, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=_die_with_parent_hook())
            stack = cls(home, base, proc, log)
            try:
                stack._wait_up(deadline - time.monotonic())
                return stack
            except BenchError as err:
                stack.stop()
                # a port taken between our check and the part's bind (another run's): once more elsewhere
                if attempt == 2 or "ORKESTR_PORT_BASE" in env or not ("already in use" in str(err) or "is taken" in str(err)):
                    raise
            except BaseException:
                stack.stop()
                raise
        raise AssertionError("unreachable")

    def _wait_up(self, timeout_s: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        data_dir = self.home / ".orkestr" / f"port-{self.base}"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the stack exited with {self.proc.returncode} before it was up "
                                 f"(port base {self.base}); the end of its log:\n{self.log_tail()}")
            state = read_state(data_dir)
            if state is not None:
                self.state = state
                try:
                    r = httpx.get(f"{self.api}/v1/products", params={"limit": 1}, timeout=5)
                    if r.status_code == 200 and r.json().get("items"):
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        raise BenchError(f"the stack did not come up within {timeout_s:.0f} s (port base {self.base}: the API "
                         f"must answer and the initial ERP import fill the catalog); the end of its log:\n"
                         f"{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the supervisor (it stops its parts in order), kill anything left, remove the home.
        A second Ctrl-C or SIGTERM meanwhile is ignored: the stop is bounded and must finish."""
        main = threading.current_thread() is threading.main_thread()
        held = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
        try:
            self._stop()
        finally:
            for sig, handler in held.items():
                signal.signal(sig, handler)

    def _stop(self) -> None:
        self.processes()  # remember the last pids, to reap what the supervisor could not
        for name, p in list(self.extra.items()):
            _terminate(p, 10)
            self.extra.pop(name, None)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for p in self._seen.values():
            _terminate(p, 10)
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> "BenchStack":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- where it is -------------------------------------------------------------------------------
    @property
    def api(self) -> str:
        return str(self.state["urls"]["API"])

    @property
    def sandbox(self) -> str:
        return f"http://127.0.0.1:{self.base + 1}"

    @property
    def temporal_address(self) -> str:
        return str(self.state["env"]["ORKESTR_TEMPORAL_ADDRESS"])

    @property
    def namespace(self) -> str:
        return str(self.state["env"].get("ORKESTR_TEMPORAL_NAMESPACE", "default"))

    @property
    def data_dir(self) -> Path:
        return Path(self.state["env"]["ORKESTR_DATA_DIR"])

    # --- processes and their CPU ---------------------------------------------------------------------
    def track(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        """Count ``proc`` (and its children) as part ``name`` from now on; stopped with the stack."""
        self.extra[name] = psutil.Process(proc.pid)

    def processes(self) -> dict[str, psutil.Process]:
        """The root process of every part now (a restarted part has a new pid)."""
        out: dict[str, psutil.Process] = {}
        try:
            supervisor = psutil.Process(self.proc.pid)
            out["supervisor"] = supervisor
            for child in supervisor.children():
                try:
                    cmd = child.cmdline()
                except psutil.Error:
                    continue
                if len(cmd) >= 2 and cmd[-2] == "cli":
                    out[cmd[-1]] = child
                elif cmd:
                    out[Path(cmd[0]).name] = child
        except psutil.Error:
            pass
        try:
            pid = int((self.data_dir / "pg" / "postmaster.pid").read_text().split()[0])
            out["postgres"] = psutil.Process(pid)
        except (OSError, ValueError, IndexError, KeyError, psutil.Error):
            pass
        out.update(self.extra)
        for p in out.values():
            self._seen.setdefault(p.pid, p)
        return out

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds each part has used since it started (the supervisor: its own process only)."""
        out = {}
        for name, proc in self.processes().items():
            if name == "supervisor":
                try:
                    t = proc.cpu_times()
                    out[name] = t.user + t.system
                except psutil.Error:
                    out[name] = 0.0
            else:
                out[name] = _cpu_of_tree(proc)
        return out

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes().items()}


def _terminate(p: psutil.Process, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; the same process only (pid and start time)."""
    try:
        if not p.is_running():
            return
        p.terminate()
        p.wait(grace_s)
    except psutil.TimeoutExpired:
        try:
            p.kill()
            p.wait(5)
        except psutil.Error:
            pass
    except psutil.Error:
        pass


def spawn_bare_worker(stack: BenchStack, task_queue: str) -> subprocess.Popen[bytes]:
    """``python -m bench.bare`` against the stack's Temporal, counted as the part ``bare_worker``."""
    log = (stack.home / "bare-worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "bench.bare", "--address", stack.temporal_address,
                             "--namespace", stack.namespace, "--task-queue", task_queue],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, preexec_fn=_die_with_parent_hook())
    log.close()
    stack.track("bare_worker", proc)
    return proc

