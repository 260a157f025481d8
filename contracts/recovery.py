"""Parked steps and operator retries (boundary dataclasses; no I/O).

A step after placement that fails for good (an outside system refused it, or it kept failing until
its retries ran out) does not kill the workflow: the step is *parked*, the order goes ``on_hold``
with a timeline entry carrying the error, and a person resumes it with ``orkestr order retry ID`` /
``POST /v1/orders/{id}/retry``. The step's activity is idempotent by its key, so running it again
never does the thing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RetryRequest:
    """An operator's decision to run a parked step again (recorded in history with who made it)."""

    by: str
    note: str = ""


@dataclass(frozen=True)
class ParkedStep:
    step: str  # e.g. "erp_export", "courier_booking"
    workflow_id: str
    message: str
    error_type: str | None = None
    since: datetime | None = None
    retries: int = 0  # operator retries so far


@dataclass(frozen=True)
class RetryOutcome:
    """The answer to a retry: which parked steps were resumed."""

    order_id: str
    resumed: list[str]
