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
