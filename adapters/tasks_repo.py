"""Operator tasks in PostgreSQL (the ``task`` table): open, claim, reassign, close, list.

Every change is one statement guarded by the current status, so two operators claiming at
once, or a workflow closing a task an operator is claiming, can never both win; opening and
closing are idempotent by task id (a retried activity changes nothing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.assignment import GROUPS, TaskContext, assign, next_in_group
from contracts.tasks import TaskClose, TaskRef, TaskSpec, TaskStatus

COLUMNS = ("id, kind, order_id, workflow_id, location_id, title, assignee, grp, priority, due_at, payload, "
           "result, status, created_at, updated_at")


class TaskConflict(Exception):
    """The task is not in a state that allows the change (claimed by someone else, closed)."""

    def __init__(self, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class TasksRepo:
    engine: AsyncEngine

    async def open(self, spec: TaskSpec) -> TaskRef:
        """Insert the task with its assignee (rules + round-robin in the group); a repeat returns the row."""
        async with self.engine.begin() as conn:
            existing = (await conn.execute(text("SELECT grp, assignee FROM task WHERE id = :id"),
                                           {"id": spec.task_id})).first()
            if existing is not None:
                return TaskRef(spec.task_id, existing.grp, existing.assignee)
            ctx = TaskContext(kind=spec.kind.value, channel=spec.channel, amount=spec.amount, region=spec.region)
            group = assign(ctx, 0).group
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:g))"), {"g": f"task-group:{group}"})
            turn = (await conn.execute(text("SELECT count(*) FROM task WHERE grp = :g"), {"g": group})).scalar_one()
            chosen = assign(ctx, turn)
            payload = {**spec.payload, "assignment": chosen.reason}
            row = (await conn.execute(text(
                """INSERT INTO task (id, kind, order_id, workflow_id, location_id, title, assignee, grp, priority,
                                     due_at, payload, result, status, created_at, updated_at)
                   VALUES (:id, :kind, :order_id, :wf, :loc, :title, :assignee, :grp, :priority, :due_at,
                           CAST(:payload AS jsonb), NULL, 'open', now(), now())
                   ON CONFLICT (id) DO NOTHING RETURNING id"""),
                {"id": spec.task_id, "kind": spec.kind.value, "order_id": spec.order_id, "wf": spec.workflow_id,
                 "loc": spec.location_id, "title": spec.title, "assignee": chosen.assignee, "grp": chosen.group,
                 "priority": spec.priority, "due_at": spec.due_at,
                 "payload": json.dumps(payload, ensure_ascii=False, default=str)})).first()
            if row is None:  # a concurrent attempt won
                again = (await conn.execute(text("SELECT grp, assignee FROM task WHERE id = :id"),
                                            {"id": spec.task_id})).one()
                return TaskRef(spec.task_id, again.grp, again.assignee)
        return TaskRef(spec.task_id, chosen.group, chosen.assignee)

    async def close(self, req: TaskClose) -> bool:
        """Close an open or claimed task with its result; closing a closed task changes nothing."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(text(
                """UPDATE task SET status = :status, result = CAST(:result AS jsonb), updated_at = now()
                   WHERE id = :id AND status IN ('open', 'claimed') RETURNING id"""),
                {"id": req.task_id, "status": req.status.value,
                 "result": json.dumps(req.result, ensure_ascii=False, default=str)})).first()
        return row is not None

    async def reassign(self, task_id: str) -> str | None:
        """Nobody answered in time: give the task to the next operator of its group, unclaimed."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(text("SELECT grp, assignee, status FROM task WHERE id = :id FOR UPDATE"),
                                      {"id": task_id})).first()
            if row is None or TaskStatus(row.status).is_closed:
                return None
            nxt = next_in_group(GROUPS.get(row.grp, ()), row.assignee)
            await conn.execute(text(
                """UPDATE task SET assignee = :a, status = 'open', updated_at = now(),
                          payload = payload || jsonb_build_object('reassigned_from', CAST(:prev AS text))
                   WHERE id = :id"""), {"a": nxt, "prev": row.assignee, "id": task_id})
        return nxt

    async def claim(self, task_id: str, operator: str) -> dict[str, Any]:
        """open → claimed by ``operator`` (a repeat by the same operator is fine)."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(text(
                f"""UPDATE task SET status = 'claimed', assignee = :op, updated_at = now()
                    WHERE id = :id AND (status = 'open' OR (status = 'claimed' AND assignee = :op))
                    RETURNING {COLUMNS}"""), {"id": task_id, "op": operator})).first()
            if row is not None:
                return dict(row._mapping)
            current = (await conn.execute(text("SELECT status, assignee FROM task WHERE id = :id"),
                                          {"id": task_id})).first()
        if current is None:
            raise KeyError(task_id)
        if current.status == "claimed":
            raise TaskConflict(f"task is already claimed by {current.assignee}", current.status)
        raise TaskConflict(f"task is already {current.status}", current.status)

    async def get(self, task_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text(f"SELECT {COLUMNS} FROM task WHERE id = :id"), {"id": task_id})).first()
        return dict(row._mapping) if row else None

    async def list(self, *, status: str | None = None, assignee: str | None = None, kind: str | None = None,
                   order_id: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        where: list[str] = ["TRUE"]
        params: dict[str, object] = {"limit": limit, "offset": offset}
        for col, value in (("status", status), ("assignee", assignee), ("kind", kind), ("order_id", order_id)):
            if value:
                where.append(f"{col} = :{col}")
                params[col] = value
        cond = " AND ".join(where)
        async with self.engine.connect() as conn:
            total = (await conn.execute(text(f"SELECT count(*) FROM task WHERE {cond}"), params)).scalar_one()
            rows = await conn.execute(text(
                f"""SELECT {COLUMNS} FROM task WHERE {cond}
                    ORDER BY priority, due_at, id LIMIT :limit OFFSET :offset"""), params)
            return [dict(r._mapping) for r in rows], total


def row_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["group"] = out.pop("grp")
    for key in ("due_at", "created_at", "updated_at"):
        if isinstance(out.get(key), datetime):
            out[key] = out[key].isoformat()
    return out
