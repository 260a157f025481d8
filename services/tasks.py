"""Operator tasks: list, read, claim, complete.

Completing is a Temporal update (``complete_task``) on the workflow waiting for the decision; its
validator answers a bad decision at once and changes nothing. What a validator cannot look up
itself (the catalog, the stock at the task's store) this service adds to the decision first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from adapters.catalog import CatalogRepo
from adapters.ledger import Ledger
from adapters.tasks_repo import TaskConflict, TasksRepo
from contracts.tasks import SubstituteOffer, TaskAction, TaskDecision, TaskOutcome, TaskStatus
from services.errors import Conflict, Invalid, NotFound, ServiceError

log = structlog.get_logger("services.tasks")


@dataclass(frozen=True)
class Decision:
    action: TaskAction
    operator: str
    sku: str | None = None  # a substitute
    qty: int | None = None
    note: str = ""


class TaskService:
    def __init__(self, temporal: Client, engine: AsyncEngine) -> None:
        self.temporal = temporal
        self.tasks, self.catalog, self.ledger = TasksRepo(engine), CatalogRepo(engine), Ledger(engine)

    async def find(self, *, status: TaskStatus | None, assignee: str | None, kind: str | None, order_id: str | None,
                   limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        return await self.tasks.list(status=status.value if status else None, assignee=assignee, kind=kind,
                                     order_id=order_id, limit=limit, offset=offset)

    async def get(self, task_id: str) -> dict[str, Any]:
        row = await self.tasks.get(task_id)
        if row is None:
            raise NotFound("not_found", f"task_id: no task {task_id}", field="task_id")
        return row

    async def claim(self, task_id: str, operator: str) -> dict[str, Any]:
        try:
            return await self.tasks.claim(task_id, operator)
        except KeyError:
            raise NotFound("not_found", f"task_id: no task {task_id}", field="task_id") from None
        except TaskConflict as err:
            raise Conflict("task_taken" if err.status == "claimed" else "task_closed", f"task_id: {err}",
                           field="task_id") from err

    async def complete(self, task_id: str, decision: Decision) -> TaskOutcome:
        """Hand the decision to the waiting workflow; its outcome once applied. ``Conflict`` for a
        task closed or claimed by someone else, ``Invalid`` naming the field for a bad decision."""
        row = await self.get(task_id)
        if TaskStatus(row["status"]).is_closed:
            raise Conflict("task_closed", f"task_id: task {task_id} is already {row['status']}", field="task_id")
        if row["status"] == "claimed" and row["assignee"] not in (None, decision.operator):
            raise Conflict("task_taken", f"operator: task {task_id} is claimed by {row['assignee']}",
                           field="operator")
        offer = None
        if decision.action == TaskAction.substitute and decision.sku:
            info = (await self.catalog.skus([decision.sku])).get(decision.sku)
            if info is not None:
                avail = await self.ledger.availability([decision.sku], location_ids=[row["location_id"]]
                                                       if row["location_id"] else None)
                offer = SubstituteOffer(sku=decision.sku, name=info.name, unit_price=info.price,
                                        available=sum(a.available for a in avail))
        update = TaskDecision(task_id=task_id, action=decision.action, by=decision.operator, sku=decision.sku,
                              qty=decision.qty, note=decision.note, offer=offer)
        handle = self.temporal.get_workflow_handle(row["workflow_id"])
        try:
            outcome: TaskOutcome = await handle.execute_update("complete_task", update, result_type=TaskOutcome)
        except WorkflowUpdateFailedError as err:
            raise _refusal(err) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise Conflict("task_closed", f"task_id: the workflow {row['workflow_id']} no longer runs",
                               field="task_id") from err
            raise
        log.info("task.completed", task_id=task_id, action=decision.action.value, operator=decision.operator)
        return outcome


def _refusal(err: WorkflowUpdateFailedError) -> ServiceError:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        field = str(cause.details[0]) if cause.details else None
        if cause.type == "TaskClosed":
            return Conflict("task_closed", cause.message, field=field or "task_id")
        return Invalid("invalid_decision", cause.message, field=field)
    return Conflict("refused", str(cause or err))
