"""The one place an adapter's HTTP call is timed, logged and classified."""

from __future__ import annotations

import time
from typing import Any

import httpx
import structlog

from adapters.errors import ExternalUnavailable
from observability import ADAPTER_CALLS

log = structlog.get_logger("adapter")


async def request(
    http: httpx.AsyncClient, system: str, operation: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Send one request. Transport errors and 5xx become ``ExternalUnavailable``;
    any other status is returned for the adapter to interpret in its system's terms."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        resp = await http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        outcome = "unavailable"
        raise ExternalUnavailable(system, operation, f"{type(exc).__name__}: {exc}") from exc
    finally:
        elapsed = time.perf_counter() - started
        if outcome != "ok":
            ADAPTER_CALLS.labels(system, operation, outcome).observe(elapsed)
    if resp.status_code >= 500:
        outcome = "unavailable"
    elif resp.status_code >= 400:
        outcome = "refused"
    ADAPTER_CALLS.labels(system, operation, outcome).observe(elapsed)
    log.debug("adapter.call", system=system, operation=operation, status=resp.status_code, ms=round(elapsed * 1000, 1))
    if resp.status_code >= 500:
        raise ExternalUnavailable(system, operation, f"HTTP {resp.status_code}: {resp.text[:200]}")
    return resp
