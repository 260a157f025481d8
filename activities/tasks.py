"""Operator task steps (PostgreSQL): open a task for a person, reassign it, close it."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.common import logger
from adapters.tasks_repo import TasksRepo
from contracts.tasks import TaskClose, TaskReassign, TaskRef, TaskSpec


@dataclass
class TaskActivities:
    tasks: TasksRepo

    @activity.defn
    async def open_task(self, spec: TaskSpec) -> TaskRef:
        ref = await self.tasks.open(spec)
        logger().info("task.opened", task_id=spec.task_id, kind=spec.kind.value, group=ref.group,
                      assignee=ref.assignee)
        return ref

    @activity.defn
    async def reassign_task(self, req: TaskReassign) -> str | None:
        assignee = await self.tasks.reassign(req.task_id)
        logger().info("task.reassigned", task_id=req.task_id, assignee=assignee, reason=req.reason)
        return assignee

    @activity.defn
    async def close_task(self, req: TaskClose) -> bool:
        closed = await self.tasks.close(req)
        logger().info("task.closed", task_id=req.task_id, status=req.status.value, changed=closed)
        return closed
