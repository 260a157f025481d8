"""People and timers around a store's assembly (mixed into ``FulfillmentWorkflow``).

The ladder, measured from the moment the POS task is given to the store:

1. the assembly SLA passes (per location: 2 h ship-from-store, 30 min click & collect by
   default) → a reminder on the store's POS;
2. a further interval (``escalate_after_minutes``, default half the SLA, at least 15 min) →
   a supervisor task "store MSK-014 is late with order …" (answers: ``wait`` — give the store
   one more interval —, or ``resource`` — move the shipment now);
3. one more interval → the shipment moves to another location (the first reservation
   released, the goods held there, a new POS task there, the old one cancelled), or, when no
   single other location can take it, an operator task "cancel or wait" (default: wait, the
   ladder starts again).

A shortage reported by the store is first re-sourced the same way (when ``auto_resource``);
otherwise the order is asked (``shortage_reported`` signal) and the shipment waits for its
``revise`` answer. Moving a shipment or revising it continues the workflow as new with the new
input: the rest of the process (courier, sale, tracking) reads only its input.
Every step is reported to the order's timeline.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from models.order import CancelRequest, CatalogLine, Channel, DeliveryMethod, OrderInput, ShipmentState, StoreEvent
    from models.planning import sourcing_request
    from models.shortages import ladder_step, move_target, moved_exclude
    from models.steps import PosCancel, ReserveRequest, SettleRequest, StockViewRequest, StoreMessage
    from models.stock import Allocation, StockView
    from models.edits import EditAnswer, EditHold
    from models.tasks import (
        OpenTask,
        ShipmentRevision,
        ShortageReport,
        TaskAction,
        TaskDecision,
        TaskKind,
        TaskOutcome,
        TaskSpec,
    )

from workflows.common import call, local, signal_workflow
from workflows.human import TaskBoard

@dataclass
class Ladder:
    board: TaskBoard
    level: int = 0  # 0 waiting for the SLA, 1 reminded, 2 supervisor asked, 3 operator asked
    next_at: datetime | None = None
    shortages_seen: int = 0
    awaiting_revision: bool = False
    revision: ShipmentRevision | None = None
    reminders: int = 0
    supervisor_task: str | None = None
    operator_task: str | None = None
    edit_hold: EditHold | None = None  # the order asks to stop the store for an operator's edit


def shipment_key(owner: str, pos_id: int, location_id: str, suffix: str) -> str:
    """Same shape as ``models.stock.reservation_key`` (the line's position stays third from the end)."""
    return f"{owner}:{pos_id}:{location_id}:{suffix}"


class AssemblyEscalation:
    """Mixin: needs ``self._inp`` (FulfillmentInput), ``self._store_events`` (read through
    ``self._task_events()``), ``self._cancel``,
    ``self._task_id``, ``self._report(state, message, **data)``, ``self._assembled()``."""

    _inp: Any
    _store_events: list[StoreEvent]
    _cancel: CancelRequest | None

    @property
    def _ladder(self) -> Ladder:
        if "_ladder_state" not in self.__dict__:
            self.__dict__["_ladder_state"] = Ladder(board=TaskBoard())
        return self.__dict__["_ladder_state"]

    # ------------------------------------------------------------------ timers
    def _sla(self) -> timedelta:
        return timedelta(minutes=self._inp.assembly_sla_minutes)

    def _step(self) -> timedelta:
        return ladder_step(self._inp.assembly_sla_minutes, getattr(self._inp, "escalate_after_minutes", 0))

    def _start_escalation(self) -> None:
        lad = self._ladder
        if "_assembly_started_at" not in self.__dict__:
            self._store_events[:0] = list(getattr(self._inp, "carried_events", []))
            # runs started before the ladder existed keep reminding every SLA (replay-safe)
            self.__dict__["_ladder_on"] = workflow.patched("assembly-escalation-ladder")
        self.__dict__.setdefault("_assembly_started_at", workflow.now())
        lad.level, lad.next_at = 0, workflow.now() + self._sla()

    def _until_next_escalation(self) -> timedelta | None:
        at = self._ladder.next_at
        if at is None:
            return None
        return max(at - workflow.now(), timedelta(seconds=1))

    def _assembly_done(self) -> bool:
        return self._assembled() and not self._ladder.awaiting_revision  # type: ignore[attr-defined]

    def _needs_attention(self) -> bool:
        lad = self._ladder
        return (bool(lad.board.pending()) or self._new_shortage() is not None or lad.revision is not None
                or lad.edit_hold is not None)

    async def _escalate(self) -> None:
        """The next timer fired: go one step up the ladder."""
        inp, lad = self._inp, self._ladder
        now = workflow.now()
        if lad.next_at is None or now < lad.next_at:
            return
        if lad.level == 0:
            lad.reminders += 1
            late = int((now - self._assembly_started()).total_seconds() // 60)
            await call("notify_store", StoreMessage(
                message_id=f"{self._task_id}:reminder:{lad.reminders}", location_id=inp.location.id,  # type: ignore[attr-defined]
                task_id=self._task_id,  # type: ignore[attr-defined]
                text=f"Заказ {inp.order_id} ждёт сборки дольше {late} мин"))
            await self._report(ShipmentState.assembling,  # type: ignore[attr-defined]
                               f"Магазин {inp.location.id} не собрал заказ в срок: напоминание №{lad.reminders}",
                               sla_breach=True, escalation="reminder")
            lad.level, lad.next_at = 1, now + self._step()
            if not self.__dict__.get("_ladder_on", True):
                lad.level, lad.next_at = 0, now + self._sla()
        elif lad.level == 1:
            spec = self._spec(TaskKind.assembly_late,
                              f"Магазин {inp.location.id} опаздывает со сборкой заказа {inp.order_id} "
                              f"(отгрузка {inp.n}): SLA {inp.assembly_sla_minutes} мин",
                              due=now + self._step(), priority=30)
            await lad.board.post(spec)
            lad.supervisor_task = spec.task_id
            await self._report(ShipmentState.assembling,  # type: ignore[attr-defined]
                               f"Эскалация: задача супервизору — магазин {inp.location.id} опаздывает со сборкой",
                               escalation="supervisor", task_id=spec.task_id)
            lad.level, lad.next_at = 2, now + self._step()
        elif lad.level == 2:
            await lad.board.close_all("escalated further: the shipment is being re-sourced")
            await self._resource_or_ask(f"магазин {inp.location.id} не собрал заказ за "
                                        f"{int((now - self._assembly_started()).total_seconds() // 60)} мин")
        else:  # the operator did not answer "cancel or wait": wait is the default
            task_id = lad.operator_task
            if task_id and task_id in lad.board.open:
                decision = TaskDecision(task_id=task_id, action=TaskAction.wait, by="timeout",
                                        note="nobody answered: waiting for the store")
                lad.board.decisions[task_id] = decision
                await self._apply_decision(decision)
            else:
                self._start_escalation()

    def _assembly_started(self) -> datetime:
        return self.__dict__.setdefault("_assembly_started_at", workflow.now())

    # ------------------------------------------------------------------ attention: decisions, shortages, revisions
    async def _attend(self) -> None:
        lad = self._ladder
        for decision in lad.board.pending():
            await self._apply_decision(decision)
        event = self._new_shortage()
        if event is not None:
            lad.shortages_seen += 1
            await self._on_shortage(event)
        if lad.edit_hold is not None:
            await self._hold_for_edit(lad.edit_hold)
        if lad.revision is not None:
            await self._revise(lad.revision)

    def _new_shortage(self) -> StoreEvent | None:
        shortages = [e for e in self._task_events() if e.event == "shortage"]  # type: ignore[attr-defined]
        return shortages[self._ladder.shortages_seen] if len(shortages) > self._ladder.shortages_seen else None

    async def _apply_decision(self, d: TaskDecision) -> None:
        inp, lad = self._inp, self._ladder
        task = lad.board.open[d.task_id]
        by = "по умолчанию (нет ответа)" if d.by == "timeout" else f"({d.by})"
        if d.action == TaskAction.wait:
            if task.kind == TaskKind.assembly_late:
                lad.level, lad.next_at = 2, workflow.now() + self._step()
            else:
                self._start_escalation()
            await lad.board.finish(d, TaskOutcome(task_id=d.task_id, action=d.action,
                                                  message=f"Ждём магазин {inp.location.id} ещё"))
            await self._report(ShipmentState.assembling,  # type: ignore[attr-defined]
                               f"Решение {by}: ждать магазин {inp.location.id}", escalation="wait")
        elif d.action == TaskAction.resource:
            await lad.board.finish(d, TaskOutcome(task_id=d.task_id, action=d.action,
                                                  message="Отгрузка переносится на другой склад"))
            await self._report(ShipmentState.assembling,  # type: ignore[attr-defined]
                               f"Решение {by}: перенести отгрузку с {inp.location.id}", escalation="resource")
            await self._resource_or_ask(f"решение супервизора {by}")
        elif d.action == TaskAction.cancel:
            req = CancelRequest(reason=f"магазин {inp.location.id} не может собрать заказ, другого склада нет",
                                by="operator")
            await lad.board.finish(d, TaskOutcome(task_id=d.task_id, action=d.action, message="Заказ отменяется"))
            await self._report(ShipmentState.assembling,  # type: ignore[attr-defined]
                               f"Решение {by}: отменить заказ", escalation="cancel")
            self._cancel = req
            await signal_workflow(inp.parent_id, "cancel_order", req)

    async def _resource_or_ask(self, reason: str) -> None:
        inp, lad = self._inp, self._ladder
        if await self._resource(reason):
            return  # continued as new
        spec = self._spec(TaskKind.resource_failed,
                          f"Заказ {inp.order_id}: магазин {inp.location.id} не собрал отгрузку {inp.n}, "
                          f"другого склада с этим товаром нет — отменить заказ или ждать?",
                          due=workflow.now() + self._step(), priority=10)
        await lad.board.post(spec)
        lad.operator_task = spec.task_id
        lad.level, lad.next_at = 3, spec.due_at
        await self._report(ShipmentState.assembling,  # type: ignore[attr-defined]
                           f"Перенести отгрузку {inp.n} некуда ({reason}): задача оператору — отменить или ждать",
                           escalation="operator", task_id=spec.task_id)

    async def _on_shortage(self, event: StoreEvent) -> None:
        inp, lad = self._inp, self._ladder
        sku, missing = event.sku or "", event.missing_qty or 1
        await self._report(ShipmentState.assembling,  # type: ignore[attr-defined]
                           f"Магазин {inp.location.id}: не хватает {sku} × {missing}", shortage_sku=sku,
                           missing_qty=missing)
        if getattr(inp, "auto_resource", True) and await self._resource(f"нехватка {sku} × {missing}", quiet=True):
            return  # continued as new
        lad.awaiting_revision, lad.next_at = True, None  # no store reminders while the customer is asked
        await signal_workflow(inp.parent_id, "shortage_reported", ShortageReport(
            shipment_id=inp.shipment_id, location_id=inp.location.id, sku=sku, missing_qty=missing,
            lines=list(inp.lines), reservation_keys=list(inp.reservation_keys), pos_task_id=self._task_id))  # type: ignore[attr-defined]

    async def _hold_for_edit(self, hold: EditHold) -> None:
        """An operator changes the order's lines: stop the store (cancel its POS task) and wait for
        the order's ``revise`` — unless the store has already assembled or a shortage is open."""
        inp, lad = self._inp, self._ladder
        lad.edit_hold = None
        reason = ""
        if self._assembled():  # type: ignore[attr-defined]
            reason = f"магазин {inp.location.id} уже собрал отгрузку"
        elif lad.awaiting_revision:
            reason = "по отгрузке уже согласуется замена недостающего товара"
        else:
            try:
                await call("cancel_pos_task", PosCancel(task_id=self._task_id, location_id=inp.location.id,  # type: ignore[attr-defined]
                                                         reason="заказ изменяется оператором, ждите новое задание"))
            except (ActivityError, ApplicationError) as err:
                reason = f"касса магазина не отменила задание: {err}"
        ok = not reason
        if ok:
            lad.awaiting_revision, lad.next_at = True, None  # the store waits for the new task
            await self._report(ShipmentState.assembling,  # type: ignore[attr-defined]
                               f"Сборка отгрузки {inp.n} остановлена: оператор меняет состав заказа")
        await signal_workflow(inp.parent_id, "edit_answer", EditAnswer(
            shipment_id=inp.shipment_id, n=hold.n, ok=ok, reason=reason, lines=list(inp.lines),
            reservation_keys=list(inp.reservation_keys)))

    async def _revise(self, rev: ShipmentRevision) -> None:
        inp = self._inp
        if rev.new_task:  # after an edit: the old task is cancelled, the store gets a new one
            await self._report(ShipmentState.assembling, f"Новое задание на сборку отгрузки {inp.n}: {rev.note}")  # type: ignore[attr-defined]
            await self._continue(dataclasses.replace(inp, lines=rev.lines, reservation_keys=rev.reservation_keys,
                                                     revision=rev.n, attempt=getattr(inp, "attempt", 1) + 1,
                                                     carried_events=[]))
            return
        await call("notify_store", StoreMessage(message_id=f"{self._task_id}:revision:{rev.n}",  # type: ignore[attr-defined]
                                                location_id=inp.location.id, task_id=self._task_id,  # type: ignore[attr-defined]
                                                text=f"Заказ {inp.order_id}: {rev.note}"))
        await self._report(ShipmentState.assembling, f"Состав отгрузки {inp.n} изменён: {rev.note}")  # type: ignore[attr-defined]
        await self._continue(dataclasses.replace(inp, lines=rev.lines, reservation_keys=rev.reservation_keys,
                                                 revision=rev.n), carry=True)

    # ------------------------------------------------------------------ moving the shipment
    async def _resource(self, reason: str, *, quiet: bool = False) -> bool:
        """Hold the whole shipment at one other location, release the first one, and carry on there.
        False (nothing changed) when no single other location has everything."""
        inp = self._inp
        if inp.delivery.method == DeliveryMethod.pickup:
            return False  # the customer comes to this store: a transfer is a person's decision
        view = await local("load_stock_view", StockViewRequest(skus=sorted({l.sku for l in inp.lines})),
                           result_type=StockView)
        as_order = OrderInput(order_id=inp.order_id, channel=Channel.web, customer=inp.customer, delivery=inp.delivery,
                              lines=[CatalogLine(pos_id=l.pos_id, sku=l.sku, name=l.name, qty=l.qty,
                                                 unit_price=l.unit_price) for l in inp.lines])
        move = move_target(sourcing_request(as_order, view, now=workflow.now(),
                                            exclude=moved_exclude(inp.location.id, getattr(inp, "tried", []))))
        if move is None:
            if not quiet:
                await self._report(ShipmentState.assembling,  # type: ignore[attr-defined]
                                   f"Ни один другой склад не может взять отгрузку {inp.n} целиком")
            return False
        target = next(l for l in view.locations if l.id == move.location_id)
        attempt = getattr(inp, "attempt", 1) + 1
        allocations = [Allocation(key=shipment_key(inp.parent_id, l.pos_id, target.id, f"m{attempt}"), sku=l.sku,
                                  location_id=target.id, qty=l.qty) for l in inp.lines]
        try:
            await local("reserve_stock", ReserveRequest(owner=inp.parent_id, allocations=allocations))
        except (ActivityError, ApplicationError):
            return False  # the stock moved meanwhile: nothing was held
        await local("release_stock", SettleRequest(owner=inp.parent_id, keys=list(inp.reservation_keys)))
        await call("cancel_pos_task", PosCancel(task_id=self._task_id, location_id=inp.location.id,  # type: ignore[attr-defined]
                                                 reason=f"заказ передан на {target.id}: {reason}"))
        await self._report(ShipmentState.assembling,  # type: ignore[attr-defined]
                           f"Отгрузка {inp.n} перенесена с {inp.location.id} на {target.id} ({reason}): "
                           f"{move.reason}", location_id=target.id, resourced_from=inp.location.id)
        await self._continue(dataclasses.replace(
            inp, location=target, reservation_keys=[a.key for a in allocations], attempt=attempt,
            tried=[*getattr(inp, "tried", []), inp.location.id],
            assembly_sla_minutes=target.assembly_sla_minutes or inp.assembly_sla_minutes))
        return True  # not reached

    async def _continue(self, new_input: Any, *, carry: bool = False) -> None:
        """Carry on as a new run; ``carry``: an "assembled" the store pressed after its shortage
        report (same task, same store) still counts in the new run."""
        await self._ladder.board.close_all("the shipment changed")
        await workflow.wait_condition(workflow.all_handlers_finished)
        if carry:  # no await from here on: nothing can arrive unseen
            events = self._task_events()  # type: ignore[attr-defined]
            shortages = [i for i, e in enumerate(events) if e.event == "shortage"]
            after = events[shortages[-1] + 1:] if shortages else []
            new_input = dataclasses.replace(new_input, carried_events=[e for e in after if e.event == "assembled"])
        workflow.continue_as_new(new_input)

    # ------------------------------------------------------------------ tasks
    def _spec(self, kind: TaskKind, title: str, *, due: datetime, priority: int) -> TaskSpec:
        inp = self._inp
        return TaskSpec(
            task_id=self._ladder.board.next_id(kind), kind=kind, order_id=inp.order_id,
            workflow_id=workflow.info().workflow_id, title=title, due_at=due, location_id=inp.location.id,
            priority=priority, payload={"shipment_id": inp.shipment_id, "location_id": inp.location.id,
                                        "lines": [{"sku": l.sku, "qty": l.qty} for l in inp.lines],
                                        "sla_minutes": inp.assembly_sla_minutes},
            amount=sum(l.amount for l in inp.lines), region=inp.location.region,
        )

    # ------------------------------------------------------------------ handlers
    @workflow.update
    async def complete_task(self, d: TaskDecision) -> TaskOutcome:
        return await self._ladder.board.complete(d)

    @complete_task.validator
    def _validate_complete_task(self, d: TaskDecision) -> None:
        self._ladder.board.validate(d)

    @workflow.query
    def open_tasks(self) -> list[OpenTask]:
        return self._ladder.board.listing()

    @workflow.signal
    def revise(self, rev: ShipmentRevision) -> None:
        if self._ladder.awaiting_revision:
            self._ladder.revision = rev

    @workflow.signal
    def hold_for_edit(self, hold: EditHold) -> None:
        self._ladder.edit_hold = hold
