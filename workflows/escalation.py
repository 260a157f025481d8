"""People and timers around a store's assembly: the escalation ladder of one shipment.

Measured from the moment the POS task is given to the store:

1. the assembly SLA passes (per location: 2 h ship-from-store, 30 min click & collect by
   default) → a reminder on the store's POS;
2. a further interval (``escalate_after_minutes``, default half the SLA, at least 15 min:
   ``domain.shortages.ladder_step``) →
   a supervisor task "store MSK-014 is late with order …" (answers: ``wait`` — give the store
   one more interval —, or ``resource`` — move the shipment now);
3. one more interval → the shipment moves to another location (the first reservation
   released, the goods held there, a new POS task there, the old one cancelled), or, when no
   single other location can take it, an operator task "cancel or wait" (default: wait, the
   ladder starts again).

``EscalationLadder`` is a helper of ``FulfillmentWorkflow`` (composed, like ``TaskBoard`` and
``Recovery``): it keeps the ladder's state and its tasks, and acts on the shipment only through
the :class:`ShipmentPorts` it is given. Every step is reported to the order's timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Awaitable, Callable, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.pos import PosActivities
    from contracts.order import CancelRequest, ShipmentState
    from contracts.steps import StoreMessage
    from contracts.tasks import OpenTask, TaskAction, TaskDecision, TaskKind, TaskOutcome, TaskSpec
    from contracts.fulfillment import FulfillmentInput
    from domain.shortages import ladder_step

from workflows.common import call
from workflows.human import TaskBoard


class Report(Protocol):
    async def __call__(self, state: ShipmentState, message: str, at: datetime | None = None,
                       **data: object) -> None: ...


@dataclass(frozen=True)
class ShipmentPorts:
    """What the ladder may do to its shipment."""

    shipment: Callable[[], FulfillmentInput]  # as it is now (a move or a revision changes it)
    task_id: Callable[[], str]  # the store's POS task
    report: Report  # a line on the order's timeline
    move: Callable[[str], Awaitable[bool]]  # to another location (continues as new); False: nowhere
    cancel_order: Callable[[CancelRequest], Awaitable[None]]


class EscalationLadder:
    def __init__(self, ports: ShipmentPorts) -> None:
        self.ports = ports
        self.board = TaskBoard()
        self.level = 0  # 0 waiting for the SLA, 1 reminded, 2 supervisor asked, 3 operator asked
        self.next_at: datetime | None = None
        self.started_at: datetime | None = None
        self.reminders = 0
        self.operator_task: str | None = None

    # ------------------------------------------------------------------ timers
    def start(self) -> None:
        """(Re)start the ladder from its first rung: the SLA counts from now."""
        self.started_at = self.started_at or workflow.now()
        self.level, self.next_at = 0, workflow.now() + self._sla()

    def pause(self) -> None:
        """No store reminders while the customer or an operator is asked (a shortage, an edit)."""
        self.next_at = None

    def until_next(self) -> timedelta | None:
        if self.next_at is None:
            return None
        return max(self.next_at - workflow.now(), timedelta(seconds=1))

    def _sla(self) -> timedelta:
        return timedelta(minutes=self.ports.shipment().assembly_sla_minutes)

    def _step(self) -> timedelta:
        s = self.ports.shipment()
        return ladder_step(s.assembly_sla_minutes, s.escalate_after_minutes)

    def _late_minutes(self) -> int:
        return int((workflow.now() - (self.started_at or workflow.now())).total_seconds() // 60)

    async def escalate(self) -> None:
        """The next timer fired: go one step up the ladder."""
        s, now = self.ports.shipment(), workflow.now()
        if self.next_at is None or now < self.next_at:
            return
        if self.level == 0:
            self.reminders += 1
            await call(PosActivities.notify_store, StoreMessage(
                message_id=f"{self.ports.task_id()}:reminder:{self.reminders}", location_id=s.location.id,
                task_id=self.ports.task_id(), text=f"Заказ {s.order_id} ждёт сборки дольше {self._late_minutes()} мин"))
            await self.ports.report(ShipmentState.assembling,
                                    f"Магазин {s.location.id} не собрал заказ в срок: напоминание №{self.reminders}",
                                    sla_breach=True, escalation="reminder")
            self.level, self.next_at = 1, now + self._step()
        elif self.level == 1:
            spec = self._spec(TaskKind.assembly_late,
                              f"Магазин {s.location.id} опаздывает со сборкой заказа {s.order_id} "
                              f"(отгрузка {s.n}): SLA {s.assembly_sla_minutes} мин", due=now + self._step(), priority=30)
            await self.board.post(spec)
            await self.ports.report(ShipmentState.assembling,
                                    f"Эскалация: задача супервизору — магазин {s.location.id} опаздывает со сборкой",
                                    escalation="supervisor", task_id=spec.task_id)
            self.level, self.next_at = 2, now + self._step()
        elif self.level == 2:
            await self.board.close_all("escalated further: the shipment is being re-sourced")
            await self._move_or_ask(f"магазин {s.location.id} не собрал заказ за {self._late_minutes()} мин")
        else:  # the operator did not answer "cancel or wait": wait is the default
            task_id = self.operator_task
            if task_id and task_id in self.board.open:
                decision = TaskDecision(task_id=task_id, action=TaskAction.wait, by="timeout",
                                        note="nobody answered: waiting for the store")
                self.board.decisions[task_id] = decision
                await self.decide(decision)
            else:
                self.start()

    # ------------------------------------------------------------------ people's answers
    def decisions(self) -> list[TaskDecision]:
        """Answers that arrived (``complete_task``) and are not applied yet."""
        return self.board.pending()

    async def decide(self, d: TaskDecision) -> None:
        s = self.ports.shipment()
        task = self.board.open[d.task_id]
        by = "по умолчанию (нет ответа)" if d.by == "timeout" else f"({d.by})"
        if d.action == TaskAction.wait:
            if task.kind == TaskKind.assembly_late:
                self.level, self.next_at = 2, workflow.now() + self._step()
            else:
                self.start()
            await self.board.finish(d, TaskOutcome(task_id=d.task_id, action=d.action,
                                                   message=f"Ждём магазин {s.location.id} ещё"))
            await self.ports.report(ShipmentState.assembling, f"Решение {by}: ждать магазин {s.location.id}",
                                    escalation="wait")
        elif d.action == TaskAction.resource:
            await self.board.finish(d, TaskOutcome(task_id=d.task_id, action=d.action,
                                                   message="Отгрузка переносится на другой склад"))
            await self.ports.report(ShipmentState.assembling, f"Решение {by}: перенести отгрузку с {s.location.id}",
                                    escalation="resource")
            await self._move_or_ask(f"решение супервизора {by}")
        elif d.action == TaskAction.cancel:
            await self.board.finish(d, TaskOutcome(task_id=d.task_id, action=d.action, message="Заказ отменяется"))
            await self.ports.report(ShipmentState.assembling, f"Решение {by}: отменить заказ", escalation="cancel")
            await self.ports.cancel_order(CancelRequest(
                reason=f"магазин {s.location.id} не может собрать заказ, другого склада нет", by="operator"))

    async def _move_or_ask(self, reason: str) -> None:
        s = self.ports.shipment()
        if await self.ports.move(reason):
            return  # continued as new
        spec = self._spec(TaskKind.resource_failed,
                          f"Заказ {s.order_id}: магазин {s.location.id} не собрал отгрузку {s.n}, "
                          f"другого склада с этим товаром нет — отменить заказ или ждать?",
                          due=workflow.now() + self._step(), priority=10)
        await self.board.post(spec)
        self.operator_task = spec.task_id
        self.level, self.next_at = 3, spec.due_at
        await self.ports.report(ShipmentState.assembling,
                                f"Перенести отгрузку {s.n} некуда ({reason}): задача оператору — отменить или ждать",
                                escalation="operator", task_id=spec.task_id)

    def _spec(self, kind: TaskKind, title: str, *, due: datetime, priority: int) -> TaskSpec:
        s = self.ports.shipment()
        return TaskSpec(
            task_id=self.board.next_id(kind), kind=kind, order_id=s.order_id, workflow_id=workflow.info().workflow_id,
            title=title, due_at=due, location_id=s.location.id, priority=priority,
            payload={"shipment_id": s.shipment_id, "location_id": s.location.id,
                     "lines": [{"sku": line.sku, "qty": line.qty} for line in s.lines],
                     "sla_minutes": s.assembly_sla_minutes},
            amount=sum(line.amount for line in s.lines), region=s.location.region)

    def listing(self) -> list[OpenTask]:
        return self.board.listing()
