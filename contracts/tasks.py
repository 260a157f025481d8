"""Operator tasks: the shapes of a human step crossing the workflow / activity / API boundaries.

A workflow that needs a person opens a task (a row in the ``task`` table, written by an
activity), then waits on the ``complete_task`` Update with a timer. The API completes a task
by sending that Update to the task's ``workflow_id``; the Update's validator refuses a bad
decision synchronously (nothing changes), the handler returns what was done.

No I/O here: frozen dataclasses and enums only (safe inside workflows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from contracts.order import OrderLine


class TaskKind(StrEnum):
    substitution = "substitution"  # an item is missing at the store: substitute, remove or cancel
    assembly_late = "assembly_late"  # supervisor: a store is late with an assembly
    resource_failed = "resource_failed"  # no other location can take a late shipment: cancel or wait


class TaskStatus(StrEnum):
    open = "open"
    claimed = "claimed"
    done = "done"
    expired = "expired"

    @property
    def is_closed(self) -> bool:
        return self in (TaskStatus.done, TaskStatus.expired)


class TaskAction(StrEnum):
    substitute = "substitute"  # sku (+ qty): give the customer SKU X instead of the missing units
    remove = "remove"  # remove the missing units from the order
    cancel = "cancel"  # cancel the whole order
    wait = "wait"  # give the store more time
    resource = "resource"  # move the shipment to another location now


#: what an operator may answer to each kind of task
ACTIONS: dict[TaskKind, tuple[TaskAction, ...]] = {
    TaskKind.substitution: (TaskAction.substitute, TaskAction.remove, TaskAction.cancel),
    TaskKind.assembly_late: (TaskAction.wait, TaskAction.resource),
    TaskKind.resource_failed: (TaskAction.wait, TaskAction.cancel),
}


@dataclass(frozen=True)
class TaskSpec:
    """What a workflow asks a person. ``task_id`` is deterministic (workflow id + kind + n):
    opening the same task twice creates one row."""

    task_id: str
    kind: TaskKind
    order_id: str
    workflow_id: str
    title: str
    due_at: datetime
    location_id: str | None = None
    priority: int = 50  # 0 = most urgent
    payload: dict[str, Any] = field(default_factory=dict)
    # what assignment rules look at
    channel: str = ""
    amount: int = 0
    region: str = ""


@dataclass(frozen=True)
class TaskRef:
    task_id: str
    group: str
    assignee: str | None


@dataclass(frozen=True)
class TaskClose:
    task_id: str
    status: TaskStatus  # done | expired
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskReassign:
    task_id: str
    reason: str = "timeout"


@dataclass(frozen=True)
class SubstituteOffer:
    """What the API found out about a substitute SKU before sending the decision (validators are
    deterministic and cannot read the catalog or the ledger themselves)."""

    sku: str
    name: str
    unit_price: int
    available: int  # units available at the task's location now


@dataclass(frozen=True)
class TaskDecision:
    """The argument of the ``complete_task`` Update."""

    task_id: str
    action: TaskAction
    by: str = "operator"
    sku: str | None = None
    qty: int | None = None
    note: str = ""
    #: filled by the API for ``substitute``: None means the SKU is not in the catalog
    offer: SubstituteOffer | None = None


@dataclass(frozen=True)
class TaskOutcome:
    """What the Update returns: the decision applied and its consequences, in words and numbers."""

    task_id: str
    action: TaskAction
    message: str
    total: int | None = None
    extra_payment_url: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenTask:
    """A task a workflow is waiting on (``open_tasks`` query)."""

    task_id: str
    kind: TaskKind
    actions: list[TaskAction]
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    location_id: str | None = None


@dataclass(frozen=True)
class ShortageReport:
    """A fulfillment child tells its order: the store is missing units and no other location can
    take the whole shipment; the order decides (operator) and answers with ``revise``."""

    shipment_id: str
    location_id: str
    sku: str
    missing_qty: int
    lines: list[OrderLine]
    reservation_keys: list[str]
    pos_task_id: str = ""


@dataclass(frozen=True)
class ShipmentRevision:
    """The order's answer to a shortage or an edit: the shipment's new lines and reservations."""

    n: int
    lines: list[OrderLine]
    reservation_keys: list[str]
    note: str
    #: an operator's edit: the old POS task was cancelled, the store gets a new one
    new_task: bool = False


def task_id_for(workflow_id: str, kind: TaskKind, n: int) -> str:
    return f"{workflow_id}.{kind.value}.{n}"


def workflow_of(task_id: str) -> str:
    return task_id.split(".", 1)[0]
