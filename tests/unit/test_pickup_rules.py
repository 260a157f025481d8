"""Pickup rules (domain/pickup.py): hold window, reminder, promised ready date, partial pickup."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from contracts.order import LineRequest, OrderLine
from domain.pickup import (
    hold_window,
    local_text,
    ready_by,
    reminder_at,
    settle_plan,
    taken_portions,
    transfer_days,
)
from contracts.stock import Allocation, LocationInfo

NOW = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)


def loc(id: str, city: str, region: str, lat: float, lon: float) -> LocationInfo:
    return LocationInfo(id=id, name=id, kind="store", city=city, region=region, lat=lat, lon=lon)


MSK1, MSK2 = loc("MSK-001", "Москва", "RU-MOW", 55.75, 37.61), loc("MSK-002", "Москва", "RU-MOW", 55.80, 37.50)
WH = loc("WH-ONLINE", "Подольск", "RU-MOS", 55.43, 37.54)
SPB = loc("SPB-001", "Санкт-Петербург", "RU-SPE", 59.93, 30.31)
NSK = loc("NSK-001", "Новосибирск", "RU-NVS", 55.03, 82.92)


def test_hold_window_is_the_store_window_or_a_shorter_hold() -> None:
    assert hold_window(pickup_window_days=3) == timedelta(days=3)
    assert hold_window(pickup_window_days=7, hold_minutes=60) == timedelta(hours=1)
    assert hold_window(pickup_window_days=1, hold_minutes=60 * 48) == timedelta(days=1)  # never longer


def test_reminder_the_day_before_and_none_for_short_holds() -> None:
    assert reminder_at(NOW, NOW + timedelta(days=3)) == NOW + timedelta(days=2)
    assert reminder_at(NOW, NOW + timedelta(days=1)) is None
    assert reminder_at(NOW, NOW + timedelta(hours=2)) is None


def test_ready_by_waits_for_the_slowest_transfer() -> None:
    assert ready_by(NOW, set_aside_minutes=30, transfers_from=[], store=MSK1) == NOW + timedelta(minutes=30)
    assert transfer_days(MSK2, MSK1) == 1 and transfer_days(WH, MSK1) == 3 and transfer_days(SPB, MSK1) == 3
    assert transfer_days(NSK, MSK1) == 5
    assert ready_by(NOW, set_aside_minutes=30, transfers_from=[MSK2, NSK], store=MSK1) == NOW + timedelta(days=5, minutes=30)


def test_local_text_is_the_store_wall_clock() -> None:
    assert local_text(NOW, "RU-MOW") == "23.11.2026 12:00"
    assert local_text(NOW, "RU-NVS") == "23.11.2026 16:00"


def test_partial_pickup_scales_discount_and_bonus_and_drops_lines_not_taken() -> None:
    lines = [OrderLine(1, "A", "a", 2, 100_00, discount=20_00, bonus=10_00), OrderLine(2, "B", "b", 1, 50_00)]
    took = taken_portions(lines, [LineRequest("A", 1)])
    assert took == [OrderLine(1, "A", "a", 1, 100_00, discount=10_00, bonus=5_00)]
    assert taken_portions(lines, [LineRequest("A", 5), LineRequest("B", 1)]) == lines  # never more than reserved


def test_settle_plan_consumes_what_was_taken_and_releases_the_rest() -> None:
    held = [Allocation("o:1:S:1", "A", "S", 2), Allocation("o:2:S:1", "B", "S", 1)]
    assert settle_plan(held, [LineRequest("A", 1)]) == [("o:1:S:1", 1), ("o:2:S:1", 0)]
    # two units of A taken but one was transferred in (not in this store's ledger): the held key is consumed whole
    assert settle_plan([Allocation("o:1:S:1", "A", "S", 1)], [LineRequest("A", 2)]) == [("o:1:S:1", 1)]
