"""domain.promise: ready time from store hours, carrier cut-off, the promised window."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.promise import (
    CarrierRule,
    DeliveryMethod,
    handover_date,
    is_late,
    promise_window,
    quote,
    ready_time,
    rules_for,
)

MSK = ZoneInfo("Europe/Moscow")
NSK = timezone(timedelta(hours=7))  # Novosibirsk, as a fixed offset


def at(d: int, hh: int, mm: int = 0, tz=MSK) -> datetime:
    """A moment in March 2025 (5 March is a Wednesday)."""
    return datetime(2025, 3, d, hh, mm, tzinfo=tz)


CDEK_MSK = CarrierRule(
    carrier="cdek", method=DeliveryMethod.COURIER, region="Москва", price=39_900, days_min=1, days_max=2, cutoff=time(16, 0)
)


# --- ready_time -------------------------------------------------------------------------------


def test_open_store_finishes_assembly_after_the_assembly_time():
    assert ready_time(now=at(5, 12), assembly_minutes=90, opens_at=time(10), closes_at=time(22)) == at(5, 13, 30)


def test_closed_store_starts_when_it_opens():
    # 07:00, opens at 10:00 -> ready 10:45
    assert ready_time(now=at(5, 7), assembly_minutes=45, opens_at=time(10), closes_at=time(22)) == at(5, 10, 45)
    # 23:00, after closing -> tomorrow 10:45
    assert ready_time(now=at(5, 23), assembly_minutes=45, opens_at=time(10), closes_at=time(22)) == at(6, 10, 45)


def test_work_left_at_closing_continues_next_morning():
    # 21:30 with 90 minutes: 30 today, 60 tomorrow from 10:00
    assert ready_time(now=at(5, 21, 30), assembly_minutes=90, opens_at=time(10), closes_at=time(22)) == at(6, 11)


def test_assembly_finishing_exactly_at_closing():
    assert ready_time(now=at(5, 21), assembly_minutes=60, opens_at=time(10), closes_at=time(22)) == at(5, 22)


def test_assembly_longer_than_a_day_of_opening_hours():
    # 12 open hours a day; 30 hours of work from 10:00 on the 5th -> 12 + 12 + 6 -> 7th 16:00
    assert ready_time(now=at(5, 10), assembly_minutes=30 * 60, opens_at=time(10), closes_at=time(22)) == at(7, 16)


def test_round_the_clock_and_unknown_hours():
    assert ready_time(now=at(5, 3), assembly_minutes=30, opens_at=None, closes_at=None) == at(5, 3, 30)
    assert ready_time(now=at(5, 3), assembly_minutes=30, opens_at=time(0), closes_at=time(0)) == at(5, 3, 30)


def test_hours_past_midnight():
    # open 20:00-04:00
    assert ready_time(now=at(5, 1), assembly_minutes=60, opens_at=time(20), closes_at=time(4)) == at(5, 2)
    assert ready_time(now=at(5, 3, 30), assembly_minutes=60, opens_at=time(20), closes_at=time(4)) == at(5, 20, 30)
    assert ready_time(now=at(5, 12), assembly_minutes=60, opens_at=time(20), closes_at=time(4)) == at(5, 21)


def test_zero_assembly():
    assert ready_time(now=at(5, 12), assembly_minutes=0, opens_at=time(10), closes_at=time(22)) == at(5, 12)
    assert ready_time(now=at(5, 23), assembly_minutes=0, opens_at=time(10), closes_at=time(22)) == at(6, 10)


def test_result_keeps_the_zone_of_now():
    r = ready_time(now=at(5, 12, tz=NSK), assembly_minutes=30, opens_at=time(10), closes_at=time(22))
    assert r.tzinfo is NSK and r == at(5, 12, 30, tz=NSK)


def test_naive_and_negative_inputs_are_refused():
    with pytest.raises(ValueError):
        ready_time(now=datetime(2025, 3, 5, 12), assembly_minutes=10, opens_at=None, closes_at=None)
    with pytest.raises(ValueError):
        ready_time(now=at(5, 12), assembly_minutes=-1, opens_at=None, closes_at=None)


@given(
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(MSK)),
    minutes=st.integers(min_value=0, max_value=5000),
    opens=st.times(),
    closes=st.times(),
)
def test_ready_time_properties(now, minutes, opens, closes):
    """Never before now + assembly, and the finish moment is within (or at the end of) opening hours."""
    opens, closes = opens.replace(microsecond=0, second=0), closes.replace(microsecond=0, second=0)
    r = ready_time(now=now, assembly_minutes=minutes, opens_at=opens, closes_at=closes)
    assert r >= now + timedelta(minutes=minutes)
    t = r.time()
    if opens == closes:
        assert r == now + timedelta(minutes=minutes)
    elif opens < closes:
        assert opens <= t <= closes
    else:
        assert t >= opens or t <= closes
    # one more minute of work never finishes earlier
    assert ready_time(now=now, assembly_minutes=minutes + 1, opens_at=opens, closes_at=closes) > r


# --- handover and window ----------------------------------------------------------------------


def test_ready_before_cutoff_goes_the_same_day():
    assert promise_window(now=at(5, 9), ready_at=at(5, 15, 59), rule=CDEK_MSK) == (date(2025, 3, 6), date(2025, 3, 7))


def test_ready_exactly_at_cutoff_still_goes_the_same_day():
    assert handover_date(now=at(5, 9), ready_at=at(5, 16), cutoff=time(16)) == date(2025, 3, 5)


def test_ready_after_cutoff_goes_the_next_day():
    assert promise_window(now=at(5, 9), ready_at=at(5, 16, 1), rule=CDEK_MSK) == (date(2025, 3, 7), date(2025, 3, 8))


def test_ready_in_the_past_counts_from_now():
    # the goods were "ready" yesterday, but we only now book the carrier, after today's cut-off
    assert handover_date(now=at(5, 17), ready_at=at(4, 10), cutoff=time(16)) == date(2025, 3, 6)


def test_cutoff_is_read_on_the_clock_of_ready_at():
    # 12:30 UTC is 15:30 in Moscow (before a 16:00 cut-off) but 19:30 in Novosibirsk (after)
    utc = datetime(2025, 3, 5, 12, 30, tzinfo=timezone.utc)
    assert handover_date(now=utc, ready_at=utc.astimezone(MSK), cutoff=time(16)) == date(2025, 3, 5)
    assert handover_date(now=utc, ready_at=utc.astimezone(NSK), cutoff=time(16)) == date(2025, 3, 6)


def test_same_day_rule():
    rule = CarrierRule("dostavista", "courier", "Москва", 59_900, 0, 0, time(18))
    assert promise_window(now=at(5, 10), ready_at=at(5, 11), rule=rule) == (date(2025, 3, 5), date(2025, 3, 5))


def test_rule_validation():
    with pytest.raises(ValueError):
        CarrierRule("x", "post", "Москва", 100, 3, 2, time(12))
    with pytest.raises(ValueError):
        CarrierRule("x", "post", "Москва", -1, 1, 2, time(12))
    with pytest.raises(ValueError):
        promise_window(now=datetime(2025, 3, 5), ready_at=at(5, 10), rule=CDEK_MSK)


@given(
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(MSK)),
    delay=st.integers(min_value=-3000, max_value=3000),
    cutoff=st.times(),
    dmin=st.integers(min_value=0, max_value=10),
    extra=st.integers(min_value=0, max_value=10),
)
def test_window_properties(now, delay, cutoff, dmin, extra):
    ready = now + timedelta(minutes=delay)
    rule = CarrierRule("c", "courier", "r", 0, dmin, dmin + extra, cutoff)
    d_from, d_to = promise_window(now=now, ready_at=ready, rule=rule)
    start = max(ready, now).date()
    assert d_to - d_from == timedelta(days=extra)
    assert start + timedelta(days=dmin) <= d_from <= start + timedelta(days=dmin + 1)
    # later readiness never gives an earlier promise
    later = promise_window(now=now, ready_at=ready + timedelta(minutes=1), rule=rule)
    assert later >= (d_from, d_to)


# --- is_late ----------------------------------------------------------------------------------


def test_is_late():
    assert not is_late(date(2025, 3, 7), at(7, 23, 59))
    assert is_late(date(2025, 3, 7), at(8, 0, 1))
    assert not is_late(date(2025, 3, 7), at(6, 12))
    # 22:00 UTC on the 7th is already the 8th in Moscow: the zone of delivered_at decides
    utc = datetime(2025, 3, 7, 22, 0, tzinfo=timezone.utc)
    assert not is_late(date(2025, 3, 7), utc)
    assert is_late(date(2025, 3, 7), utc.astimezone(MSK))
    with pytest.raises(ValueError):
        is_late(date(2025, 3, 7), datetime(2025, 3, 8))


# --- rules and quotes -------------------------------------------------------------------------


RULES = [
    CDEK_MSK,
    CarrierRule("cdek", DeliveryMethod.PICKUP_POINT, "Москва", 19_900, 2, 3, time(16)),
    CarrierRule("russian_post", DeliveryMethod.POST, "Москва", 24_900, 3, 6, time(13)),
    CarrierRule("dostavista", DeliveryMethod.COURIER, "Москва", 59_900, 0, 0, time(18), frozenset({"MSK-014"})),
    CarrierRule("cdek", DeliveryMethod.COURIER, "Татарстан", 49_900, 3, 4, time(16)),
]


def test_rules_for_filters_by_region_and_sending_location():
    assert [r.carrier for r in rules_for(RULES, region=" москва ", location_id="WH-1")] == ["cdek", "cdek", "russian_post"]
    assert [r.carrier for r in rules_for(RULES, region="Москва", location_id="MSK-014")] == [
        "cdek", "cdek", "russian_post", "dostavista"
    ]
    assert rules_for(RULES, region="Камчатка", location_id="WH-1") == []


def test_quote_orders_by_latest_date_then_price():
    qs = quote(RULES, now=at(5, 10), ready_at=at(5, 12), region="Москва", location_id="MSK-014")
    assert [(q.carrier, q.method, q.date_from, q.date_to, q.price) for q in qs] == [
        ("dostavista", DeliveryMethod.COURIER, date(2025, 3, 5), date(2025, 3, 5), 59_900),
        ("cdek", DeliveryMethod.COURIER, date(2025, 3, 6), date(2025, 3, 7), 39_900),
        ("cdek", DeliveryMethod.PICKUP_POINT, date(2025, 3, 7), date(2025, 3, 8), 19_900),
        ("russian_post", DeliveryMethod.POST, date(2025, 3, 8), date(2025, 3, 11), 24_900),
    ]
    assert all(q.currency == "RUB" for q in qs)


async def test_rules_and_quotes_round_trip_through_the_pydantic_converter():
    """``time`` and ``date`` fields need Temporal's pydantic data converter (the default JSON
    converter cannot encode them)."""
    from temporalio.contrib.pydantic import pydantic_data_converter as dc

    q = quote(RULES, now=at(5, 10), ready_at=at(5, 12), region="Москва", location_id="MSK-014")[0]
    rule = RULES[3]
    assert (await dc.decode(await dc.encode([rule, q]), [CarrierRule, type(q)])) == [rule, q]
