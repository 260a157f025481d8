"""The what-if on real orders (sim.replay) against a real PostgreSQL projection: orders read from
the ``orders`` table, the chain from the ledger and the catalogue, run through the rules in force and
a draft. The world is made with unique ids in a city of its own and orders in January 2031, so it
shares the session database with the other tests."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from adapters.catalog import CatalogRepo
from adapters.ledger import Ledger
from adapters.orders_repo import OrdersRepo
from contracts.order import (
    Address,
    Channel,
    Customer,
    Delivery,
    DeliveryMethod,
    OrderLine,
    OrderSnapshot,
    OrderStatus,
    PaymentView,
    Totals,
)
from domain.sourcing_rules import SourcingRules, parse_rules
from contracts.stock import LocationInfo, StockLevel
from sim.world import Behaviour
from sim.replay import load_replay, parse_period, run_replay

MSK = timezone(timedelta(hours=3))


async def make_world(engine: Any) -> str:
    """Two stores (one has A, the other B) and a warehouse with both in a city of their own; 20
    orders of A + B on 2031-01-06. Returns the ids' tag."""
    tag = uuid.uuid4().hex[:6].upper()
    city = f"Тест-{tag}"
    s1, s2, wh = f"R{tag}-S1", f"R{tag}-S2", f"R{tag}-WH"
    await CatalogRepo(engine).upsert_locations([
        LocationInfo(id=f"R{tag}-EMPTY", name="a store with no stock", kind="store", city=city, region="RU-MOW",
                     lat=55.75, lon=37.62, opens_at="00:00", closes_at="00:00", ship_from_store=False),
        LocationInfo(id=s1, name=s1, kind="store", city=city, region="RU-MOW", lat=55.75, lon=37.62,
                     opens_at="00:00", closes_at="00:00", daily_capacity=500),
        LocationInfo(id=s2, name=s2, kind="store", city=city, region="RU-MOW", lat=55.76, lon=37.64,
                     opens_at="00:00", closes_at="00:00", daily_capacity=500),
        LocationInfo(id=wh, name=wh, kind="warehouse", city=f"Склад-{tag}", region="RU-MOS", lat=55.43, lon=37.54,
                     opens_at="00:00", closes_at="00:00", daily_capacity=5000),
    ])
    a, b = f"R{tag}-A-M-BLK", f"R{tag}-B-M-BLK"
    await CatalogRepo(engine).upsert_products(
        [{"id": f"R{tag}-A", "brand": "T", "name": "A", "category": "c"},
         {"id": f"R{tag}-B", "brand": "T", "name": "B", "category": "c"}],
        [{"sku": a, "product_id": f"R{tag}-A", "size": "M", "color": "BLK", "barcode": ""},
         {"sku": b, "product_id": f"R{tag}-B", "size": "M", "color": "BLK", "barcode": ""}])
    # one store has A, the other B, the warehouse (another region, ~36 km) both
    await Ledger(engine).set_on_hand([StockLevel(a, s1, 60), StockLevel(b, s2, 60), StockLevel(a, wh, 60),
                                      StockLevel(b, wh, 60),
                                      StockLevel(f"R{tag}-NOT-IN-CATALOGUE", s1, 5)])  # stock the catalogue lacks: skipped
    repo = OrdersRepo(engine)
    t0 = datetime(2031, 1, 6, 10, tzinfo=MSK)
    for n in range(20):
        at = t0 + timedelta(minutes=15 * n)
        lines = [OrderLine(pos_id=1, sku=a, name="A", qty=1, unit_price=100_000),
                 OrderLine(pos_id=2, sku=b, name="B", qty=1, unit_price=50_000)]
        await repo.save(OrderSnapshot(
            order_id=f"R{tag}{n:03d}", status=OrderStatus.completed, channel=Channel.web,
            customer=Customer(phone=f"+7916{n:07d}", name="Анна"),
            delivery=Delivery(method=DeliveryMethod.courier,
                              address=Address(region="RU-MOW", city=city, line="ул. Тестовая, 1", postcode="101000")),
            lines=lines, totals=Totals(subtotal=150_000, total=150_000), payment=PaymentView(md_order="md", held=150_000),
            shipments=[], timeline=[], created_at=at, updated_at=at, version=1))
    return tag


async def test_a_draft_that_allows_splits_is_compared_with_the_rules_in_force(engine: Any) -> None:
    tag = await make_world(engine)
    start, end = parse_period("2031-01-06..2031-01-07")
    data = await load_replay(engine, start, end)
    mine = [i for i in data.intents if i.order_id.startswith(f"R{tag}")]
    assert len(mine) == 20 and data.days == 1
    data.intents = mine
    draft = parse_rules("[weights]\nsplit_penalty_km = 5\n")
    # a quiet world (no offline sales, no wrong records, everyone pays): the comparison is the rules' alone,
    # whatever other tests left in the shared database's other stores
    quiet = dataclasses.replace(
        Behaviour(), offline_units_per_store_day=(0.0, 0.0), record_error_share=(0.0, 0.0),
        misplaced_share=(0.0, 0.0), shrink_units_per_store_day=(0.0, 0.0), misscan_share=(0.0, 0.0),
        receiving_error_share=(0.0, 0.0), unpaid_share=0.0)
    active, drafted = run_replay(data, SourcingRules(), draft, seed=1, behaviour=quiet)
    a_sum, d_sum = active.summary(), drafted.summary()
    assert a_sum["orders"] == d_sum["orders"] == 20
    # in force: fewest shipments — everything from the warehouse; the draft: two stores nearby
    assert a_sum["split_share"] == 0 and a_sum["store_share"] == 0
    assert d_sum["split_share"] >= 0.9 and d_sum["store_share"] >= 0.9
    assert d_sum["mean_distance_km"] < a_sum["mean_distance_km"] / 2  # some store shipments move to the warehouse
    assert a_sum["mean_distance_km"] > 30
    assert a_sum["mean_promised_days"] is not None  # the seeded carrier rules serve RU-MOW
    assert a_sum["not_assemblable_share"] == 0  # the warehouse's records are right


def test_a_bad_period_names_the_option() -> None:
    import pytest

    with pytest.raises(ValueError, match="--replay-orders"):
        parse_period("2031-01-06")
    with pytest.raises(ValueError, match="TO must be after FROM"):
        parse_period("2031-01-07..2031-01-06")


async def test_the_replay_command_prints_the_comparison_and_writes_json(engine: Any, pg_url: str, tmp_path: Path,
                                                                         monkeypatch: Any, capsys: Any) -> None:
    import asyncio
    import json

    from settings import get_settings
    from sim.replay import replay_command

    await make_world(engine)
    draft = tmp_path / "draft.toml"
    draft.write_text("[weights]\nsplit_penalty_km = 5\n", encoding="utf-8")
    monkeypatch.setenv("ORKESTR_DATABASE_URL", pg_url)
    get_settings.cache_clear()
    try:
        code = await asyncio.to_thread(replay_command, "2031-01-06..2031-01-07", draft, rules_dir=str(tmp_path / "r"),
                                       seed=1, out=tmp_path / "out")
    finally:
        get_settings.cache_clear()
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "split shipments" in printed and "in force (version defaults)" in printed
    doc = json.loads((tmp_path / "out" / "replay.json").read_text(encoding="utf-8"))
    assert doc["orders"] >= 20 and doc["draft"]["split_share"] > doc["in_force"]["split_share"]
