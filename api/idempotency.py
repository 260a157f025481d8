"""Idempotency-Key handling for POST routes (Stripe's semantics, ``shared/reference/fiscal-and-idempotency.md``):
the first request's status and body are stored and replayed for the same key, errors included;
the same key with another body is refused (422); a request still in flight answers 409."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Awaitable, Callable

from fastapi.responses import JSONResponse

from adapters.orders_repo import IdempotencyRepo
from api.errors import ApiError, from_service
from services.errors import ServiceError

Run = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]


def request_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


async def idempotent(idem: IdempotencyRepo, *, key: str | None, scope: str, payload: Any, run: Run) -> JSONResponse:
    """Run ``run`` once per ``key`` in ``scope`` (``payload``: what identifies the request)."""
    if key is None:
        status, body = await run()
        return JSONResponse(body, status_code=status)
    if not key.strip():
        raise ApiError(422, "validation_error", "Idempotency-Key: must not be empty", field="Idempotency-Key")
    claim = await idem.claim(key=key, scope=scope, request_hash=request_hash(payload))
    if claim.outcome == "replay":
        return JSONResponse(claim.body, status_code=claim.status_code or 200, headers={"Idempotent-Replayed": "true"})
    if claim.outcome == "mismatch":
        raise ApiError(422, "idempotency_key_reuse",
                       "Idempotency-Key: this key was already used with a different request body",
                       field="Idempotency-Key")
    if claim.outcome == "in_flight":
        raise ApiError(409, "idempotency_key_in_flight",
                       "Idempotency-Key: a request with this key is still being processed; retry later",
                       field="Idempotency-Key")
    try:
        status, body = await run()
    except (ApiError, ServiceError) as err:  # errors are part of the stored answer, as Stripe does
        api = err if isinstance(err, ApiError) else from_service(err)
        await idem.finish(key=key, scope=scope, status_code=api.status, body=api.body)
        raise
    except BaseException:
        await idem.release(key=key, scope=scope)
        raise
    await idem.finish(key=key, scope=scope, status_code=status, body=body)
    return JSONResponse(body, status_code=status)
