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
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

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
    """Fire-and-forget tasks (auto mode, callbacks) that are cancelled on shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def deliver(
    method: str,
    url: str,
    *,
    attempts: int = 8,
    first_delay_s: float = 0.5,
    **kwargs: Any,
) -> httpx.Response | None:
    """Send a callback/webhook like a real system would: retried with backoff on failure."""
    delay = first_delay_s
    async with httpx.AsyncClient(timeout=10) as http:
        for attempt in range(1, attempts + 1):
            try:
                resp = await http.request(method, url, **kwargs)
                if resp.status_code < 500:
                    return resp
                log.warning("sandbox.callback_failed", url=url, status=resp.status_code, attempt=attempt)
            except httpx.HTTPError as exc:
                log.warning("sandbox.callback_error", url=url, error=str(exc), attempt=attempt)
            await asyncio.sleep(delay * (1 + random.random() / 4))
            delay = min(delay * 2, 10)
    return None
