"""Returns in real PostgreSQL: the keyed Ledger.restock, and ReturnsRepo's claim and refund under
the order's lock (concurrent returns never take the same unit, refunds add up exactly)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text

from adapters.ledger import Ledger
from adapters.orders_repo import OrdersRepo
from adapters.returns_repo import ReturnsRepo
from contracts.order import (
    Channel,
    Customer,
    Delivery,
    DeliveryMethod,
    LineRequest,
    OrderLine,
    OrderSnapshot,
    OrderStatus,
    PaymentView,
    ShipmentState,
    ShipmentView,
    Totals,
)
from contracts.returns import RefundClaim, ReturnLineRequest, ReturnSnapshot, ReturnStatus
from domain.returns import ReturnRefused, check_request
from contracts.returns import ReturnMethod

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


async def on_hand(engine: Any, sku: str, loc: str) -> int | None:
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT on_hand FROM stock WHERE sku = :s AND location_id = :l"),
                                  {"s": sku, "l": loc})).first()
    return row.on_hand if row else None


async def test_restock_is_keyed_and_atomic(engine: Any) -> None:
    ledger = Ledger(engine)
    sku = f"RS-{uuid.uuid4().hex[:8]}"
    assert await on_hand(engine, sku, "MSK-001") is None
    assert await ledger.restock("MSK-001", [("ret-a:1", sku, 2)]) == 2
    assert await ledger.restock("MSK-001", [("ret-a:1", sku, 2)]) == 0  # a retried activity changes nothing
    assert await on_hand(engine, sku, "MSK-001") == 2
    # twenty concurrent attempts with one key add once; another key adds again
    results = await asyncio.gather(*[ledger.restock("MSK-001", [("ret-b:1", sku, 1)]) for _ in range(20)])
    assert sorted(results) == [0] * 19 + [1]
    assert await ledger.restock("MSK-001", [("ret-c:1", sku, 3), ("ret-c:2", sku, 1)]) == 4
    assert await on_hand(engine, sku, "MSK-001") == 7
    assert await ledger.restock("MSK-001", []) == 0


def order(order_id: str, *, delivered_at: datetime = NOW) -> OrderSnapshot:
    lines = [OrderLine(pos_id=1, sku="A", name="Платье", qty=3, unit_price=100_001, discount=15_000, bonus=10_001),
             OrderLine(pos_id=2, sku="B", name="Ремень", qty=1, unit_price=50_000, discount=2_500, bonus=4_999)]
    goods = sum(l.amount for l in lines)
    return OrderSnapshot(
        order_id=order_id, status=OrderStatus.completed, channel=Channel.web,
        customer=Customer(phone="+79160000001", name="Анна"), delivery=Delivery(method=DeliveryMethod.courier),
        lines=lines, totals=Totals(subtotal=350_003, discount=17_500, bonus_spent=15_000, delivery=39_900,
                                   total=goods + 39_900),
        payment=PaymentView(md_order="md", captured=goods + 39_900),
        shipments=[ShipmentView(shipment_id="s1", location_id="MSK-002", lines=[LineRequest("A", 3), LineRequest("B", 1)],
                                status=ShipmentState.delivered, delivered_at=delivered_at)],
        timeline=[], created_at=NOW, updated_at=NOW, version=1)


def builder(rid: str, req: list[tuple[int, int]], now: datetime = NOW) -> Any:
    def build(o: OrderSnapshot, others: Any) -> ReturnSnapshot:
        lines = check_request(o, [ReturnLineRequest(p, q) for p, q in req], others, now=now, window_days=14)
        return ReturnSnapshot(return_id=rid, order_id=o.order_id, status=ReturnStatus.registered,
                              method=ReturnMethod.in_store, location_id="MSK-001", lines=lines, created_at=now,
                              updated_at=now)
    return build


async def test_concurrent_returns_never_take_the_same_unit_and_refund_exactly(engine: Any) -> None:
    oid = f"T{uuid.uuid4().hex[:10].upper()}"
    snap = order(oid)
    await OrdersRepo(engine).save(snap)
    repo = ReturnsRepo(engine)

    async def attempt(i: int) -> str:
        try:
            await repo.create(return_id=f"{oid}-{i}", order_id=oid, build=builder(f"{oid}-{i}", [(1, 2)]))
            return "created"
        except ReturnRefused as err:
            assert err.field == "lines[0].qty"
            return "refused"

    outcomes = await asyncio.gather(*[attempt(i) for i in range(6)])
    assert outcomes.count("created") == 1  # 3 units: one return of 2; the rest would exceed what is left
    winner = f"{oid}-{outcomes.index('created')}"
    _, created = await repo.create(return_id=winner, order_id=oid, build=builder(winner, [(1, 3)]))
    assert not created  # a repeat with the same id answers the first return
    await repo.create(return_id=f"{oid}-x", order_id=oid, build=builder(f"{oid}-x", [(1, 1), (2, 1)]))

    # the two refunds are priced concurrently; together they are exactly what was paid, delivery once
    claims = [RefundClaim(return_id=winner, order_id=oid, accepted=[(1, 2)]),
              RefundClaim(return_id=f"{oid}-x", order_id=oid, accepted=[(1, 1), (2, 1)])]
    r1, r2 = await asyncio.gather(*[repo.settle_refund(c) for c in claims])
    assert r1.total + r2.total == snap.totals.total
    assert r1.bonus + r2.bonus == snap.totals.bonus_spent
    assert sorted([r1.delivery, r2.delivery]) == [0, 39_900]
    assert await repo.settle_refund(claims[0]) == r1  # computed once


async def test_window_and_delivery_rules(engine: Any) -> None:
    oid = f"T{uuid.uuid4().hex[:10].upper()}"
    await OrdersRepo(engine).save(order(oid, delivered_at=NOW - timedelta(days=15)))
    with pytest.raises(ReturnRefused) as err:
        await ReturnsRepo(engine).create(return_id=f"{oid}-1", order_id=oid, build=builder(f"{oid}-1", [(2, 1)]))
    assert err.value.code == "return_window_closed" and err.value.field == "lines[0].pos_id"
    assert await ReturnsRepo(engine).for_order(oid) == []


async def test_set_on_hand_with_a_key_twice_in_one_delta_takes_the_last_level(engine: Any) -> None:
    from contracts.stock import StockLevel

    sku = f"RS-{uuid.uuid4().hex[:8]}"
    await Ledger(engine).set_on_hand([StockLevel(sku, "MSK-002", 1), StockLevel(sku, "MSK-002", 2)])
    assert await on_hand(engine, sku, "MSK-002") == 2
