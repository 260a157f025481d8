"""The sourcing rule file (domain.sourcing_rules) and its store (adapters.rules_store): load,
activate, history, and the weights domain.sourcing applies."""

from __future__ import annotations

from datetime import datetime, time, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.rules_store import RulesStore
from domain.safety_stock import SafetyStockPolicy
from domain.sourcing import (
    Destination,
    LocationKind,
    SourceLocation,
    SourcingLine,
    SourcingRequest,
    SourcingWeights,
    source,
)
from domain.sourcing_rules import SourcingRules, diff_rules, parse_rules, render_rules

DRAFT = """
note = "reliability after the March run"
[weights]
split_penalty_km = 15
reliability_km = 400
[safety_stock]
learned = true
target_miss = 0.1
"""


def test_a_draft_parses_and_renders_back_to_the_same_rules() -> None:
    rules = parse_rules(DRAFT)
    assert rules.weights == SourcingWeights(split_penalty_km=15.0, reliability_km=400.0)
    assert rules.safety == SafetyStockPolicy(target_miss=0.1)
    assert rules.version is None and rules.note == "reliability after the March run"
    assert parse_rules(render_rules(rules)) == rules


def test_an_empty_file_is_todays_rules() -> None:
    assert parse_rules("") == SourcingRules()
    assert parse_rules(render_rules(SourcingRules())) == SourcingRules()


@pytest.mark.parametrize("text,field", [
    ("[weights]\ndistance = -1", "weights.distance"),
    ("[weights]\nsplit_penalty_km = 'sometimes'", "weights.split_penalty_km"),
    ("[weights]\nspeed = 1", "weights.speed"),
    ("[safety_stock]\nlearned = true\nmax_units = 1.5", "safety_stock.max_units"),
    ("[safety_stock]\nlearned = 'yes'", "safety_stock.learned"),
    ("version = 0", "version"),
    ("colour = 1", "colour"),
    ("[weights", "rules: not valid TOML"),
])
def test_a_bad_draft_names_the_field(text: str, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        parse_rules(text)


def test_diff_lists_what_changes() -> None:
    changes = diff_rules(SourcingRules(), parse_rules(DRAFT))
    keys = [k for k, _, _ in changes]
    assert ("weights.split_penalty_km", "never", 15.0) in changes
    assert ("weights.reliability_km", 0.0, 400.0) in changes
    assert ("safety_stock.learned", False, True) in changes
    assert "weights.distance" not in keys


def test_activate_keeps_every_version_and_the_worker_sees_the_new_one(tmp_path: Path) -> None:
    store = RulesStore(tmp_path)
    assert store.active() == SourcingRules() and store.history() == []
    v1 = store.activate("[weights]\nreliability_km = 100\n", by="anna", note="first",
                        now=datetime(2026, 11, 1, tzinfo=timezone.utc))
    assert v1 == 1 and store.active().weights.reliability_km == 100.0 and store.active().version == 1
    v2 = store.activate(DRAFT, by="boris")
    assert v2 == 2
    active = store.active()  # re-read: the file changed
    assert active.version == 2 and active.weights.split_penalty_km == 15.0 and active.safety is not None
    hist = store.history()
    assert [(h.version, h.by, h.note) for h in hist] == [(1, "anna", "first"), (2, "boris", "reliability after the March run")]
    assert hist[0].activated_at == "2026-11-01T00:00:00+00:00"
    assert store.version(1).weights.reliability_km == 100.0  # history is never rewritten
    with pytest.raises(ValueError, match="weights.distance"):
        store.activate("[weights]\ndistance = -3", by="x")
    assert store.active().version == 2  # a bad draft changes nothing
    with pytest.raises(ValueError, match="by"):
        store.activate(DRAFT, by=" ")


def test_the_rules_commands(tmp_path: Path) -> None:
    from cli import app

    draft = tmp_path / "draft.toml"
    draft.write_text(DRAFT, encoding="utf-8")
    d = str(tmp_path / "rules")
    runner = CliRunner()
    shown = runner.invoke(app, ["rules", "show", "--rules-dir", d])
    assert shown.exit_code == 0 and "today's defaults" in shown.output
    diff = runner.invoke(app, ["rules", "diff", str(draft), "--rules-dir", d])
    assert diff.exit_code == 0 and "weights.reliability_km: 0.0 → 400.0" in diff.output
    act = runner.invoke(app, ["rules", "activate", str(draft), "--by", "anna", "--rules-dir", d])
    assert act.exit_code == 0 and "activated version 1" in act.output
    assert "version = 1" in runner.invoke(app, ["rules", "show", "--rules-dir", d]).output
    assert "anna" in runner.invoke(app, ["rules", "history", "--rules-dir", d]).output
    bad = tmp_path / "bad.toml"
    bad.write_text("[weights]\ndistance = 'far'\n", encoding="utf-8")
    refused = runner.invoke(app, ["rules", "activate", str(bad), "--by", "anna", "--rules-dir", d])
    assert refused.exit_code == 2 and "weights.distance" in refused.output


# --- the weights in domain.sourcing ---------------------------------------------------------------

def _loc(id: str, city: str, lat: float, lon: float, kind: LocationKind = LocationKind.STORE, cap: int | None = None,
         assigned: int = 0) -> SourceLocation:
    return SourceLocation(id=id, name=id, kind=kind, city=city, region="RU-MOW" if city == "Москва" else "RU-MOS",
                          lat=lat, lon=lon, ship_from_store=True, pickup=True, opens_at=time(0), closes_at=time(0),
                          daily_capacity=cap, assigned_today=assigned)


DEST = Destination(region="RU-MOW", city="Москва", lat=55.75, lon=37.62)
NEAR = _loc("NEAR", "Москва", 55.76, 37.62)  # ~1 km
FAR = _loc("FAR", "Москва", 55.85, 37.62)  # ~11 km


def _plan(weights: SourcingWeights, lines: list[SourcingLine], available: dict[tuple[str, str], int],
          locations: list[SourceLocation] | None = None) -> list[str]:
    plan = source(SourcingRequest(lines=lines, locations=locations or [NEAR, FAR], available=available,
                                  destination=DEST, weights=weights))
    return [s.location_id for s in plan.shipments]


def test_reliability_weight_sends_the_order_past_a_store_that_often_fails() -> None:
    lines = [SourcingLine(1, "A", 1)]
    stock = {("A", "NEAR"): 1, ("A", "FAR"): 1}
    assert _plan(SourcingWeights(), lines, stock) == ["NEAR"]
    rates = {"NEAR": 0.4, "FAR": 0.05}
    # NEAR: 1.1 km + 100 × 0.4 = 41.1; FAR: 11.1 km + 100 × 0.05 = 16.1
    assert _plan(SourcingWeights(reliability_km=100, shortage_rate=rates), lines, stock) == ["FAR"]
    assert _plan(SourcingWeights(reliability_km=10, shortage_rate=rates), lines, stock) == ["NEAR"]  # 5.1 vs 11.6


def test_capacity_weight_prefers_the_emptier_store() -> None:
    near = _loc("NEAR", "Москва", 55.76, 37.62, cap=10, assigned=9)
    far = _loc("FAR", "Москва", 55.85, 37.62, cap=10, assigned=0)
    stock = {("A", "NEAR"): 1, ("A", "FAR"): 1}
    lines = [SourcingLine(1, "A", 1)]
    assert _plan(SourcingWeights(), lines, stock, [near, far]) == ["NEAR"]
    assert _plan(SourcingWeights(capacity_km=50), lines, stock, [near, far]) == ["FAR"]  # 1.1 + 45 vs 11.1


def test_split_penalty_allows_two_near_stores_instead_of_one_far_location() -> None:
    wh = _loc("WH", "Подольск", 55.43, 37.54, kind=LocationKind.WAREHOUSE)  # other region, ~36 km
    lines = [SourcingLine(1, "A", 1), SourcingLine(2, "B", 1)]
    stock = {("A", "NEAR"): 1, ("B", "FAR"): 1, ("A", "WH"): 1, ("B", "WH"): 1}
    locs = [NEAR, FAR, wh]
    assert _plan(SourcingWeights(), lines, stock, locs) == ["WH"]  # fewest shipments, whatever the distance
    # the pair is nearer by tier, but must also save the penalty: 1.1 + 11.1 + 30 = 42.2 > 35.9 km
    assert _plan(SourcingWeights(split_penalty_km=30), lines, stock, locs) == ["WH"]
    assert sorted(_plan(SourcingWeights(split_penalty_km=10), lines, stock, locs)) == ["FAR", "NEAR"]
