"""Operator tasks: list, read, claim, complete. Thin: rows from PostgreSQL, completion is a
Temporal Update (``complete_task``) on the workflow waiting for the decision; its validator
answers a bad decision synchronously (HTTP 422 naming the field, 409 for a closed task) and
changes nothing."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from adapters.tasks_repo import TaskConflict, TasksRepo, row_json
from api.deps import CatalogDep, LedgerDep, TemporalDep
from api.errors import ApiError
from api.schemas import Strict
from contracts.tasks import SubstituteOffer, TaskAction, TaskDecision, TaskKind, TaskOutcome, TaskStatus

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
log = structlog.get_logger("api.tasks")

OPERATOR = r"^[A-Za-z0-9._-]{1,64}$"


def _tasks(request: Request) -> TasksRepo:
    return TasksRepo(request.app.state.engine)


TasksDep = Annotated[TasksRepo, Depends(_tasks)]


class ClaimIn(Strict):
    operator: str = Field(pattern=OPERATOR, description="the operator's login")


class DecisionIn(Strict):
    action: TaskAction
    operator: str = Field(default="operator", pattern=OPERATOR)
    sku: str | None = Field(default=None, min_length=1, max_length=64, description="substitute SKU")
    qty: int | None = Field(default=None, ge=1, le=99, description="substitute units (default: the missing ones)")
    note: str = Field(default="", max_length=500)


@router.get("")
async def list_tasks(
    tasks: TasksDep,
    status: Annotated[TaskStatus | None, Query()] = None,
    assignee: Annotated[str | None, Query(pattern=OPERATOR)] = None,
    kind: Annotated[TaskKind | None, Query()] = None,
    order_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    items, total = await tasks.list(status=status.value if status else None, assignee=assignee,
                                    kind=kind.value if kind else None, order_id=order_id, limit=limit, offset=offset)
    return {"items": [row_json(r) for r in items], "total": total, "limit": limit, "offset": offset}


async def _row(tasks: TasksRepo, task_id: str) -> dict[str, Any]:
    row = await tasks.get(task_id)
    if row is None:
        raise ApiError(404, "not_found", f"task_id: no task {task_id}", field="task_id")
    return row


@router.get("/{task_id}")
async def get_task(task_id: str, tasks: TasksDep) -> dict[str, Any]:
    return row_json(await _row(tasks, task_id))


@router.post("/{task_id}/claim")
async def claim_task(task_id: str, body: ClaimIn, tasks: TasksDep) -> dict[str, Any]:
    try:
        return row_json(await tasks.claim(task_id, body.operator))
    except KeyError:
        raise ApiError(404, "not_found", f"task_id: no task {task_id}", field="task_id") from None
    except TaskConflict as err:
        raise ApiError(409, "task_taken" if err.status == "claimed" else "task_closed", f"task_id: {err}",
                       field="task_id") from err


@router.post("/{task_id}/complete")
async def complete_task(task_id: str, body: DecisionIn, tasks: TasksDep, temporal: TemporalDep,
                        catalog: CatalogDep, ledger: LedgerDep) -> dict[str, Any]:
    row = await _row(tasks, task_id)
    if TaskStatus(row["status"]).is_closed:
        raise ApiError(409, "task_closed", f"task_id: task {task_id} is already {row['status']}", field="task_id")
    if row["status"] == "claimed" and row["assignee"] not in (None, body.operator):
        raise ApiError(409, "task_taken", f"operator: task {task_id} is claimed by {row['assignee']}",
                       field="operator")
    offer = None
    if body.action == TaskAction.substitute and body.sku:
        # what validators cannot look up themselves: the catalog and the stock at the task's store
        info = (await catalog.skus([body.sku])).get(body.sku)
        if info is not None:
            avail = await ledger.availability([body.sku], location_ids=[row["location_id"]] if row["location_id"] else None)
            offer = SubstituteOffer(sku=body.sku, name=info.name, unit_price=info.price,
                                    available=sum(a.available for a in avail))
    decision = TaskDecision(task_id=task_id, action=body.action, by=body.operator, sku=body.sku, qty=body.qty,
                            note=body.note, offer=offer)
    handle = temporal.get_workflow_handle(row["workflow_id"])
    try:
        outcome: TaskOutcome = await handle.execute_update("complete_task", decision, result_type=TaskOutcome)
    except WorkflowUpdateFailedError as err:
        raise _refusal(err) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(409, "task_closed", f"task_id: the workflow {row['workflow_id']} no longer runs",
                           field="task_id") from err
        raise
    log.info("task.completed", task_id=task_id, action=body.action.value, operator=body.operator)
    return {"outcome": dataclasses.asdict(outcome) | {"action": outcome.action.value},
            "task": row_json(await _row(tasks, task_id))}


def _refusal(err: WorkflowUpdateFailedError) -> ApiError:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        field = str(cause.details[0]) if cause.details else None
        if cause.type == "TaskClosed":
            return ApiError(409, "task_closed", cause.message, field=field or "task_id")
        return ApiError(422, "invalid_decision", cause.message, field=field)
    return ApiError(409, "refused", str(cause or err))
