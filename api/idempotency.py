"""``Idempotency-Key`` for POST endpoints that create something (Stripe semantics, see
``shared/reference/fiscal-and-idempotency.md``): the first answer (success or refusal) is stored
and replayed for the same key and body; the same key with another body is refused (422); a
key still in flight answers 409. Shared by orders and reservations."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Awaitable, Callable

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from adapters.orders_repo import IdempotencyRepo
from api.errors import ApiError


async def idempotent(idem: IdempotencyRepo, *, scope: str, key: str | None, body: BaseModel,
                     create: Callable[[], Awaitable[tuple[int, dict[str, Any]]]]) -> JSONResponse:
    """Run ``create`` at most once per (key, scope); ``create`` returns (status, JSON body) or
    raises ``ApiError`` (a refusal is part of the stored answer too)."""
    if key is not None:
        if not key.strip():
            raise ApiError(422, "validation_error", "Idempotency-Key: must not be empty", field="Idempotency-Key")
        request_hash = hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
        claim = await idem.claim(key=key, scope=scope, request_hash=request_hash)
        if claim.outcome == "replay":
            return JSONResponse(claim.body, status_code=claim.status_code or 200,
                                headers={"Idempotent-Replayed": "true"})
        if claim.outcome == "mismatch":
            raise ApiError(422, "idempotency_key_reuse",
                           "Idempotency-Key: this key was already used with a different request body",
                           field="Idempotency-Key")
        if claim.outcome == "in_flight":
            raise ApiError(409, "idempotency_key_in_flight",
                           "Idempotency-Key: a request with this key is still being processed; retry later",
                           field="Idempotency-Key")
    try:
        status, payload = await create()
    except ApiError as err:
        if key is not None:  # errors are part of the stored answer, as Stripe does
            await idem.finish(key=key, scope=scope, status_code=err.status, body=err.body)
        raise
    except Exception:
        if key is not None:
            await idem.release(key=key, scope=scope)
        raise
    if key is not None:
        await idem.finish(key=key, scope=scope, status_code=status, body=payload)
    return JSONResponse(payload, status_code=status)
