"""Stand-ins for the people-in-the-loop tests: the World of fakes.py plus operator tasks and a bank
that gives each registered payment its own mdOrder (a payment of the difference is a second one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from temporalio import activity

from fakes import World
from domain.assignment import GROUPS, TaskContext, assign, next_in_group
from contracts.steps import PaymentRegistered, RegisterPayment
from contracts.tasks import TaskClose, TaskReassign, TaskRef, TaskSpec


@dataclass
class TaskRecord:
    spec: TaskSpec
    group: str
    assignee: str | None
    status: str = "open"
    result: dict[str, Any] = field(default_factory=dict)
    reassigned: int = 0


@dataclass
class PeopleWorld(World):
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    registered: dict[str, int] = field(default_factory=dict)  # order number -> amount

    def task_of(self, kind: str) -> TaskRecord | None:
        found = [t for t in self.tasks.values() if t.spec.kind.value == kind]
        return found[-1] if found else None

    def activities(self) -> list[Callable[..., Any]]:
        w = self
        base = [a for a in World.activities(self)
                if getattr(a, "__temporal_activity_definition").name != "register_payment"]

        @activity.defn(name="register_payment")
        async def register_payment(req: RegisterPayment) -> PaymentRegistered:
            w.calls["register_payment"] += 1
            assert sum(l.amount for l in req.lines) + req.delivery_amount == req.amount
            w.registered[req.order_number] = req.amount
            md = "md-1" if "~" not in req.order_number else f"md-{req.order_number.split('~')[1]}"
            return PaymentRegistered(md_order=md, form_url=f"http://bank/pay?mdOrder={md}")

        @activity.defn(name="open_task")
        async def open_task(spec: TaskSpec) -> TaskRef:
            if spec.task_id not in w.tasks:
                chosen = assign(TaskContext(kind=spec.kind.value, channel=spec.channel, amount=spec.amount,
                                            region=spec.region), len(w.tasks))
                w.tasks[spec.task_id] = TaskRecord(spec, chosen.group, chosen.assignee)
            t = w.tasks[spec.task_id]
            return TaskRef(spec.task_id, t.group, t.assignee)

        @activity.defn(name="reassign_task")
        async def reassign_task(req: TaskReassign) -> str | None:
            t = w.tasks[req.task_id]
            t.assignee = next_in_group(GROUPS.get(t.group, ()), t.assignee)
            t.reassigned += 1
            return t.assignee

        @activity.defn(name="close_task")
        async def close_task(req: TaskClose) -> bool:
            t = w.tasks[req.task_id]
            if t.status in ("done", "expired"):
                return False
            t.status, t.result = req.status.value, dict(req.result)
            return True

        return base + [register_payment, open_task, reassign_task, close_task]
