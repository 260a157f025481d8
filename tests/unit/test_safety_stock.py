"""The learned safety stock rule (domain.safety_stock): the arithmetic of the docstring, by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.safety_stock import (
    SafetyStockPolicy,
    ShortageHistory,
    history_from_timelines,
    learn_safety_stock,
    units_to_keep,
)


def test_units_kept_back_follow_the_miss_rate() -> None:
    p = SafetyStockPolicy(target_miss=0.05, max_units=3)
    assert units_to_keep(0.30, p) == 2  # 0.3² = 0.09 > 0.05, 0.3³ = 0.027 ≤ 0.05
    assert units_to_keep(0.10, p) == 1  # 0.1 > 0.05, 0.1² = 0.01
    assert units_to_keep(0.04, p) == 0
    assert units_to_keep(0.05, p) == 0  # exactly the target: nothing kept back
    assert units_to_keep(0.9, p) == 3  # 0.9⁴ = 0.66: capped at max_units
    assert units_to_keep(1.0, p) == 3


def test_a_store_that_often_fails_keeps_more_back_than_one_that_rarely_does() -> None:
    # chain rate p0 = (30 + 2) / (100 + 100) = 0.16; prior 20 lines
    hist = ShortageHistory(lines={"BAD": 100, "GOOD": 100}, short={"BAD": 30, "GOOD": 2})
    learned = learn_safety_stock(hist, SafetyStockPolicy(prior_lines=20))
    q_bad = (30 + 20 * 0.16) / (100 + 20)  # 0.2767 → 0.2767² = 0.0766 > 0.05, ³ = 0.021 → 2
    q_good = (2 + 20 * 0.16) / (100 + 20)  # 0.0433 → 0
    assert learned.miss_rate["BAD"] == pytest.approx(q_bad)
    assert learned.miss_rate["GOOD"] == pytest.approx(q_good)
    assert learned.units("BAD", "X", on_hand=5) == 2
    assert learned.units("GOOD", "X", on_hand=5) == 0


def test_the_prior_keeps_a_store_with_little_history_near_the_chain() -> None:
    # one line, one shortage: alone that is q = 1; with 20 prior lines at p0 = (1 + 5) / (1 + 200) it is small
    hist = ShortageHistory(lines={"NEW": 1, "OLD": 200}, short={"NEW": 1, "OLD": 5})
    learned = learn_safety_stock(hist, SafetyStockPolicy(prior_lines=20))
    p0 = 6 / 201
    assert learned.miss_rate["NEW"] == pytest.approx((1 + 20 * p0) / 21)  # 0.076 → keep 1
    assert learned.units("NEW", "X", on_hand=3) == 1


def test_a_sku_reported_short_is_not_offered_there_and_the_larger_safety_stock_applies() -> None:
    hist = ShortageHistory(lines={"S": 50}, short={"S": 1}, recent_short=frozenset({("S", "SKU-1")}))
    learned = learn_safety_stock(hist, SafetyStockPolicy())
    assert learned.units("S", "SKU-1", on_hand=4) == 4  # everything on record kept back
    assert learned.units("S", "SKU-2", on_hand=4) == 0
    assert learned.effective_safety_stock("S", "SKU-2", 4, configured=1) == 1  # the location's own figure
    assert learned.effective_safety_stock("S", "SKU-1", 4, configured=1) == 4


def test_no_history_keeps_nothing_back() -> None:
    learned = learn_safety_stock(ShortageHistory(lines={}, short={}), SafetyStockPolicy())
    assert learned.units("ANY", "X", on_hand=2) == 0


@pytest.mark.parametrize("field,value", [("target_miss", 0), ("target_miss", 1.5), ("max_units", -1),
                                         ("prior_lines", -2), ("history_days", 0)])
def test_a_bad_policy_names_its_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"safety_stock.{field if field != 'prior_lines' else 'prior_lines'}"):
        SafetyStockPolicy(**{field: value})


def test_history_from_the_projection_follows_moves() -> None:
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    order = ({"S-1": 2}, [
        (t0, "sourced", {"shipment_id": "S-1", "location_id": "MSK-001"}),
        (t0 + timedelta(hours=1), "shipment_assembling", {"shipment_id": "S-1", "shortage_sku": "A", "missing_qty": 1}),
        (t0 + timedelta(hours=1), "shipment_assembling", {"shipment_id": "S-1", "location_id": "WH-ONLINE",
                                                         "resourced_from": "MSK-001"}),
    ])
    hist = history_from_timelines([order], memory_since=t0)
    assert hist.lines == {"MSK-001": 2, "WH-ONLINE": 2}
    assert hist.short == {"MSK-001": 1}
    assert hist.recent_short == frozenset({("MSK-001", "A")})
