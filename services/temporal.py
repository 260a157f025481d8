"""Talking to running workflows the same way everywhere: an update's refusal becomes a
:class:`~services.errors.Conflict` (or :class:`~services.errors.Invalid` when it names a field the
caller got wrong), a workflow that does not run becomes :class:`~services.errors.NotFound`."""

from __future__ import annotations

from typing import Any, Awaitable, TypeVar

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from services.errors import Conflict, Invalid, NotFound, ServiceError

T = TypeVar("T")

#: ApplicationError types a workflow's validator uses for a request the caller got wrong (→ 422)
INVALID_TYPES = ("InvalidDecision",)


def refusal(err: WorkflowUpdateFailedError, code: str, **extra: Any) -> ServiceError:
    """The workflow said no: its own message; a field named in the refusal's details goes along."""
    cause = err.cause
    if not isinstance(cause, ApplicationError):
        return Conflict(code, str(cause or err), **extra)
    field = str(cause.details[0]) if cause.details else None
    if cause.type in INVALID_TYPES:
        return Invalid(code, cause.message, field=field, **extra)
    return Conflict(code, cause.message, field=field, **extra)


async def run_update(call: Awaitable[T], *, refused: str, missing: NotFound, **extra: Any) -> T:
    """Await ``call`` (an update on a running workflow): its refusal as ``refused``; ``missing`` when no
    such workflow runs."""
    try:
        return await call
    except WorkflowUpdateFailedError as err:
        raise refusal(err, refused, **extra) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise missing from err
        raise
