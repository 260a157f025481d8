"""adapters.ledger against real PostgreSQL: atomic, idempotent, never oversells, ERP imports keep
reservations. Each test makes its own locations and SKUs (unique ids), so it shares the session
database with the end-to-end stack without colliding."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from adapters.catalog import CatalogRepo
from adapters.delivery import DeliveryRepo
from adapters.ledger import Ledger, OutOfStock, ReservationConflict
from domain.promise import DeliveryMethod
from contracts.stock import Allocation, LocationInfo, StockLevel


def uid() -> str:
    return uuid.uuid4().hex[:8].upper()


async def make_world(engine: Any, stock: dict[tuple[str, str], int], safety: dict[str, int] | None = None
                     ) -> tuple[Ledger, dict[str, str], dict[str, str]]:
    """Locations and SKUs with fresh ids; ``stock`` uses short names ("A", "L1") mapped to them."""
    tag = uid()
    locs = {name: f"T{tag}-{name}" for name in sorted({l for _, l in stock})}
    skus = {name: f"S{tag}-{name}" for name in sorted({s for s, _ in stock})}
    await CatalogRepo(engine).upsert_locations([
        LocationInfo(id=lid, name=f"Test {lid}", kind="store", city="Тестоград", region="RU-TST", lat=10.0, lon=10.0,
                     safety_stock=(safety or {}).get(name, 0))
        for name, lid in locs.items()
    ])
    ledger = Ledger(engine)
    await ledger.set_on_hand([StockLevel(skus[s], locs[l], q) for (s, l), q in stock.items()])
    return ledger, skus, locs


async def row(engine: Any, sku: str, loc: str) -> tuple[int, int]:
    async with engine.connect() as conn:
        r = (await conn.execute(text("SELECT on_hand, reserved FROM stock WHERE sku = :s AND location_id = :l"),
                                {"s": sku, "l": loc})).one()
    return r.on_hand, r.reserved


async def reservations(engine: Any, owner: str) -> dict[str, tuple[str, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT key, status, qty FROM reservation WHERE owner = :o"), {"o": owner})
        return {r.key: (r.status, r.qty) for r in rows}


async def test_reserve_is_idempotent_by_key(engine: Any) -> None:
    ledger, sku, loc = await make_world(engine, {("A", "L1"): 5})
    owner = f"order-{uid()}"
    alloc = [Allocation(key=f"{owner}:1", sku=sku["A"], location_id=loc["L1"], qty=2)]
    await ledger.reserve(owner, alloc)
    await ledger.reserve(owner, alloc)  # a retried activity
    assert await row(engine, sku["A"], loc["L1"]) == (5, 2)
    assert await reservations(engine, owner) == {f"{owner}:1": ("held", 2)}
    assert await ledger.held(owner) == alloc
    with pytest.raises(ReservationConflict):  # the same key for another line is a bug, not a retry
        await ledger.reserve(owner, [Allocation(key=f"{owner}:1", sku=sku["A"], location_id=loc["L1"], qty=3)])


async def test_reserve_is_all_or_nothing(engine: Any) -> None:
    ledger, sku, loc = await make_world(engine, {("A", "L1"): 5, ("B", "L2"): 1})
    owner = f"order-{uid()}"
    with pytest.raises(OutOfStock) as refused:
        await ledger.reserve(owner, [
            Allocation(key=f"{owner}:1", sku=sku["A"], location_id=loc["L1"], qty=2),
            Allocation(key=f"{owner}:2", sku=sku["B"], location_id=loc["L2"], qty=2),
        ])
    assert refused.value.sku == sku["B"] and refused.value.location_id == loc["L2"]
    assert await row(engine, sku["A"], loc["L1"]) == (5, 0)  # the first line was rolled back too
    assert await reservations(engine, owner) == {}


async def test_safety_stock_is_kept_back(engine: Any) -> None:
    ledger, sku, loc = await make_world(engine, {("A", "L1"): 5}, safety={"L1": 2})
    (avail,) = await ledger.availability([sku["A"]])
    assert (avail.on_hand, avail.safety_stock, avail.available) == (5, 2, 3)
    owner = f"order-{uid()}"
    with pytest.raises(OutOfStock):
        await ledger.reserve(owner, [Allocation(key=f"{owner}:1", sku=sku["A"], location_id=loc["L1"], qty=4)])
    await ledger.reserve(owner, [Allocation(key=f"{owner}:2", sku=sku["A"], location_id=loc["L1"], qty=3)])
    assert (await ledger.availability([sku["A"]]))[0].available == 0


async def test_release_and_consume_are_idempotent_and_final(engine: Any) -> None:
    ledger, sku, loc = await make_world(engine, {("A", "L1"): 5, ("B", "L1"): 4})
    owner = f"order-{uid()}"
    a = Allocation(key=f"{owner}:1", sku=sku["A"], location_id=loc["L1"], qty=2)
    b = Allocation(key=f"{owner}:2", sku=sku["B"], location_id=loc["L1"], qty=3)
    await ledger.reserve(owner, [a, b])
    assert await ledger.consume(owner, [a.key]) == 2
    assert await ledger.consume(owner, [a.key]) == 0  # retried: nothing more leaves the shelf
    assert await row(engine, sku["A"], loc["L1"]) == (3, 0)
    assert await ledger.release(owner) == 3  # everything still held: only B
    assert await ledger.release(owner) == 0
    assert await row(engine, sku["B"], loc["L1"]) == (4, 0)
    assert await ledger.release(owner, [a.key]) == 0  # a consumed line is never given back
    assert await row(engine, sku["A"], loc["L1"]) == (3, 0)
    assert await reservations(engine, owner) == {a.key: ("consumed", 2), b.key: ("released", 3)}
    await ledger.reserve(owner, [b])  # a late retry of the original reserve does not hold again
    assert await row(engine, sku["B"], loc["L1"]) == (4, 0)


async def test_erp_import_during_active_reservations_keeps_them(engine: Any) -> None:
    ledger, sku, loc = await make_world(engine, {("A", "L1"): 10})
    owner = f"order-{uid()}"
    held = Allocation(key=f"{owner}:1", sku=sku["A"], location_id=loc["L1"], qty=4)
    await ledger.reserve(owner, [held])
    # the ERP reports store sales meanwhile: on hand drops, the reservation stays
    assert await ledger.set_on_hand([StockLevel(sku["A"], loc["L1"], 6)]) == 1
    assert await row(engine, sku["A"], loc["L1"]) == (6, 4)
    assert (await ledger.availability([sku["A"]]))[0].available == 2
    # on hand below what is held: available shows 0 (never negative) and nothing more can be held
    await ledger.set_on_hand([StockLevel(sku["A"], loc["L1"], 3)])
    assert (await ledger.availability([sku["A"]]))[0].available == 0
    with pytest.raises(OutOfStock):
        await ledger.reserve("other", [Allocation(key=f"other-{uid()}", sku=sku["A"], location_id=loc["L1"], qty=1)])
    # the held units are still ours to release or sell
    assert await ledger.held(owner) == [held]
    assert await ledger.release(owner) == 4
    assert await row(engine, sku["A"], loc["L1"]) == (3, 0)


async def test_concurrent_reservations_never_oversell(engine: Any) -> None:
    ledger, sku, loc = await make_world(engine, {("A", "L1"): 10})

    async def one(n: int) -> bool:
        owner = f"order-{uid()}-{n}"
        try:
            await ledger.reserve(owner, [Allocation(key=f"{owner}:1", sku=sku["A"], location_id=loc["L1"], qty=1)])
            return True
        except OutOfStock:
            return False

    results = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(60))), timeout=30)
    assert sum(results) == 10
    assert await row(engine, sku["A"], loc["L1"]) == (10, 10)
    async with engine.connect() as conn:
        held = (await conn.execute(text("SELECT coalesce(sum(qty), 0) FROM reservation WHERE sku = :s AND "
                                        "status = 'held'"), {"s": sku["A"]})).scalar_one()
    assert held == 10


async def test_availability_filters_by_region_and_location(engine: Any) -> None:
    ledger, sku, loc = await make_world(engine, {("A", "L1"): 3, ("A", "L2"): 2})
    assert {a.location_id for a in await ledger.availability([sku["A"]], region="RU-TST")} == set(loc.values())
    assert await ledger.availability([sku["A"]], region="RU-MOW") == []
    only = await ledger.availability([sku["A"]], location_ids=[loc["L2"]])
    assert [(a.location_id, a.available) for a in only] == [(loc["L2"], 2)]


async def test_seeded_carrier_rules_cover_the_demo_regions(engine: Any) -> None:
    from domain.planning import REGION_UTC_OFFSET_MIN
    from sandbox.demo_data import generate

    repo = DeliveryRepo(engine)
    rules = await repo.rules()
    regions = {r.region for r in rules}
    demo_regions = {l.region for l in generate(42, 50).locations}
    assert demo_regions <= regions and set(REGION_UTC_OFFSET_MIN) <= regions
    for region in regions:  # every region has a courier and a pickup-point option
        methods = {r.method for r in rules if r.region == region}
        assert {DeliveryMethod.COURIER, DeliveryMethod.PICKUP_POINT} <= methods, region
    moscow = await repo.rules("ru-mow")  # case-insensitive
    assert any(r.from_location_ids == frozenset({"WH-ONLINE"}) for r in moscow)
    assert all(r.region == "RU-MOW" and r.price > 0 and r.days_min <= r.days_max for r in moscow)


async def test_an_import_batch_with_the_same_pair_twice_keeps_the_last(engine: Any) -> None:
    """A delta page lists every movement: one pair may move twice in it (oldest first)."""
    ledger, sku, loc = await make_world(engine, {("A", "L1"): 5})
    applied = await ledger.set_on_hand([StockLevel(sku["A"], loc["L1"], 4), StockLevel(sku["A"], loc["L1"], 2)])
    assert applied == 1
    assert await row(engine, sku["A"], loc["L1"]) == (2, 0)


async def test_rehold_changes_a_line_in_one_transaction(engine: Any) -> None:
    ledger, sku, loc = await make_world(engine, {("A", "L1"): 3, ("B", "L1"): 1})
    owner = f"order-{uid()}"
    a, l1 = sku["A"], loc["L1"]
    await ledger.reserve(owner, [Allocation(key=f"{owner}:1:{l1}:1", sku=a, location_id=l1, qty=3)])
    # shrinking when nothing else is free never fails: the released units count
    assert await ledger.rehold(owner, [f"{owner}:1:{l1}:1"], [Allocation(f"{owner}:1:{l1}:e1", a, l1, 2)]) == 3
    assert await row(engine, a, l1) == (3, 2)
    # a repeat (retried activity) changes nothing
    assert await ledger.rehold(owner, [f"{owner}:1:{l1}:1"], [Allocation(f"{owner}:1:{l1}:e1", a, l1, 2)]) == 0
    assert await row(engine, a, l1) == (3, 2)
    # growing needs only the difference; a line that does not fit undoes the whole change
    with pytest.raises(OutOfStock):
        await ledger.rehold(owner, [f"{owner}:1:{l1}:e1"], [Allocation(f"{owner}:1:{l1}:e2", a, l1, 3),
                                                            Allocation(f"{owner}:2:{l1}:e2", sku["B"], l1, 2)])
    assert await row(engine, a, l1) == (3, 2) and await row(engine, sku["B"], l1) == (1, 0)
    assert (await reservations(engine, owner))[f"{owner}:1:{l1}:e1"] == ("held", 2)
    assert await ledger.rehold(owner, [f"{owner}:1:{l1}:e1"], [Allocation(f"{owner}:1:{l1}:e3", a, l1, 3)]) == 2
    assert await row(engine, a, l1) == (3, 3)
    assert {k: v for k, v in (await reservations(engine, owner)).items() if v[0] == "held"} == {
        f"{owner}:1:{l1}:e3": ("held", 3)}


async def test_the_sql_hold_and_the_pure_availability_rule_agree(engine: Any) -> None:
    """``contracts.stock.can_hold`` / ``available_units`` (used by the simulator and the availability
    answer) and the conditional UPDATE of ``Ledger.reserve`` decide the same, case by case."""
    from domain.availability import available_units, can_hold

    cases = [(on_hand, held, safety, qty) for on_hand in (0, 1, 3) for held in (0, 1, 2) for safety in (0, 1)
             for qty in (1, 2) if held <= on_hand]
    for on_hand, held, safety, qty in cases:
        ledger, sku, loc = await make_world(engine, {("A", "L1"): on_hand}, safety={"L1": safety})
        s, l = sku["A"], loc["L1"]
        if held:
            async with engine.begin() as conn:  # held by someone else, regardless of safety stock
                await conn.execute(text("UPDATE stock SET reserved = :r WHERE sku = :s AND location_id = :l"),
                                   {"r": held, "s": s, "l": l})
        [avail] = await ledger.availability([s])
        assert avail.available == available_units(on_hand, held, safety), (on_hand, held, safety)
        owner = f"order-{uid()}"
        try:
            await ledger.reserve(owner, [Allocation(key=f"{owner}:1", sku=s, location_id=l, qty=qty)])
            took = True
        except OutOfStock:
            took = False
        assert took == can_hold(on_hand, held, safety, qty), (on_hand, held, safety, qty)
