"""Store POS (1C Retail-like) client: send tasks and reminders to a store's till.

Store behaviour after ``shared/reference/erp-pos.md`` ("Store POS behaviour in the source
cases"): the POS shows "assemble this order" / "cancel this reserve"; staff report back as
events posted to the task's ``callback_url`` (parsed with ``adapters.wire.pos.PosEvent``).

``Authorization: Bearer <token>``; the ``httpx.AsyncClient`` base URL is the POS root
(``.../pos``). Every side-effecting call is idempotent: tasks by ``task_id``,
notifications by ``message_id``, a cancel of a cancelled task is a no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from adapters.errors import ExternalRefusal
from adapters.http import request
from adapters.wire.pos import PosLine, PosTask, PosTaskKind, PosTaskState, PosTaskStatus

SYSTEM = "pos"


class PosClient:
    def __init__(self, http: httpx.AsyncClient, *, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"}

    async def _call(self, operation: str, method: str, url: str, **kwargs: Any) -> Any:
        resp = await request(self._http, SYSTEM, operation, method, url, headers=self._headers, **kwargs)
        if resp.status_code >= 400:
            code, message = _error(resp)
            raise ExternalRefusal(SYSTEM, operation, message, code=code)
        return resp.json()

    async def create_task(self, *, location_id: str, task: PosTask) -> None:
        """Put a task on the store's POS; a repeat with the same ``task.task_id`` is a no-op."""
        await self._call(
            "create_task",
            "POST",
            f"/v1/stores/{location_id}/tasks",
            json={
                "task_id": task.task_id,
                "kind": PosTaskKind(task.kind).value,
                "order_id": task.order_id,
                "order_number": task.order_number,
                "lines": [{"sku": ln.sku, "name": ln.name, "qty": ln.qty} for ln in task.lines],
                "due_at": task.due_at.isoformat() if task.due_at else None,
                "callback_url": task.callback_url,
                "customer": {"name": task.customer_name, "phone_masked": task.phone_masked},
                "note": task.note,
            },
        )

    async def cancel_task(self, *, location_id: str, task_id: str, reason: str) -> None:
        """Cancel a task (idempotent). Refused with code ``already_done`` once the goods
        were handed over or a return inspected."""
        await self._call("cancel_task", "POST", f"/v1/stores/{location_id}/tasks/{task_id}/cancel", json={"reason": reason})

    async def notify(self, *, location_id: str, message_id: str, text: str, task_id: str | None = None) -> None:
        """Show a reminder on the store's POS; idempotent by ``message_id``."""
        await self._call(
            "notify",
            "POST",
            f"/v1/stores/{location_id}/notifications",
            json={"id": message_id, "text": text, "task_id": task_id},
        )

    async def get_task(self, *, location_id: str, task_id: str) -> PosTaskState:
        t = await self._call("get_task", "GET", f"/v1/stores/{location_id}/tasks/{task_id}")
        return PosTaskState(
            task_id=t["task_id"],
            location_id=t["location_id"],
            kind=PosTaskKind(t["kind"]),
            status=PosTaskStatus(t["status"]),
            order_id=t["order_id"],
            order_number=t.get("order_number", ""),
            lines=tuple(PosLine(ln["sku"], ln.get("name", ""), int(ln["qty"])) for ln in t["lines"]),
            cancel_reason=t.get("cancel_reason"),
            updated_at=datetime.fromisoformat(t["updated_at"]) if t.get("updated_at") else None,
        )


def _error(resp: httpx.Response) -> tuple[str, str]:
    try:
        detail = resp.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return str(resp.status_code), f"HTTP {resp.status_code}: {resp.text[:200]}"
    if isinstance(detail, dict):
        return str(detail.get("code", resp.status_code)), str(detail.get("message", detail))
    return str(resp.status_code), str(detail)
