"""domain.sourcing: where each line ships from, and why."""

from __future__ import annotations

import itertools
import random
import statistics
import time as _time
from datetime import datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.sourcing import (
    Destination,
    LocationKind,
    PlannedShipment,
    SourceLocation,
    SourcingLine,
    SourcingMode,
    SourcingPlan,
    SourcingRequest,
    haversine_km,
    is_open,
    source,
)

MSK = timezone(timedelta(hours=3))
NOON = datetime(2025, 3, 5, 12, 0, tzinfo=MSK)
NIGHT = datetime(2025, 3, 5, 23, 30, tzinfo=MSK)

# places (lat, lon)
MOSCOW_CENTRE = (55.7558, 37.6173)
TVERSKAYA = (55.7652, 37.6050)  # ~1.2 km from the centre
ARBAT = (55.7495, 37.5870)  # ~2 km
KHIMKI = (55.8970, 37.4297)  # Moscow Oblast, ~20 km
PODOLSK = (55.4312, 37.5447)  # Moscow Oblast
KLIN = (56.3319, 36.7300)  # Moscow Oblast, north-west
TVER = (56.8587, 35.9176)  # Tver Oblast, ~85 km from Klin
SPB = (59.9386, 30.3141)


def loc(
    id: str,
    where=TVERSKAYA,
    *,
    city: str = "Москва",
    region: str = "Москва",
    kind: LocationKind | str = LocationKind.STORE,
    ship_from_store: bool = True,
    pickup: bool = True,
    opens_at: time | None = time(10, 0),
    closes_at: time | None = time(22, 0),
    daily_capacity: int | None = None,
    assigned_today: int = 0,
    utc_offset_minutes: int | None = None,
) -> SourceLocation:
    return SourceLocation(
        id=id,
        name=f"Store {id}",
        kind=kind,
        city=city,
        region=region,
        lat=where[0],
        lon=where[1],
        ship_from_store=ship_from_store,
        pickup=pickup,
        opens_at=opens_at,
        closes_at=closes_at,
        daily_capacity=daily_capacity,
        assigned_today=assigned_today,
        utc_offset_minutes=utc_offset_minutes,
    )


def wh(id: str, where=PODOLSK, *, city="Подольск", region="Московская область", **kw) -> SourceLocation:
    kw.setdefault("opens_at", None)
    kw.setdefault("closes_at", None)
    return loc(id, where, city=city, region=region, kind=LocationKind.WAREHOUSE, ship_from_store=False, pickup=False, **kw)


MOSCOW = Destination(region="Москва", city="Москва", lat=MOSCOW_CENTRE[0], lon=MOSCOW_CENTRE[1])


def lines(*specs: tuple[str, int]) -> list[SourcingLine]:
    return [SourcingLine(pos_id=i, sku=sku, qty=q) for i, (sku, q) in enumerate(specs, start=1)]


def stock(**per_loc: dict[str, int]) -> dict[tuple[str, str], int]:
    """stock(MSK_1={"A": 1}) -> {("A", "MSK-1"): 1} (underscores become dashes)."""
    return {(sku, lid.replace("_", "-")): q for lid, skus in per_loc.items() for sku, q in skus.items()}


def req(lines_, locations, available, *, dest=MOSCOW, now=NOON, **kw) -> SourcingRequest:
    return SourcingRequest(lines=lines_, locations=locations, available=available, destination=dest, now=now, **kw)


def where_from(plan: SourcingPlan) -> dict[int, list[tuple[str, int]]]:
    out: dict[int, list[tuple[str, int]]] = {}
    for s in plan.shipments:
        for ln in s.lines:
            out.setdefault(ln.pos_id, []).append((s.location_id, ln.qty))
    return {pos: sorted(v) for pos, v in out.items()}


# --- one location with everything --------------------------------------------------------------


def test_one_store_with_everything_nearest_wins_and_says_why():
    cart = lines(("A", 1), ("B", 2), ("C", 1))
    locations = [loc("MSK-002", ARBAT), loc("MSK-014", TVERSKAYA), wh("WH-1")]
    av = stock(MSK_002={"A": 1, "B": 2, "C": 1}, MSK_014={"A": 5, "B": 5, "C": 5}, WH_1={"A": 9, "B": 9, "C": 9})
    plan = source(req(cart, locations, av))
    assert [s.location_id for s in plan.shipments] == ["MSK-014"]
    (ship,) = plan.shipments
    assert ship.lines == tuple(cart)
    assert ship.transfer_to is None
    assert ship.distance_km == pytest.approx(1.3, abs=0.1)
    assert ship.reason == "MSK-014: has all 3 lines, same city (1.3 km)"
    assert plan.reasons[0] == "one location has all 3 lines: MSK-014"
    assert ship.reason in plan.reasons
    assert plan.unfulfilled == () and plan.complete


def test_one_location_with_everything_beats_two_nearer_ones():
    cart = lines(("A", 1), ("B", 1))
    locations = [loc("MSK-1", TVERSKAYA), loc("MSK-2", ARBAT), wh("WH-1")]
    av = stock(MSK_1={"A": 1}, MSK_2={"B": 1}, WH_1={"A": 1, "B": 1})
    plan = source(req(cart, locations, av))
    assert [s.location_id for s in plan.shipments] == ["WH-1"]


def test_same_region_before_a_nearer_location_in_another_region():
    klin = Destination(region="Московская область", city="Клин", lat=KLIN[0], lon=KLIN[1])
    cart = lines(("A", 1))
    locations = [
        loc("TVR-1", TVER, city="Тверь", region="Тверская область"),
        wh("WH-POD", PODOLSK),
    ]
    assert haversine_km(*KLIN, *TVER) < haversine_km(*KLIN, *PODOLSK)
    av = stock(TVR_1={"A": 1}, WH_POD={"A": 1})
    plan = source(req(cart, locations, av, dest=klin))
    assert [s.location_id for s in plan.shipments] == ["WH-POD"]
    assert "same region, Подольск" in plan.shipments[0].reason


def test_same_city_before_same_region():
    cart = lines(("A", 1))
    dest = Destination(region="Московская область", city="Химки", lat=KHIMKI[0], lon=KHIMKI[1])
    locations = [
        loc("MSK-1", TVERSKAYA),  # Moscow city is another region, and nearer than Podolsk
        wh("WH-POD", PODOLSK),
        loc("KHM-1", (55.90, 37.40), city="Химки", region="Московская область"),
    ]
    av = stock(MSK_1={"A": 1}, WH_POD={"A": 1}, KHM_1={"A": 1})
    plan = source(req(cart, locations, av, dest=dest))
    assert plan.shipments[0].location_id == "KHM-1"
    assert "same city" in plan.shipments[0].reason


def test_warehouse_and_store_tie_nearest_wins_then_id():
    cart = lines(("A", 1))
    same_spot = (55.70, 37.60)
    near = (55.75, 37.62)
    locations = [
        wh("WH-1", same_spot, city="Москва", region="Москва"),
        loc("MSK-9", near),
    ]
    av = stock(WH_1={"A": 1}, MSK_9={"A": 1})
    assert source(req(cart, locations, av)).shipments[0].location_id == "MSK-9"
    # at the same spot, the id decides (deterministic)
    locations = [wh("WH-1", same_spot, city="Москва", region="Москва"), loc("AAA-1", same_spot)]
    av = stock(WH_1={"A": 1}, AAA_1={"A": 1})
    assert source(req(cart, locations, av)).shipments[0].location_id == "AAA-1"


def test_unknown_destination_coordinates_rank_by_city_region_then_id():
    dest = Destination(region="Москва", city="Москва")
    cart = lines(("A", 1))
    locations = [loc("MSK-9"), loc("MSK-1"), wh("WH-1")]
    av = stock(MSK_9={"A": 1}, MSK_1={"A": 1}, WH_1={"A": 1})
    plan = source(req(cart, locations, av, dest=dest))
    assert plan.shipments[0].location_id == "MSK-1"
    assert plan.shipments[0].distance_km is None
    assert plan.shipments[0].reason == "MSK-1: has the line, same city"


# --- capabilities -----------------------------------------------------------------------------


def test_store_that_does_not_ship_from_store_is_never_used_and_is_mentioned():
    cart = lines(("A", 1), ("B", 1))
    locations = [loc("MSK-1", ship_from_store=False), wh("WH-1")]
    av = stock(MSK_1={"A": 5, "B": 5}, WH_1={"A": 1, "B": 1})
    plan = source(req(cart, locations, av))
    assert [s.location_id for s in plan.shipments] == ["WH-1"]
    assert "MSK-1 has everything but does not ship from store" in plan.reasons


def test_no_capacity_left_today_is_not_eligible():
    cart = lines(("A", 1))
    locations = [loc("MSK-1", daily_capacity=40, assigned_today=40), loc("MSK-2", ARBAT, daily_capacity=40, assigned_today=39)]
    av = stock(MSK_1={"A": 1}, MSK_2={"A": 1})
    plan = source(req(cart, locations, av))
    assert [s.location_id for s in plan.shipments] == ["MSK-2"]
    assert "MSK-1 has everything but no assembly capacity left today (40/40)" in plan.reasons


def test_only_full_capacity_store_has_it_means_unfulfilled():
    cart = lines(("A", 1))
    plan = source(req(cart, [loc("MSK-1", daily_capacity=0)], stock(MSK_1={"A": 1})))
    assert plan.shipments == ()
    assert plan.unfulfilled == (SourcingLine(1, "A", 1),)
    assert not plan.complete


def test_closed_store_ranks_after_open_ones_but_stays_eligible():
    cart = lines(("A", 1))
    locations = [loc("MSK-1", TVERSKAYA), wh("WH-1")]
    av = stock(MSK_1={"A": 1}, WH_1={"A": 1})
    assert source(req(cart, locations, av, now=NOON)).shipments[0].location_id == "MSK-1"
    assert source(req(cart, locations, av, now=NIGHT)).shipments[0].location_id == "WH-1"
    # alone, the closed store is still used, and the reason says so
    plan = source(req(cart, [loc("MSK-1")], stock(MSK_1={"A": 1}), now=NIGHT))
    assert [s.location_id for s in plan.shipments] == ["MSK-1"]
    assert "closed now, opens 10:00" in plan.shipments[0].reason


def test_excluded_locations_are_skipped():
    cart = lines(("A", 1))
    locations = [loc("MSK-1"), loc("MSK-2", ARBAT)]
    av = stock(MSK_1={"A": 1}, MSK_2={"A": 1})
    plan = source(req(cart, locations, av, exclude=frozenset({"MSK-1"})))
    assert [s.location_id for s in plan.shipments] == ["MSK-2"]
    assert "MSK-1 has everything but excluded by request" in plan.reasons


def test_opening_hours_are_read_in_the_location_time_zone():
    vvo = loc("VVO-1", utc_offset_minutes=600)  # Vladivostok, UTC+10, opens 10-22 local
    at_08_utc = datetime(2025, 3, 5, 8, 0, tzinfo=timezone.utc)  # 18:00 in Vladivostok
    at_13_utc = datetime(2025, 3, 5, 13, 0, tzinfo=timezone.utc)  # 23:00 in Vladivostok
    assert is_open(vvo, at_08_utc)
    assert not is_open(vvo, at_13_utc)
    # without an offset, the wall clock of now is used
    assert is_open(loc("X"), NOON) and not is_open(loc("X"), NIGHT)


@pytest.mark.parametrize(
    "opens, closes, at, expected",
    [
        (time(22), time(2), time(23, 30), True),
        (time(22), time(2), time(1, 59), True),
        (time(22), time(2), time(2, 0), False),
        (time(22), time(2), time(12), False),
        (time(9), time(9), time(3), True),  # same opening and closing: round the clock
        (None, None, time(3), True),
        (time(10), time(22), time(10), True),
        (time(10), time(22), time(22), False),
    ],
)
def test_is_open_hours(opens, closes, at, expected):
    assert is_open(loc("X", opens_at=opens, closes_at=closes), datetime.combine(NOON.date(), at, tzinfo=MSK)) is expected


def test_no_now_means_everyone_counts_as_open():
    assert is_open(loc("X"), None)


# --- fewest shipments ---------------------------------------------------------------------------


def test_exact_pair_beats_greedy_triple():
    # the classic greedy trap: BIG has 4 of 6 lines, but P + Q have all 6 between them
    cart = lines(("S1", 1), ("S2", 1), ("S3", 1), ("S4", 1), ("S5", 1), ("S6", 1))
    locations = [loc("BIG", TVERSKAYA), loc("P", ARBAT), wh("Q")]
    av = stock(
        BIG={"S1": 1, "S2": 1, "S3": 1, "S4": 1},
        P={"S1": 1, "S2": 1, "S5": 1},
        Q={"S3": 1, "S4": 1, "S6": 1},
    )
    plan = source(req(cart, locations, av))
    assert sorted(s.location_id for s in plan.shipments) == ["P", "Q"]
    assert plan.reasons[0] == "no single location has all 6 lines; 2 shipments is the fewest possible"
    assert "P: 3 of 6 lines (pos 1, 2, 5), same city" in plan.reasons[1]


def test_pair_choice_prefers_the_nearer_pair():
    cart = lines(("A", 1), ("B", 1))
    locations = [loc("NEAR-A", TVERSKAYA), loc("NEAR-B", ARBAT), wh("FAR-A", SPB, city="СПб", region="СПб"), wh("FAR-B")]
    av = stock(NEAR_A={"A": 1}, NEAR_B={"B": 1}, FAR_A={"A": 1}, FAR_B={"B": 1})
    plan = source(req(cart, locations, av))
    assert where_from(plan) == {1: [("NEAR-A", 1)], 2: [("NEAR-B", 1)]}


def test_greedy_when_three_are_needed():
    cart = lines(("A", 1), ("B", 1), ("C", 1))
    locations = [loc("L1"), loc("L2", ARBAT), wh("L3")]
    av = stock(L1={"A": 1}, L2={"B": 1}, L3={"C": 1})
    plan = source(req(cart, locations, av))
    assert len(plan.shipments) == 3
    assert plan.reasons[0].startswith("no two locations have all 3 lines between them; 3 shipments")


def test_each_line_goes_to_the_best_ranked_chosen_location():
    cart = lines(("A", 1), ("B", 1), ("C", 1))
    # both of the pair have A; the nearer one takes it
    locations = [loc("NEAR", TVERSKAYA), wh("FAR")]
    av = stock(NEAR={"A": 1, "B": 1}, FAR={"A": 1, "C": 1})
    plan = source(req(cart, locations, av))
    assert where_from(plan) == {1: [("NEAR", 1)], 2: [("NEAR", 1)], 3: [("FAR", 1)]}


# --- availability, splits, shortages ------------------------------------------------------------


def test_never_more_than_available_with_two_lines_of_one_sku():
    cart = [SourcingLine(1, "A", 2), SourcingLine(2, "A", 2)]
    locations = [loc("MSK-1"), wh("WH-1")]
    av = stock(MSK_1={"A": 3}, WH_1={"A": 4})
    plan = source(req(cart, locations, av))
    assert where_from(plan) == {1: [("WH-1", 2)], 2: [("WH-1", 2)]}


def test_split_only_when_no_location_has_the_whole_line():
    cart = lines(("A", 3))
    locations = [loc("MSK-1"), loc("MSK-2", ARBAT), wh("WH-1")]
    av = stock(MSK_1={"A": 2}, MSK_2={"A": 1}, WH_1={"A": 1})
    plan = source(req(cart, locations, av))
    assert where_from(plan) == {1: [("MSK-1", 2), ("MSK-2", 1)]}
    assert "pos 1 (A): no location has all 3 units; split across MSK-1 (2), MSK-2 (1)" in plan.reasons
    assert "1 of 1 line (pos 1 ×2 of 3)" in plan.shipments[0].reason


def test_short_line_reports_the_missing_quantity():
    cart = lines(("A", 1), ("B", 3), ("C", 1))
    locations = [loc("MSK-1"), wh("WH-1")]
    av = stock(MSK_1={"A": 1, "B": 1}, WH_1={"A": 1, "B": 1})
    plan = source(req(cart, locations, av))
    # A goes with the one location that has every line it can ship whole; B is taken from
    # that location first (no extra shipment), then from the next; C is nowhere
    assert where_from(plan) == {1: [("MSK-1", 1)], 2: [("MSK-1", 1), ("WH-1", 1)]}
    assert plan.unfulfilled == (SourcingLine(2, "B", 1), SourcingLine(3, "C", 1))
    assert "pos 2 (B): only 2 of 3 available, from MSK-1 (1), WH-1 (1); 1 missing" in plan.reasons
    assert "pos 3 (C): none of 1 available at any eligible location" in plan.reasons


def test_split_lines_prefer_locations_already_shipping():
    cart = lines(("A", 1), ("B", 2))
    locations = [loc("MSK-1"), loc("MSK-2", ARBAT), wh("WH-1")]
    # B: nobody has 2; WH-1 (farther) is already shipping A, so B's first unit comes from there
    av = stock(MSK_1={"B": 1}, MSK_2={"B": 1}, WH_1={"A": 1, "B": 1})
    plan = source(req(cart, locations, av))
    assert where_from(plan) == {1: [("WH-1", 1)], 2: [("MSK-1", 1), ("WH-1", 1)]}


def test_negative_stock_counts_as_none():
    plan = source(req(lines(("A", 1)), [loc("MSK-1")], {("A", "MSK-1"): -3}))
    assert plan.shipments == () and plan.unfulfilled == (SourcingLine(1, "A", 1),)


def test_empty_cart():
    plan = source(req([], [loc("MSK-1")], {}))
    assert plan == SourcingPlan(shipments=(), unfulfilled=(), reasons=())


@pytest.mark.parametrize(
    "cart, locations",
    [
        ([SourcingLine(1, "A", 0)], [loc("X")]),
        ([SourcingLine(1, "A", 1), SourcingLine(1, "B", 1)], [loc("X")]),
        ([SourcingLine(1, "A", 1)], [loc("X"), loc("X")]),
    ],
)
def test_malformed_requests_raise(cart, locations):
    with pytest.raises(ValueError):
        source(req(cart, locations, {}))


# --- pickup -----------------------------------------------------------------------------------


def test_pickup_store_with_everything_needs_no_transfer():
    cart = lines(("A", 1), ("B", 1))
    locations = [loc("MSK-1", ship_from_store=False, daily_capacity=0), wh("WH-1")]
    av = stock(MSK_1={"A": 1, "B": 1}, WH_1={"A": 9, "B": 9})
    plan = source(req(cart, locations, av, mode=SourcingMode.PICKUP, pickup_store_id="MSK-1", now=NIGHT))
    assert plan.shipments == (
        PlannedShipment("MSK-1", tuple(cart), "MSK-1: pickup store, has all 2 lines on hand", 0.0, None),
    )
    assert plan.reasons[0] == "pickup at MSK-1: has all 2 lines on hand"


def test_pickup_lacking_lines_come_by_transfer_to_the_store():
    cart = lines(("A", 2), ("B", 1))
    locations = [loc("MSK-1"), loc("MSK-2", ARBAT), wh("WH-1")]
    av = stock(MSK_1={"A": 1}, MSK_2={"A": 1, "B": 1}, WH_1={"A": 5, "B": 5})
    plan = source(req(cart, locations, av, mode="pickup", pickup_store_id="MSK-1"))
    assert where_from(plan) == {1: [("MSK-1", 1), ("MSK-2", 1)], 2: [("MSK-2", 1)]}
    own, transfer = plan.shipments
    assert own.location_id == "MSK-1" and own.transfer_to is None
    assert transfer.location_id == "MSK-2" and transfer.transfer_to == "MSK-1"
    # the distance of a transfer is to the pickup store, not to the customer
    assert transfer.distance_km == pytest.approx(haversine_km(*ARBAT, *TVERSKAYA), abs=0.01)
    assert transfer.reason.startswith("MSK-2: transfer to MSK-1, 2 of 2 lines (pos 1 ×1 of 2, 2)")


def test_pickup_store_excluded_means_everything_by_transfer():
    cart = lines(("A", 1))
    locations = [loc("MSK-1"), wh("WH-1")]
    av = stock(MSK_1={"A": 1}, WH_1={"A": 1})
    plan = source(req(cart, locations, av, mode="pickup", pickup_store_id="MSK-1", exclude=frozenset({"MSK-1"})))
    assert [(s.location_id, s.transfer_to) for s in plan.shipments] == [("WH-1", "MSK-1")]


@pytest.mark.parametrize("pickup_id, locations", [(None, [loc("X")]), ("Y", [loc("X")]), ("X", [loc("X", pickup=False)])])
def test_pickup_request_errors(pickup_id, locations):
    with pytest.raises(ValueError):
        source(req(lines(("A", 1)), locations, {}, mode="pickup", pickup_store_id=pickup_id))


# --- properties -------------------------------------------------------------------------------

CITIES = [
    ("Москва", "Москва", 55.75, 37.62),
    ("Подольск", "Московская область", 55.43, 37.54),
    ("Санкт-Петербург", "Санкт-Петербург", 59.94, 30.31),
    ("Казань", "Татарстан", 55.79, 49.12),
]


@st.composite
def requests(draw, *, max_locations: int = 7, max_skus: int = 5) -> SourcingRequest:
    n_loc = draw(st.integers(min_value=1, max_value=max_locations))
    locations = []
    for i in range(n_loc):
        city, region, lat, lon = draw(st.sampled_from(CITIES))
        kind = draw(st.sampled_from([LocationKind.STORE, LocationKind.WAREHOUSE]))
        cap = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=3)))
        hours = draw(st.sampled_from([(None, None), (time(10), time(22)), (time(22), time(6))]))
        locations.append(
            SourceLocation(
                id=f"L{i:02d}",
                name=f"L{i}",
                kind=kind,
                city=city,
                region=region,
                lat=lat + draw(st.floats(min_value=-0.2, max_value=0.2)),
                lon=lon + draw(st.floats(min_value=-0.2, max_value=0.2)),
                ship_from_store=draw(st.booleans()),
                pickup=draw(st.booleans()),
                opens_at=hours[0],
                closes_at=hours[1],
                daily_capacity=cap,
                assigned_today=draw(st.integers(min_value=0, max_value=3)),
            )
        )
    skus = [f"S{j}" for j in range(draw(st.integers(min_value=1, max_value=max_skus)))]
    n_lines = draw(st.integers(min_value=1, max_value=6))
    cart = [SourcingLine(pos, draw(st.sampled_from(skus)), draw(st.integers(min_value=1, max_value=3))) for pos in range(1, n_lines + 1)]
    available = {
        (sku, l.id): draw(st.integers(min_value=-1, max_value=4)) for sku in skus for l in locations if draw(st.booleans())
    }
    city, region, lat, lon = draw(st.sampled_from(CITIES))
    dest = draw(st.sampled_from([Destination(region, city, lat, lon), Destination(region, city)]))
    now = datetime(2025, 3, 5, draw(st.integers(min_value=0, max_value=23)), tzinfo=MSK)
    mode = draw(st.sampled_from([SourcingMode.SHIP, SourcingMode.PICKUP]))
    pickup_id = None
    if mode == SourcingMode.PICKUP:
        stores = [l for l in locations if l.pickup]
        if not stores:
            mode = SourcingMode.SHIP
        else:
            pickup_id = draw(st.sampled_from(stores)).id
    exclude = frozenset(draw(st.lists(st.sampled_from([l.id for l in locations]), max_size=2)))
    return SourcingRequest(cart, locations, available, dest, mode, pickup_id, now, exclude)


def eligible_ids(r: SourcingRequest) -> set[str]:
    return {
        l.id
        for l in r.locations
        if l.id not in r.exclude
        and (l.kind == LocationKind.WAREHOUSE or l.ship_from_store)
        and (l.daily_capacity is None or l.assigned_today < l.daily_capacity)
        and l.id != r.pickup_store_id
    }


@settings(max_examples=400, deadline=None)
@given(requests())
def test_plan_conserves_units_and_respects_stock_and_eligibility(r):
    plan = source(r)
    # every unit is either planned or reported unfulfilled
    for ln in r.lines:
        planned = sum(x.qty for s in plan.shipments for x in s.lines if x.pos_id == ln.pos_id)
        missing = sum(x.qty for x in plan.unfulfilled if x.pos_id == ln.pos_id)
        assert planned + missing == ln.qty
        assert all(x.sku == ln.sku for s in plan.shipments for x in s.lines if x.pos_id == ln.pos_id)
    # never more than available
    taken: dict[tuple[str, str], int] = {}
    for s in plan.shipments:
        for x in s.lines:
            assert x.qty > 0
            taken[(x.sku, s.location_id)] = taken.get((x.sku, s.location_id), 0) + x.qty
    for key, q in taken.items():
        assert q <= max(0, r.available.get(key, 0))
    # only eligible locations (or the pickup store itself), one shipment per location
    ids = [s.location_id for s in plan.shipments]
    assert len(ids) == len(set(ids))
    ok = eligible_ids(r)
    for s in plan.shipments:
        if r.mode == SourcingMode.PICKUP and s.location_id == r.pickup_store_id:
            assert s.transfer_to is None and r.pickup_store_id not in r.exclude
        else:
            assert s.location_id in ok
            assert s.transfer_to == (r.pickup_store_id if r.mode == SourcingMode.PICKUP else None)
    # nothing is unfulfilled that an eligible location still had
    for u in plan.unfulfilled:
        for lid in ok:
            assert r.available.get((u.sku, lid), 0) <= taken.get((u.sku, lid), 0)
        if r.mode == SourcingMode.PICKUP and r.pickup_store_id not in r.exclude:
            assert r.available.get((u.sku, r.pickup_store_id), 0) <= taken.get((u.sku, r.pickup_store_id), 0)
    assert all(s.reason in plan.reasons for s in plan.shipments)


@settings(max_examples=300, deadline=None)
@given(requests(), st.randoms(use_true_random=False))
def test_deterministic_and_independent_of_input_order(r, rnd):
    plan = source(r)
    assert source(r) == plan
    locs = list(r.locations)
    rnd.shuffle(locs)
    av = list(r.available.items())
    rnd.shuffle(av)
    shuffled = SourcingRequest(r.lines, locs, dict(av), r.destination, r.mode, r.pickup_store_id, r.now, r.exclude)
    assert source(shuffled) == plan


def _covers(r: SourcingRequest, subset) -> bool:
    """Can every SKU group of the cart be shipped whole from one location of ``subset``?"""
    demand: dict[str, int] = {}
    for ln in r.lines:
        demand[ln.sku] = demand.get(ln.sku, 0) + ln.qty
    return all(any(r.available.get((sku, lid), 0) >= q for lid in subset) for sku, q in demand.items())


@settings(max_examples=400, deadline=None)
@given(requests(max_locations=6, max_skus=4))
def test_fewest_shipments_matches_brute_force(r):
    r = SourcingRequest(r.lines, r.locations, r.available, r.destination, SourcingMode.SHIP, None, r.now, r.exclude)
    ok = sorted(eligible_ids(r))
    if not _covers(r, ok):
        return  # shortages and splits are covered by the conservation property
    best = next(k for k in range(1, len(ok) + 1) if any(_covers(r, c) for c in itertools.combinations(ok, k)))
    plan = source(r)
    assert plan.unfulfilled == ()
    n = len(plan.shipments)
    if best <= 2:
        assert n == best  # exact for one and two shipments
    else:
        n_skus = len({ln.sku for ln in r.lines})
        assert best <= n <= best * sum(1 / i for i in range(1, n_skus + 1))


@settings(max_examples=300, deadline=None)
@given(requests())
def test_single_location_choice_is_the_best_ranked_one(r):
    r = SourcingRequest(r.lines, r.locations, r.available, r.destination, SourcingMode.SHIP, None, r.now, r.exclude)
    ok = sorted(eligible_ids(r))
    full = [lid for lid in ok if _covers(r, [lid])]
    if not full:
        return
    plan = source(r)
    assert len(plan.shipments) == 1
    by_id = {l.id: l for l in r.locations}

    def rank(lid: str):
        l = by_id[lid]
        same_region = l.region == r.destination.region
        tier = 0 if same_region and l.city == r.destination.city else 1 if same_region else 2
        dist = 0.0 if r.destination.lat is None else round(haversine_km(l.lat, l.lon, r.destination.lat, r.destination.lon), 3)
        return (not is_open(l, r.now), tier, dist, lid)

    assert plan.shipments[0].location_id == min(full, key=rank)


# --- speed ------------------------------------------------------------------------------------


def big_request(rnd: random.Random, n_locations: int = 100, n_lines: int = 10) -> SourcingRequest:
    locations = [
        SourceLocation(
            id=f"L{i:03d}", name=f"L{i}", kind=LocationKind.WAREHOUSE if i % 10 == 0 else LocationKind.STORE,
            city=CITIES[i % 4][0], region=CITIES[i % 4][1], lat=CITIES[i % 4][2] + rnd.uniform(-0.3, 0.3),
            lon=CITIES[i % 4][3] + rnd.uniform(-0.3, 0.3), ship_from_store=rnd.random() < 0.8, pickup=True,
            opens_at=time(10), closes_at=time(22), daily_capacity=50, assigned_today=rnd.randint(0, 50),
        )
        for i in range(n_locations)
    ]
    skus = [f"SKU-{j}" for j in range(300)]
    cart = [SourcingLine(p, sku, rnd.randint(1, 2)) for p, sku in enumerate(rnd.sample(skus, n_lines), start=1)]
    available = {(ln.sku, l.id): rnd.randint(0, 3) for ln in cart for l in locations if rnd.random() < 0.3}
    return SourcingRequest(cart, locations, available, Destination(*CITIES[0]), SourcingMode.SHIP, None, NOON)


def test_ten_lines_over_a_hundred_locations_is_fast():
    rnd = random.Random(7)
    reqs = [big_request(rnd) for _ in range(60)]
    times = []
    for r in reqs:
        t0 = _time.perf_counter()
        source(r)
        times.append(_time.perf_counter() - t0)
    assert statistics.median(times) < 0.010, f"median {statistics.median(times) * 1000:.2f} ms"


# --- crossing the workflow boundary ---------------------------------------------------------------


async def test_plan_and_locations_round_trip_through_temporal_converters():
    """The plan goes through Temporal's default JSON converter as is; a location with opening
    hours (``datetime.time``) needs the pydantic data converter."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.converter import DataConverter

    cart = lines(("A", 2), ("B", 1))
    plan = source(req(cart, [loc("MSK-1"), wh("WH-1")], stock(MSK_1={"A": 1}, WH_1={"A": 1, "B": 1}), mode="pickup", pickup_store_id="MSK-1"))
    for dc in (DataConverter.default, pydantic_data_converter):
        (back,) = await dc.decode(await dc.encode([plan]), [SourcingPlan])
        assert back == plan
    location = loc("MSK-1")
    (back,) = await pydantic_data_converter.decode(await pydantic_data_converter.encode([location]), [SourceLocation])
    assert back == location
