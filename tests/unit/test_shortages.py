"""The pure decisions of a location that cannot assemble (domain.shortages), shared by the
workflows (escalation, substitution) and the simulator."""

from __future__ import annotations

from datetime import time, timedelta

from domain.shortages import (
    ShortageOutcome,
    ladder_step,
    lines_left_after_shortage,
    move_target,
    moved_exclude,
    shortage_outcome,
)
from domain.sourcing import Destination, LocationKind, SourceLocation, SourcingLine, SourcingMode, SourcingRequest
from domain.availability import available_units, can_hold
from contracts.tasks import TaskAction


def test_availability_rule() -> None:
    assert available_units(5, 1, 1) == 3
    assert available_units(1, 1, 1) == 0  # never below zero
    assert can_hold(5, 1, 1, 3) and not can_hold(5, 1, 1, 4)


def test_ladder_step() -> None:
    assert ladder_step(120) == timedelta(minutes=60)
    assert ladder_step(20) == timedelta(minutes=15)  # at least 15 minutes
    assert ladder_step(120, 45) == timedelta(minutes=45)


def _loc(id: str, lat: float) -> SourceLocation:
    return SourceLocation(id=id, name=id, kind=LocationKind.STORE, city="Москва", region="RU-MOW", lat=lat, lon=37.6,
                          ship_from_store=True, pickup=True, opens_at=time(0), closes_at=time(0), daily_capacity=None)


def test_a_shipment_moves_only_to_one_location_with_everything() -> None:
    locs = [_loc("A", 55.75), _loc("B", 55.76), _loc("C", 55.9)]
    lines = [SourcingLine(1, "X", 1), SourcingLine(2, "Y", 1)]
    dest = Destination("RU-MOW", "Москва", 55.75, 37.6)
    stock = {("X", "A"): 1, ("Y", "A"): 1, ("X", "B"): 1, ("Y", "C"): 1, ("X", "C"): 1}
    req = SourcingRequest(lines=lines, locations=locs, available=stock, destination=dest, exclude=moved_exclude("A"))
    target = move_target(req)
    assert target is not None and target.location_id == "C"  # B has only X: C has both
    assert move_target(SourcingRequest(lines=lines, locations=locs, available=stock, destination=dest,
                                       exclude=moved_exclude("A", ["C"]))) is None  # no single other location
    pickup = SourcingRequest(lines=lines, locations=locs, available=stock, destination=dest,
                             mode=SourcingMode.PICKUP, pickup_store_id="A", exclude=moved_exclude("A"))
    assert move_target(pickup) is None  # click & collect: a person decides


class _Line:
    def __init__(self, sku: str, qty: int) -> None:
        self.sku, self.qty = sku, qty


def test_what_an_operators_answer_does() -> None:
    lines = [_Line("X", 1), _Line("Y", 2)]
    assert [l.sku for l in lines_left_after_shortage(lines, "Y", 1)] == ["X", "Y"]
    assert [l.sku for l in lines_left_after_shortage(lines, "X", 1)] == ["Y"]
    only = [_Line("X", 1)]
    kept = lines_left_after_shortage(only, "X", 1)
    assert shortage_outcome(TaskAction.remove, kept=kept, other_shipments=[]) == ShortageOutcome.cancel_order
    assert shortage_outcome(TaskAction.remove, kept=kept, other_shipments=["s2"]) == ShortageOutcome.drop_shipment
    assert shortage_outcome(TaskAction.substitute, kept=kept, other_shipments=[]) == ShortageOutcome.revise
    assert shortage_outcome(TaskAction.remove, kept=lines, other_shipments=[]) == ShortageOutcome.revise
    assert shortage_outcome(TaskAction.cancel, kept=lines, other_shipments=["s2"]) == ShortageOutcome.cancel_order


def test_the_workflows_decide_with_these_functions() -> None:
    """The simulator measures these rules; the workflows call the same functions, not copies of them."""
    import domain.planning as planning
    import domain.shortages as rules
    from workflows import escalation, fulfillment, order_placement, order_substitutions

    assert escalation.ladder_step is rules.ladder_step
    assert (fulfillment.move_target, fulfillment.moved_exclude) == (rules.move_target, rules.moved_exclude)
    assert fulfillment.sourcing_request is planning.sourcing_request
    assert order_placement.plan_shipments is planning.plan_shipments
    assert order_substitutions.shortage_outcome is rules.shortage_outcome
    assert order_substitutions.lines_left_after_shortage is rules.lines_left_after_shortage
    assert (order_substitutions.SUBSTITUTION_DEADLINE, order_substitutions.SUBSTITUTION_DEFAULT) == (
        rules.SUBSTITUTION_DEADLINE, rules.SUBSTITUTION_DEFAULT)
