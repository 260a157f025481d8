"""Operator tasks: list, read, claim, complete. HTTP in and out only (``services.tasks``): completing
is a Temporal Update on the workflow waiting for the decision; its validator answers a bad decision
synchronously (HTTP 422 naming the field, 409 for a closed task) and changes nothing."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from adapters.tasks_repo import row_json
from api.deps import TaskServiceDep
from api.schemas import Strict
from contracts.tasks import TaskAction, TaskKind, TaskStatus
from services.tasks import Decision

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

OPERATOR = r"^[A-Za-z0-9._-]{1,64}$"


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
    tasks: TaskServiceDep,
    status: Annotated[TaskStatus | None, Query()] = None,
    assignee: Annotated[str | None, Query(pattern=OPERATOR)] = None,
    kind: Annotated[TaskKind | None, Query()] = None,
    order_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    items, total = await tasks.find(status=status, assignee=assignee, kind=kind.value if kind else None,
                                    order_id=order_id, limit=limit, offset=offset)
    return {"items": [row_json(r) for r in items], "total": total, "limit": limit, "offset": offset}


@router.get("/{task_id}")
async def get_task(task_id: str, tasks: TaskServiceDep) -> dict[str, Any]:
    return row_json(await tasks.get(task_id))


@router.post("/{task_id}/claim")
async def claim_task(task_id: str, body: ClaimIn, tasks: TaskServiceDep) -> dict[str, Any]:
    return row_json(await tasks.claim(task_id, body.operator))


@router.post("/{task_id}/complete")
async def complete_task(task_id: str, body: DecisionIn, tasks: TaskServiceDep) -> dict[str, Any]:
    outcome = await tasks.complete(task_id, Decision(action=body.action, operator=body.operator, sku=body.sku,
                                                     qty=body.qty, note=body.note))
    return {"outcome": dataclasses.asdict(outcome) | {"action": outcome.action.value},
            "task": row_json(await tasks.get(task_id))}
