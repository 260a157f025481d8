"""Outside events wait in an inbox until the workflow's main loop applies them, one at a time.

The rule of the house (samples-python's *safe message handlers*, taken one step further): a signal
or update handler validates its message, puts an event in the inbox and returns; an update that
needs an answer waits on its :class:`Reply`, which the main loop fills once it has applied the
event. Nothing else is done in a handler, so no two pieces of workflow code ever interleave on one
order: every event is applied against the state at the moment the loop takes it, and "a cancel
and a bank approval arriving together" has one outcome by construction (whichever is applied
second sees what the first did).

Some events start a process of their own that waits too (an operator's edit waits for the stores
to stop, a shortage waits for an operator's decision). While one runs, the loop keeps applying the
quick events (a cancel, a bank callback, a shipment's news: what the running process may be
waiting for), and keeps the events that start another process for later, in order
(the ``may_apply`` of :meth:`Inbox.take`).

There is no ``asyncio.Lock``: the samples use one to serialise handlers that do work; here only
the main loop applies events, so there is nothing to serialise.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from typing import Awaitable, Callable, Generic, TypeVar, cast

from temporalio import workflow

T = TypeVar("T")


E = TypeVar("E")


class Reply(Generic[T]):
    """The answer slot of one update: the handler awaits :meth:`result`, the main loop fills it."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self.done = False

    def ok(self, value: T) -> None:
        if not self.done:
            self._value, self.done = value, True

    def fail(self, error: BaseException) -> None:
        if not self.done:
            self._error, self.done = error, True

    async def result(self) -> T:
        await workflow.wait_condition(lambda: self.done)
        if self._error is not None:
            raise self._error
        return cast(T, self._value)  # done without an error: ok() set it


class Inbox(Generic[E]):
    """Events in arrival order, and the one way the workflow waits: :meth:`wait` applies them
    (``apply``, one at a time, those ``may_apply`` lets through now) until the caller's condition holds."""

    def __init__(self, apply: Callable[[E], Awaitable[None]], may_apply: Callable[[E], bool] = lambda _: True) -> None:
        self._events: deque[E] = deque()
        self._apply, self._may_apply = apply, may_apply

    async def wait(self, done: Callable[[], bool], timeout: timedelta | None = None) -> bool:
        """Wait until ``done()`` or the timeout, applying the events meanwhile; True when done."""
        deadline = None if timeout is None else workflow.now() + timeout
        while True:
            while (event := self.take(self._may_apply)) is not None:
                await self._apply(event)
            if done():
                return True
            left = None if deadline is None else deadline - workflow.now()
            if left is not None and left <= timedelta(0):
                return False
            try:
                await workflow.wait_condition(lambda: self.ready(self._may_apply) or done(), timeout=left)
            except TimeoutError:
                return done()

    def put(self, event: E) -> None:
        self._events.append(event)

    def ready(self, may_apply: Callable[[E], bool]) -> bool:
        """Whether :meth:`take` has something for the loop now."""
        return any(may_apply(e) for e in self._events)

    def take(self, may_apply: Callable[[E], bool]) -> E | None:
        """The first event the loop may apply now (e.g. not one that starts a process while another
        runs). The others keep their order."""
        for i, event in enumerate(self._events):
            if may_apply(event):
                del self._events[i]
                return event
        return None

    def __len__(self) -> int:
        return len(self._events)
