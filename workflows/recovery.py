"""Park a failed step for a person instead of failing the workflow; resume it on their say-so.

Use inside a workflow::

    self._recovery = Recovery()
    ...
    try:
        booking = await self._recovery.run("courier_booking", lambda: call(CourierActivities.book_shipment, req, ...),
                                           on_park=self._parked, on_resume=self._resumed,
                                           abandon=lambda: self._cancel is not None)
    except StepAbandoned:
        return  # cancelled while parked

and a ``retry`` update/signal that calls ``self._recovery.resume(req)``. Only activity failures park
(refusals at once, outages once their ``schedule_to_close`` runs out); a bug in workflow code still
fails the workflow task so it can be fixed and replayed.
"""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError
from workflows.common import failure_message, failure_type

with workflow.unsafe.imports_passed_through():
    from contracts.recovery import ParkedStep, RetryRequest

T = TypeVar("T")


class StepAbandoned(Exception):
    """The parked step was given up (e.g. the order was cancelled while it waited)."""


class Recovery:
    """The parked step of one workflow (at most one at a time) and the operator's retry."""

    def __init__(self) -> None:
        self.parked: ParkedStep | None = None
        self._retry: RetryRequest | None = None
        self.retries = 0

    async def run(self, step: str, attempt: Callable[[], Awaitable[T]], *,
                  on_park: Callable[[ParkedStep], Awaitable[None]],
                  on_resume: Callable[[ParkedStep, RetryRequest], Awaitable[None]],
                  abandon: Callable[[], bool] = lambda: False,
                  wait: Callable[[Callable[[], bool]], Awaitable[object]] = workflow.wait_condition) -> T:
        """Run ``attempt``; on an activity failure park, wait for ``resume`` (or ``abandon``), try again.
        ``wait``: how the workflow waits (an order's wait applies its inbox meanwhile)."""
        while True:
            try:
                return await attempt()
            except ActivityError as err:
                parked = ParkedStep(step=step, workflow_id=workflow.info().workflow_id, message=failure_message(err),
                                    error_type=_error_type(err), since=workflow.now(), retries=self.retries)
            self.parked = parked
            await on_park(parked)
            await wait(lambda: self._retry is not None or abandon())
            req, self._retry = self._retry, None
            self.parked = None
            if req is None:
                raise StepAbandoned(step)
            self.retries += 1
            await on_resume(parked, req)

    def resume(self, req: RetryRequest) -> bool:
        """Called from the workflow's retry handler: whether a parked step will run again."""
        if self.parked is None:
            return False
        self._retry = req
        return True


def _error_type(err: ActivityError) -> str | None:
    """The refusal's type, or the class of what else stopped the step (e.g. ``TimeoutError``)."""
    cause = err.cause
    return failure_type(err) or (type(cause).__name__ if cause is not None else None)
