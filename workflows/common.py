"""How workflows call activities and signal each other: typed, with the timing decided here.

Activities are called through their definitions (``await call(PaymentActivities.register_payment,
req)``): the name, the argument type and the result type all come from the method, so a typo or a
wrong argument is a type error, not a failure at run time. The caller decides timing (the house
rule: ``start_to_close_timeout`` and ``RetryPolicy`` live in workflows), so every remote call goes
through :func:`call` and every PostgreSQL step through :func:`local` with the policy below.
Signals to other workflows go through their handler references (:func:`signal`).

The activity classes are imported by workflow modules inside ``imports_passed_through``: they are
loaded once by the worker and only their definitions are used here (never an instance, never I/O).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Awaitable, Callable, Protocol, TypeVar, overload

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.steps import ErrorType

S = TypeVar("S")
A = TypeVar("A")
R = TypeVar("R")

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
LOCAL_CALL = timedelta(seconds=15)  # one attempt at PostgreSQL
LOCAL_GIVE_UP = timedelta(minutes=10)

#: how a failed step reaches the workflow: activities wrap the failure, local activities may not
STEP_FAILED = (ActivityError, ApplicationError)


class _NoArg:
    """Marks a call without an argument (an activity that takes none)."""


_NO_ARG = _NoArg()


@overload
async def call(activity: Callable[[S], Awaitable[R]], *, start_to_close: timedelta = ...,
               schedule_to_close: timedelta = ..., heartbeat: timedelta | None = ...,
               retry: RetryPolicy = ...) -> R: ...


@overload
async def call(activity: Callable[[S, A], Awaitable[R]], arg: A, *, start_to_close: timedelta = ...,
               schedule_to_close: timedelta = ..., heartbeat: timedelta | None = ...,
               retry: RetryPolicy = ...) -> R: ...


async def call(activity: Callable[..., Awaitable[Any]], arg: Any = _NO_ARG, *, start_to_close: timedelta = CALL,
               schedule_to_close: timedelta = GIVE_UP, heartbeat: timedelta | None = None,
               retry: RetryPolicy = RETRY) -> Any:
    """Run the activity method ``activity`` (e.g. ``PaymentActivities.register_payment``) on a worker;
    refusals raise at once, outages retry with backoff until ``schedule_to_close``."""
    args = [] if arg is _NO_ARG else [arg]
    return await workflow.execute_activity_method(
        activity, args=args, start_to_close_timeout=start_to_close, schedule_to_close_timeout=schedule_to_close,
        heartbeat_timeout=heartbeat, retry_policy=retry)


async def local(activity: Callable[[S, A], Awaitable[R]], arg: A) -> R:
    """A fast in-process step (PostgreSQL) as a local activity: fewer round trips to the server."""
    result: R = await workflow.execute_local_activity_method(
        activity, args=[arg], start_to_close_timeout=LOCAL_CALL, schedule_to_close_timeout=LOCAL_GIVE_UP,
        retry_policy=RETRY)
    return result


async def signal(workflow_id: str, handler: Callable[[S, A], Any], arg: A) -> bool:
    """Signal another workflow (a parent or a child) through the receiver's handler reference
    (e.g. ``FulfillmentWorkflow.revise``). One that has already finished (a child done, an order
    closed) is not an error for the sender. Returns whether the signal was delivered."""
    try:
        await workflow.get_external_workflow_handle(workflow_id).signal(handler, arg)
    except ApplicationError as err:
        if err.type == "ExternalWorkflowExecutionNotFound" or "not found" in err.message:
            workflow.logger.info("signal to %s not delivered: it has finished", workflow_id)
            return False
        raise
    return True


class Wait(Protocol):
    """How a workflow (or a helper of it) waits: until ``done()`` or the timeout; True when done."""

    async def __call__(self, done: Callable[[], bool], timeout: timedelta | None = None) -> bool: ...


async def wait_for(done: Callable[[], bool], timeout: timedelta | None = None) -> bool:
    """The plain :class:`Wait`: ``workflow.wait_condition`` with a timeout that is not an error."""
    try:
        await workflow.wait_condition(done, timeout=timeout)
    except TimeoutError:
        return done()
    return True


def failure_type(err: BaseException) -> str | None:
    """The ``ApplicationError`` type behind a failed step (an activity, a child, or the error
    itself), e.g. ``OutOfStock``; None when it was not a refusal (a timeout, a cancellation)."""
    cause = err if isinstance(err, ApplicationError) else getattr(err, "cause", None)
    return cause.type if isinstance(cause, ApplicationError) else None


def failure_message(err: BaseException) -> str:
    """What went wrong, in the outside system's words: the message of the innermost refusal
    (through activity and child workflow wrappers), else the error itself."""
    if isinstance(err, ApplicationError):
        return err.message
    cause = getattr(err, "cause", None)
    while cause is not None and getattr(cause, "cause", None) is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    return str(getattr(cause, "message", None) or cause or err)
