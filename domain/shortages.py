"""When a location cannot assemble a shipment: the pure decisions (safe inside workflows).

A store reports missing items at assembly, or is too late on the escalation ladder
(``workflows/escalation.py``); an operator answers a substitution task
(``workflows/order_substitutions.py``). The rules those workflows apply, and that the chain
simulator (``sim/``) applies in the same way:

* ``ladder_step`` — the interval between the ladder's steps after the assembly SLA: the
  configured ``escalate_after_minutes``, or half the SLA but at least 15 minutes.
* ``move_target`` — *re-sourcing*: the shipment's lines are sourced again by
  ``domain.sourcing.source`` with the current location and every location already tried
  excluded (``moved_exclude``); the shipment moves only when **one** other location has
  everything (a complete one-shipment plan), otherwise a person decides. A click & collect
  shipment never moves (the customer comes to that store; a transfer is a person's call).
* ``lines_left_after_shortage`` and ``shortage_outcome`` — what an operator's answer to a
  substitution task does to the order: ``cancel`` cancels the order; ``remove`` of the last
  units of a shipment drops that shipment when the order has others, else cancels the order;
  anything else revises the shipment (its kept lines, plus the substitute).
* ``SUBSTITUTION_DEADLINE`` / ``SUBSTITUTION_DEFAULT`` — an operator has an hour; nobody
  answering means ``remove``.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Iterable, Protocol, Sequence, TypeVar

from contracts.tasks import TaskAction
from domain.sourcing import PlannedShipment, SourcingMode, SourcingRequest, source

__all__ = [
    "MIN_LADDER_STEP",
    "SUBSTITUTION_DEADLINE",
    "SUBSTITUTION_DEFAULT",
    "ShortageOutcome",
    "ladder_step",
    "moved_exclude",
    "move_target",
    "lines_left_after_shortage",
    "shortage_outcome",
]

#: the shortest interval between two steps of the escalation ladder
MIN_LADDER_STEP = timedelta(minutes=15)
#: how long an operator has to agree a substitution with the customer
SUBSTITUTION_DEADLINE = timedelta(hours=1)
#: what happens when nobody answers a substitution task in time
SUBSTITUTION_DEFAULT = TaskAction.remove


def ladder_step(sla_minutes: int, escalate_after_minutes: int = 0) -> timedelta:
    """One more interval after the assembly SLA per step of the ladder (reminder → supervisor →
    move): ``escalate_after_minutes`` when set, else half the SLA, at least ``MIN_LADDER_STEP``."""
    if escalate_after_minutes:
        return timedelta(minutes=escalate_after_minutes)
    return max(timedelta(minutes=sla_minutes) / 2, MIN_LADDER_STEP)


def moved_exclude(current: str, tried: Iterable[str] = ()) -> frozenset[str]:
    """The locations a moving shipment may not go to: where it is now and every one it left."""
    return frozenset({current, *tried})


def move_target(request: SourcingRequest) -> PlannedShipment | None:
    """Where a whole shipment moves (``request``: its lines, the network's available stock, the
    customer's destination, ``exclude`` = ``moved_exclude(...)``): the one location that has
    everything, or None (pickup mode, or no single other location has it all)."""
    if SourcingMode(request.mode) == SourcingMode.PICKUP:
        return None
    plan = source(request)
    if plan.unfulfilled or len(plan.shipments) != 1:
        return None
    return plan.shipments[0]


class ShortageOutcome(StrEnum):
    cancel_order = "cancel_order"  # the whole order is cancelled (the saga compensates)
    drop_shipment = "drop_shipment"  # this shipment is cancelled, the rest of the order goes on
    revise = "revise"  # the shipment goes on with its kept lines (and the substitute)


class _Line(Protocol):
    @property
    def sku(self) -> str: ...

    @property
    def qty(self) -> int: ...


L = TypeVar("L", bound=_Line)


def lines_left_after_shortage(lines: Sequence[L], sku: str, missing_qty: int) -> list[L]:
    """The shipment's lines that still have units once ``missing_qty`` of ``sku`` are taken out."""
    return [l for l in lines if l.sku != sku or l.qty > missing_qty]


def shortage_outcome(action: TaskAction, *, kept: Sequence[object], other_shipments: Sequence[object]) -> ShortageOutcome:
    """What an operator's answer does (``kept``: ``lines_left_after_shortage``; ``other_shipments``:
    the order's other live shipments)."""
    if action == TaskAction.cancel:
        return ShortageOutcome.cancel_order
    if action == TaskAction.remove and not kept:
        return ShortageOutcome.drop_shipment if other_shipments else ShortageOutcome.cancel_order
    return ShortageOutcome.revise
