"""domain.delivery: carrier rules applied to a sourcing plan; lateness on the customer's calendar;
domain.planning.delivery_price takes the quoted price."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest

from domain.delivery import delivery_options, shipment_late
from contracts.order import Address, Delivery, DeliveryMethod as OrderMethod
from domain.planning import DEFAULT_DELIVERY_PRICE, delivery_price
from domain.promise import CarrierRule, DeliveryMethod
from domain.sourcing import PlannedShipment, SourcingLine
from contracts.stock import LocationInfo

MSK_TZ = timezone(timedelta(hours=3))
WH = LocationInfo(id="WH-ONLINE", name="Склад", kind="warehouse", city="Подольск", region="RU-MOS", lat=55.43,
                  lon=37.54, opens_at="00:00", closes_at="23:59")
MSK = LocationInfo(id="MSK-001", name="Москва", kind="store", city="Москва", region="RU-MOW", lat=55.75, lon=37.61,
                   opens_at="10:00", closes_at="22:00")
ALA = LocationInfo(id="ALA-001", name="Алматы", kind="store", city="Алматы", region="KZ-ALA", lat=43.2, lon=76.8,
                   opens_at="10:00", closes_at="22:00")
LOCS = {l.id: l for l in (WH, MSK, ALA)}


def rule(carrier: str, method: DeliveryMethod, price: int, dmin: int, dmax: int, cutoff: str,
         only: set[str] | None = None, region: str = "RU-MOW") -> CarrierRule:
    hh, mm = map(int, cutoff.split(":"))
    return CarrierRule(carrier=carrier, method=method, region=region, price=price, days_min=dmin, days_max=dmax,
                       cutoff=time(hh, mm), from_location_ids=frozenset(only) if only else None)


RULES = [
    rule("cdek", DeliveryMethod.COURIER, 39_900, 1, 2, "15:00"),
    rule("cdek", DeliveryMethod.COURIER, 39_900, 1, 1, "18:00", {"WH-ONLINE"}),
    rule("cdek", DeliveryMethod.PICKUP_POINT, 19_900, 1, 2, "15:00"),
    rule("post", DeliveryMethod.POST, 29_900, 2, 4, "12:00", {"WH-ONLINE"}),
    rule("cdek", DeliveryMethod.COURIER, 99_900, 1, 1, "15:00", region="RU-SPE"),  # another region: never applies
]


def ship(*locs: str) -> list[PlannedShipment]:
    return [PlannedShipment(location_id=l, lines=(SourcingLine(1, "SKU", 1),), reason="", distance_km=None)
            for l in locs]


def at(hh: int, mm: int = 0, day: int = 23, tz: timezone = MSK_TZ) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=tz)


def windows(options: list) -> dict[str, tuple[date, date, int]]:
    return {o.option_id: (o.date_from, o.date_to, o.price) for o in options}


def test_one_shipment_from_the_warehouse_morning_best_first() -> None:
    opts = delivery_options(ship("WH-ONLINE"), LOCS, RULES, region="RU-MOW", now=at(10), assembly_minutes=120)
    # ready 12:00: the warehouse's own courier rule (1 day) beats the general one (1-2 days)
    assert [o.option_id for o in opts] == ["cdek:courier", "cdek:pickup_point", "post:post"]
    assert windows(opts) == {
        "cdek:courier": (date(2026, 11, 24), date(2026, 11, 24), 39_900),
        "cdek:pickup_point": (date(2026, 11, 24), date(2026, 11, 25), 19_900),
        "post:post": (date(2026, 11, 25), date(2026, 11, 27), 29_900),  # ready 12:00 = the post cut-off
    }
    assert opts[0].shipments[0].ready_at == at(12) and opts[0].shipments[0].cutoff == time(18)


def test_past_the_cutoff_hand_over_moves_to_the_next_day() -> None:
    opts = windows(delivery_options(ship("WH-ONLINE"), LOCS, RULES, region="RU-MOW", now=at(14),
                                    assembly_minutes=120))
    # ready 16:00: still before the warehouse courier's 18:00, after the 15:00 and 12:00 cut-offs
    assert opts["cdek:courier"][:2] == (date(2026, 11, 24), date(2026, 11, 24))
    assert opts["cdek:pickup_point"][:2] == (date(2026, 11, 25), date(2026, 11, 26))
    assert opts["post:post"][:2] == (date(2026, 11, 26), date(2026, 11, 28))


def test_store_hours_and_the_location_time_zone_count() -> None:
    # 23:00 in Moscow: the store is closed, assembly runs 10:00-12:00 tomorrow, hand-over tomorrow
    late_evening = windows(delivery_options(ship("MSK-001"), LOCS, RULES, region="RU-MOW", now=at(23),
                                            assembly_minutes=120))
    assert late_evening == {"cdek:courier": (date(2026, 11, 25), date(2026, 11, 26), 39_900),
                            "cdek:pickup_point": (date(2026, 11, 25), date(2026, 11, 26), 19_900)}
    # 11:00 in Moscow is 13:00 in Almaty: ready 15:00 local = the cut-off, so it leaves today
    assert windows(delivery_options(ship("ALA-001"), LOCS, RULES, region="RU-MOW", now=at(11),
                                    assembly_minutes=120))["cdek:courier"][:2] == (date(2026, 11, 24), date(2026, 11, 25))
    # 11:30 in Moscow: ready 15:30 in Almaty, after the cut-off: one day later
    assert windows(delivery_options(ship("ALA-001"), LOCS, RULES, region="RU-MOW", now=at(11, 30),
                                    assembly_minutes=120))["cdek:courier"][:2] == (date(2026, 11, 25), date(2026, 11, 26))


def test_split_order_needs_a_rule_for_every_shipment_and_takes_the_latest_window() -> None:
    opts = delivery_options(ship("WH-ONLINE", "MSK-001"), LOCS, RULES, region="RU-MOW", now=at(10),
                            assembly_minutes=120)
    by_id = {o.option_id: o for o in opts}
    assert set(by_id) == {"cdek:courier", "cdek:pickup_point"}  # the post rule serves the warehouse only
    courier = by_id["cdek:courier"]
    assert [s.location_id for s in courier.shipments] == ["WH-ONLINE", "MSK-001"]
    # the warehouse's parcel comes on the 24th, the store's within 24-25: the customer has all by the 25th
    assert (courier.date_from, courier.date_to) == (date(2026, 11, 24), date(2026, 11, 25))
    assert courier.price == 39_900  # paid once per order


def test_split_price_is_the_dearest_route() -> None:
    rules = [rule("cdek", DeliveryMethod.COURIER, 39_900, 1, 2, "15:00", {"WH-ONLINE"}),
             rule("cdek", DeliveryMethod.COURIER, 59_900, 3, 5, "15:00", {"ALA-001"})]
    (opt,) = delivery_options(ship("WH-ONLINE", "ALA-001"), LOCS, rules, region="RU-MOW", now=at(10),
                              assembly_minutes=60)
    assert opt.price == 59_900 and opt.date_to == date(2026, 11, 28)


def test_no_rule_for_the_region_or_no_shipment_gives_nothing() -> None:
    assert delivery_options(ship("WH-ONLINE"), LOCS, RULES, region="RU-NVS", now=at(10), assembly_minutes=120) == []
    assert delivery_options([], LOCS, RULES, region="RU-MOW", now=at(10), assembly_minutes=120) == []
    with pytest.raises(ValueError):
        delivery_options(ship("WH-ONLINE"), LOCS, RULES, region="RU-MOW", now=datetime(2026, 11, 23, 10),
                         assembly_minutes=120)


def test_location_assembly_sla_overrides_the_default() -> None:
    slow = {**LOCS, "WH-ONLINE": LocationInfo(**{**WH.__dict__, "assembly_sla_minutes": 600})}
    opts = windows(delivery_options(ship("WH-ONLINE"), slow, RULES, region="RU-MOW", now=at(10),
                                    assembly_minutes=120))
    # 10:00 + 600 min = 20:00: past every cut-off, hand-over on the 24th
    assert opts["cdek:courier"][:2] == (date(2026, 11, 25), date(2026, 11, 25))
    assert opts["cdek:pickup_point"][:2] == (date(2026, 11, 25), date(2026, 11, 26))


def test_late_is_judged_on_the_customers_calendar() -> None:
    promised = "2026-11-25"
    on_time_utc = datetime(2026, 11, 25, 20, 30, tzinfo=timezone.utc)  # 23:30 in Moscow
    after_midnight_msk = datetime(2026, 11, 25, 21, 30, tzinfo=timezone.utc)  # 00:30 on the 26th in Moscow
    assert shipment_late(promised, on_time_utc, "RU-MOW") is False
    assert shipment_late(promised, after_midnight_msk, "RU-MOW") is True
    assert shipment_late(promised, after_midnight_msk, None) is False  # its own (UTC) calendar
    assert shipment_late(None, after_midnight_msk, "RU-MOW") is None  # nothing was promised
    assert shipment_late(date(2026, 11, 25), datetime(2026, 11, 26, 0, 30), "RU-MOW") is True  # naive = UTC


def test_delivery_price_takes_the_quoted_price_else_the_default() -> None:
    addr = Address(region="RU-MOW", city="Москва", line="ул. Тверская, 1", postcode="125009")
    assert delivery_price(Delivery(method=OrderMethod.courier, address=addr), 2) == DEFAULT_DELIVERY_PRICE[OrderMethod.courier]
    assert delivery_price(Delivery(method=OrderMethod.courier, address=addr, price=12_300), 2) == 12_300
    assert delivery_price(Delivery(method=OrderMethod.post, address=addr, price=0), 1) == 0
