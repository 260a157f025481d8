"""How adapter errors become Temporal failures: refusals are typed and final, the rest retries."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from adapters.errors import ExternalRateLimited, ExternalRefusal


@contextmanager
def refusals_as(error_type: str) -> Iterator[None]:
    """Turn an ``ExternalRefusal`` into a non-retryable ``ApplicationError`` of ``error_type``
    (the refusal code travels in the details). Transport errors propagate and are retried."""
    try:
        yield
    except ExternalRefusal as exc:
        raise ApplicationError(
            f"{exc.system} refused {exc.operation}: {exc.message}",
            exc.code or "",
            type=error_type,
            non_retryable=True,
        ) from exc


def logger() -> structlog.stdlib.BoundLogger:
    """A logger bound to the running activity (workflow id, run id, activity, attempt)."""
    info = activity.info()
    log: structlog.stdlib.BoundLogger = structlog.get_logger("activity")
    return log.bind(
        workflow_id=info.workflow_id, run_id=info.workflow_run_id,
        activity=info.activity_type, attempt=info.attempt,
    )


@contextmanager
def rate_limits_as_delay() -> Iterator[None]:
    """An ``ExternalRateLimited`` becomes a retryable ``ApplicationError`` (type ``RateLimited``)
    whose next attempt waits the system's ``Retry-After``, not the retry policy's backoff."""
    try:
        yield
    except ExternalRateLimited as exc:
        raise ApplicationError(
            f"{exc.system} rate-limited {exc.operation}: {exc.message}",
            exc.retry_after_s,
            type="RateLimited",
            next_retry_delay=timedelta(seconds=max(exc.retry_after_s, 0.1)),
        ) from exc
