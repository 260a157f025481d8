"""A person in the loop: open a task, wait for the operator's decision (a Temporal Update) with a
timer, reassign when nobody answers, fall back to a configured default at the deadline.

``TaskBoard`` belongs to one workflow run (deterministic state only). The workflow exposes

* ``complete_task`` (Update): its validator calls :meth:`TaskBoard.validate` (and any check of its
  own), its handler :meth:`TaskBoard.complete`, which hands the decision to the coroutine waiting in
  :meth:`TaskBoard.ask` and returns the :class:`~contracts.tasks.TaskOutcome` once it is applied;
* ``open_tasks`` (Query): :meth:`TaskBoard.listing`.

The coroutine that asked applies the decision, then calls :meth:`TaskBoard.finish` (closes the row,
answers the Update) or :meth:`TaskBoard.refuse` (the decision could not be applied: the Update fails
with the reason, the task stays open, nothing changed).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Callable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.tasks import TaskActivities
    from contracts.tasks import (
        ACTIONS,
        OpenTask,
        TaskAction,
        TaskClose,
        TaskDecision,
        TaskKind,
        TaskOutcome,
        TaskReassign,
        TaskSpec,
        TaskStatus,
        task_id_for,
    )

from workflows.common import Wait, call, wait_for

#: ApplicationError types the API maps to HTTP statuses
TASK_CLOSED = "TaskClosed"  # 409
INVALID_DECISION = "InvalidDecision"  # 422


def invalid(field: str, message: str) -> ApplicationError:
    """A refused decision naming the field (details[0]) — the API answers 422 with that field."""
    return ApplicationError(f"{field}: {message}", field, type=INVALID_DECISION, non_retryable=True)


class TaskBoard:
    def __init__(self) -> None:
        self.open: dict[str, OpenTask] = {}
        self.decisions: dict[str, TaskDecision] = {}
        self.outcomes: dict[str, TaskOutcome] = {}
        self.refusals: dict[str, str] = {}
        self.counts: Counter[str] = Counter()

    # ---------------------------------------------------------------- asking
    def next_id(self, kind: TaskKind) -> str:
        self.counts[kind.value] += 1
        return task_id_for(workflow.info().workflow_id, kind, self.counts[kind.value])

    async def ask(self, spec: TaskSpec, *, default: TaskAction, reassign_after: timedelta | None,
                  stop: Callable[[], bool], wait: Wait = wait_for) -> TaskDecision | None:
        """Open the task and wait for a decision until ``spec.due_at``; reassign once after
        ``reassign_after``. Returns the operator's decision, the default one at the deadline
        (``by="timeout"``), or None when ``stop()`` became true (the task is closed as expired).
        ``wait``: how the workflow waits (an order's wait applies its inbox meanwhile)."""
        # known to the workflow before the row is visible to operators: an operator who completes the
        # task the moment it appears must not be told it is unknown
        self.open[spec.task_id] = OpenTask(task_id=spec.task_id, kind=spec.kind, actions=list(ACTIONS[spec.kind]),
                                           due_at=spec.due_at, payload=dict(spec.payload),
                                           location_id=spec.location_id)
        await call(TaskActivities.open_task, spec)
        reassign_at = workflow.now() + reassign_after if reassign_after else None
        while True:
            if spec.task_id in self.decisions:
                return self.decisions[spec.task_id]
            if stop():
                await self.close(spec.task_id, TaskStatus.expired, {"outcome": "no longer needed"})
                return None
            now = workflow.now()
            if now >= spec.due_at:
                decision = TaskDecision(task_id=spec.task_id, action=default, by="timeout",
                                        note="nobody answered before the deadline: the default applies")
                self.decisions[spec.task_id] = decision
                return decision
            until = spec.due_at if reassign_at is None or reassign_at <= now else min(reassign_at, spec.due_at)
            if not await wait(lambda: spec.task_id in self.decisions or stop(), until - now):
                if reassign_at is not None and workflow.now() >= reassign_at and workflow.now() < spec.due_at:
                    reassign_at = None
                    await call(TaskActivities.reassign_task, TaskReassign(task_id=spec.task_id))
                    self.on_reassigned(spec.task_id)

    def on_reassigned(self, task_id: str) -> None:  # a hook for the timeline
        pass

    async def finish(self, decision: TaskDecision, outcome: TaskOutcome) -> None:
        status = TaskStatus.expired if decision.by == "timeout" else TaskStatus.done
        await self.close(decision.task_id, status, {
            "action": decision.action.value, "by": decision.by, "sku": decision.sku, "qty": decision.qty,
            "note": decision.note, "message": outcome.message, **outcome.data})
        self.outcomes[decision.task_id] = outcome

    def refuse(self, decision: TaskDecision, message: str) -> None:
        """The decision could not be applied (e.g. the substitute sold out meanwhile): the Update
        fails with ``message`` and the task stays open for another answer."""
        self.refusals[decision.task_id] = message
        self.decisions.pop(decision.task_id, None)

    async def close(self, task_id: str, status: TaskStatus, result: dict[str, object]) -> None:
        self.open.pop(task_id, None)
        await call(TaskActivities.close_task, TaskClose(task_id=task_id, status=status, result=result))

    async def close_all(self, why: str) -> None:
        for task_id in list(self.open):
            if task_id not in self.decisions:
                await self.close(task_id, TaskStatus.expired, {"outcome": why})

    # ---------------------------------------------------------------- the Update
    def validate(self, d: TaskDecision) -> OpenTask:
        task = self.open.get(d.task_id)
        if task is None or d.task_id in self.decisions:
            raise ApplicationError(f"task_id: task {d.task_id} is not open (already done, expired or unknown)",
                                   "task_id", type=TASK_CLOSED, non_retryable=True)
        if d.action not in task.actions:
            raise invalid("action", f"{d.action.value!r} is not an answer to a {task.kind.value} task; "
                                    f"expected one of {', '.join(a.value for a in task.actions)}")
        return task

    async def complete(self, d: TaskDecision) -> TaskOutcome:
        self.refusals.pop(d.task_id, None)
        self.decisions[d.task_id] = d
        await workflow.wait_condition(lambda: d.task_id in self.outcomes or d.task_id in self.refusals)
        if d.task_id in self.refusals:
            raise invalid("sku" if d.action == TaskAction.substitute else "action", self.refusals.pop(d.task_id))
        return self.outcomes[d.task_id]

    def listing(self) -> list[OpenTask]:
        return list(self.open.values())

    # ---------------------------------------------------------------- tasks nobody blocks on
    async def post(self, spec: TaskSpec) -> None:
        """Open a task without waiting: the workflow goes on and looks at :meth:`pending` when woken."""
        # known to the workflow before the row is visible to operators: an operator who completes the
        # task the moment it appears must not be told it is unknown
        self.open[spec.task_id] = OpenTask(task_id=spec.task_id, kind=spec.kind, actions=list(ACTIONS[spec.kind]),
                                           due_at=spec.due_at, payload=dict(spec.payload),
                                           location_id=spec.location_id)
        await call(TaskActivities.open_task, spec)

    def pending(self) -> list[TaskDecision]:
        """Decisions that arrived and are not applied yet."""
        return [d for t, d in self.decisions.items() if t in self.open and t not in self.outcomes]
