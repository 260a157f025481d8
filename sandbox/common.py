"""What every simulated outside system shares: configuration, fault injection, callbacks.

Each simulator module (``sandbox/<system>.py``) exposes a state class and a
``router(sim)`` function returning an ``APIRouter`` with two kinds of endpoints:

* the system's *wire* endpoints (the shape the real system speaks), under
  ``/<system>/...`` (e.g. ``/acquiring/payment/rest/registerPreAuth.do``);
* *drive* endpoints under ``/sandbox/<system>/...`` so a person or a test can act
  as the bank, the store or the courier, and inject faults.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from sandbox.state import Outbox

log = structlog.get_logger("sandbox")


@dataclass
class SandboxConfig:
    #: act by itself (pay, assemble, deliver) after ``auto_delay_s``
    auto: bool = False
    auto_delay_s: float = 3.0
    #: where Orkestr listens (callbacks, webhooks, POS events are sent there)
    orkestr_url: str = "http://127.0.0.1:8000"
    #: this sandbox's own public base URL (payment page links)
    public_url: str = "http://127.0.0.1:8100"
    acquiring_callback_secret: str = "dev-callback-secret"
    pos_callback_token: str = "dev-pos-callback-token"
    courier_webhook_secret: str = "dev-courier-secret"
    seed: int = 42
    products: int = 2000
    #: a smaller demo catalogue for tests (None = full demo data)
    small_catalog: bool = False
    #: the SQLite file that keeps the simulators' state and pending callbacks across restarts
    #: (``sandbox.state``); None: in memory, gone with the process (tests)
    state_path: str | None = None
    #: callbacks, webhooks and POS events that fail are retried (``sandbox.state.RetryPolicy``)
    callback_first_delay_s: float = 0.5
    callback_max_delay_s: float = 30.0
    callback_max_attempts: int = 40
    callback_window_s: float = 3600.0


class FaultSpec(BaseModel):
    fail_next: int = Field(0, ge=0, description="the next N wire calls answer with `status`")
    status: int = Field(503, ge=400, le=599)
    latency_ms: int = Field(0, ge=0, le=60_000, description="added to every wire call")
    operations: list[str] = Field(default_factory=list, description="only these operations (empty: all)")


@dataclass
class Faults:
    """Fault injection for one system: ``await faults.check("deposit")`` in each wire handler."""

    system: str
    spec: FaultSpec = field(default_factory=FaultSpec)
    injected: int = 0

    async def check(self, operation: str) -> None:
        if self.spec.latency_ms:
            await asyncio.sleep(self.spec.latency_ms / 1000)
        if self.spec.fail_next > 0 and (not self.spec.operations or operation in self.spec.operations):
            self.spec.fail_next -= 1
            self.injected += 1
            log.warning("sandbox.fault_injected", system=self.system, operation=operation)
            raise HTTPException(self.spec.status, f"{self.system}: injected fault on {operation}")

    def router(self) -> APIRouter:
        r = APIRouter(prefix=f"/sandbox/{self.system}", tags=[f"sandbox:{self.system}"])

        @r.post("/faults", summary=f"Inject faults into {self.system}")
        async def set_faults(spec: FaultSpec) -> dict[str, Any]:
            self.spec = spec
            return {"system": self.system, **spec.model_dump()}

        @r.get("/faults")
        async def get_faults() -> dict[str, Any]:
            return {"system": self.system, "injected": self.injected, **self.spec.model_dump()}

        return r


class Background:
    """What the simulators share at run time: fire-and-forget tasks (auto mode, timers) that are
    cancelled on shutdown, and the :class:`sandbox.state.Outbox` their callbacks go through."""

    def __init__(self, outbox: Outbox | None = None) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outbox = outbox
        #: systems whose state changed since they were last saved (``sandbox.state``)
        self.dirty: set[str] = set()

    def touch(self, system: str) -> None:
        """Mark ``system``'s state changed: the app saves it at the next flush. Requests that
        may change state mark their system themselves; background work calls this."""
        self.dirty.add(system)

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("this Background has no outbox")
        return self._outbox

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def send_once(method: str, url: str, *, timeout_s: float = 10, **kwargs: Any) -> httpx.Response | None:
    """One attempt, as a person at a till sees it: the answer, or None when nobody answered."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            return await http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        log.warning("sandbox.callback_error", url=url, error=str(exc) or type(exc).__name__, attempt=1)
        return None


class RateLimit:
    """A sliding-window request limit of a marketplace API: at most ``limit`` calls per
    ``window_s`` seconds for one key (a seller account, a method). :meth:`hit` counts a call
    and answers 0 when it is allowed, else the seconds until the oldest call leaves the
    window (the ``Retry-After`` the simulator sends with its 429)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._calls: dict[str, list[float]] = {}

    def hit(self, key: str, now: float | None = None) -> float:
        import time

        now = time.monotonic() if now is None else now
        calls = [t for t in self._calls.get(key, []) if now - t < self.window_s]
        if len(calls) >= self.limit:
            self._calls[key] = calls
            return max(0.001, self.window_s - (now - calls[0]))
        calls.append(now)
        self._calls[key] = calls
        return 0.0
