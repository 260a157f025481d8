"""The worker's edge: ``load_stock_view`` carries the rules in force (rules/active.toml) to the
workflow — the weights sourcing uses and the learned safety stock, computed from the shortages in
the real order projection."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from activities.stock import StockActivities
from adapters.catalog import CatalogRepo
from adapters.ledger import Ledger
from adapters.orders_repo import OrdersRepo
from adapters.rules_store import RulesStore
from adapters.shortage_history import ShortageHistoryRepo
from contracts.order import (
    Channel,
    Customer,
    Delivery,
    DeliveryMethod,
    LineRequest,
    OrderSnapshot,
    OrderStatus,
    PaymentView,
    ShipmentView,
    TimelineEntry,
    Totals,
)
from contracts.steps import StockViewRequest
from contracts.stock import LocationInfo, StockLevel


async def test_the_view_carries_the_active_rules_and_the_learned_safety_stock(engine: Any, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    store, other = f"W{tag}-S1", f"W{tag}-S2"
    await CatalogRepo(engine).upsert_locations([
        LocationInfo(id=store, name=store, kind="store", city="Тест", region="RU-TST", lat=1.0, lon=1.0),
        LocationInfo(id=other, name=other, kind="store", city="Тест", region="RU-TST", lat=1.0, lon=1.1)])
    a, b = f"W{tag}-A", f"W{tag}-B"
    ledger = Ledger(engine)
    await ledger.set_on_hand([StockLevel(a, store, 3), StockLevel(b, store, 3), StockLevel(a, other, 3)])
    # the projection: an order sourced at the store, which then reported A short
    now = datetime.now(timezone.utc)
    sid = f"fulfillment-W{tag}-1"
    await OrdersRepo(engine).save(OrderSnapshot(
        order_id=f"W{tag}", status=OrderStatus.cancelled, channel=Channel.web, customer=Customer(phone="+79160000000", name="A"),
        delivery=Delivery(method=DeliveryMethod.courier), lines=[], totals=Totals(), payment=PaymentView(),
        shipments=[ShipmentView(shipment_id=sid, location_id=store, lines=[LineRequest(a, 1), LineRequest(b, 1)])],
        timeline=[TimelineEntry(at=now - timedelta(hours=2), kind="sourced", message="",
                                data={"shipment_id": sid, "location_id": store}),
                  TimelineEntry(at=now - timedelta(hours=1), kind="shipment_assembling", message="",
                                data={"shipment_id": sid, "shortage_sku": a, "missing_qty": 1})],
        created_at=now - timedelta(hours=2), updated_at=now, version=1))

    rules = RulesStore(tmp_path / "rules")
    acts = StockActivities(ledger, rules=rules, history=ShortageHistoryRepo(engine))
    before = await acts.load_stock_view(StockViewRequest(skus=[a, b]))
    assert before.weights is None and before.rules_version is None  # nothing activated: today's rules
    assert {(x.sku, x.location_id) for x in before.available} == {(a, store), (b, store), (a, other)}

    rules.activate("[weights]\nsplit_penalty_km = 12\n[safety_stock]\nlearned = true\n", by="test")
    view = await acts.load_stock_view(StockViewRequest(skus=[a, b]))
    assert view.rules_version == 1 and view.weights is not None and view.weights.split_penalty_km == 12.0
    got = {(x.sku, x.location_id): x for x in view.available}
    assert (a, store) not in got  # reported short there lately: not offered (domain.safety_stock rule 3)
    assert got[(a, other)].available == 3  # no history there: nothing kept back
