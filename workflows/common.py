"""Timing and retry decisions for activities (they live in workflows: the caller decides timing).

Activities are called by name so workflow modules never import adapters; every
name is declared once here next to its result type.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from contracts.steps import ErrorType

T = TypeVar("T")

#: business refusals: never retried by Temporal (the workflow decides what to do)
NON_RETRYABLE = [
    ErrorType.OUT_OF_STOCK,
    ErrorType.PAYMENT_REFUSED,
    ErrorType.LOYALTY_REFUSED,
    ErrorType.PRICE_CHANGED,
    ErrorType.COURIER_REFUSED,
    ErrorType.POS_REFUSED,
    ErrorType.ERP_REFUSED,
    ErrorType.NOTIFY_REFUSED,
]

#: transport faults are retried with backoff for up to ``schedule_to_close``
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    non_retryable_error_types=NON_RETRYABLE,
)

CALL = timedelta(seconds=30)  # one attempt at an outside system
GIVE_UP = timedelta(hours=2)  # then the step fails and the workflow parks it for a person


async def call(name: str, arg: Any = None, *, result_type: type[T] | None = None,
               start_to_close: timedelta = CALL, schedule_to_close: timedelta = GIVE_UP,
               heartbeat: timedelta | None = None, retry: RetryPolicy = RETRY) -> T:
    """Execute the activity ``name``; refusals raise at once, outages retry with backoff."""
    args = [] if arg is None else [arg]
    return await workflow.execute_activity(
        name,
        args=args,
        result_type=result_type,
        start_to_close_timeout=start_to_close,
        schedule_to_close_timeout=schedule_to_close,
        heartbeat_timeout=heartbeat,
        retry_policy=retry,
    )


async def local(name: str, arg: Any = None, *, result_type: type[T] | None = None) -> T:
    """A fast in-process step (PostgreSQL) as a local activity: fewer round trips to the server."""
    args = [] if arg is None else [arg]
    return await workflow.execute_local_activity(
        name,
        args=args,
        result_type=result_type,
        start_to_close_timeout=timedelta(seconds=15),
        schedule_to_close_timeout=timedelta(minutes=10),
        retry_policy=RETRY,
    )


async def signal_workflow(workflow_id: str, signal: str, arg: Any) -> bool:
    """Signal a parent or child; one that has already finished (a child done, an order closed) is
    not an error for the sender. Returns whether the signal was delivered."""
    from temporalio.exceptions import ApplicationError

    try:
        await workflow.get_external_workflow_handle(workflow_id).signal(signal, arg)
    except ApplicationError as err:
        if err.type == "ExternalWorkflowExecutionNotFound" or "not found" in err.message:
            workflow.logger.info("signal %s to %s not delivered: it has finished", signal, workflow_id)
            return False
        raise
    return True


def failure_type(err: BaseException) -> str | None:
    """The ``ApplicationError`` type behind a failed step (an activity, a child, or the error
    itself), e.g. ``OutOfStock``; None when it was not a refusal (a timeout, a cancellation)."""
    from temporalio.exceptions import ApplicationError

    cause = err if isinstance(err, ApplicationError) else getattr(err, "cause", None)
    return cause.type if isinstance(cause, ApplicationError) else None


def failure_message(err: BaseException) -> str:
    """What went wrong, in the outside system's words: the message of the innermost refusal
    (through activity and child workflow wrappers), else the error itself."""
    from temporalio.exceptions import ApplicationError

    if isinstance(err, ApplicationError):
        return err.message
    cause = getattr(err, "cause", None)
    while cause is not None and getattr(cause, "cause", None) is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    return str(getattr(cause, "message", None) or cause or err)
