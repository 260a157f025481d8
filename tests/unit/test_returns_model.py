"""The glue between an order's record and the exact refund math (contracts.returns → domain.refunds)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from domain.refunds import allocate, refund_return
from contracts.returns import (
    RefundView,
    ReturnLine,
    ReturnLineRequest,
    ReturnMethod,
    ReturnSnapshot,
    ReturnStatus,
    ExchangeRequest,
)
from domain.returns import (
    ReturnRefused,
    check_request,
    exchange_difference,
    inspect,
    paid_lines,
    refund_bundle_lines,
    refund_view,
)

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


@st.composite
def priced_orders(draw: st.DrawFn) -> list[OrderLine]:
    """Lines as the loyalty calculation prices them: discount and bonus prorated by largest remainder."""
    n = draw(st.integers(1, 4))
    raw = [(draw(st.integers(1, 500_000)), draw(st.integers(1, 5))) for _ in range(n)]
    gross = [p * q for p, q in raw]
    discount = draw(st.integers(0, sum(gross)))
    bonus = draw(st.integers(0, sum(gross) - discount))
    parts = allocate([(i + 1, g) for i, g in enumerate(gross)], discount=discount, bonus=bonus)
    return [OrderLine(pos_id=i + 1, sku=f"S{i}", name=f"Товар {i}", qty=q, unit_price=p, discount=d, bonus=b)
            for i, ((p, q), (d, b)) in enumerate(zip(raw, parts))]


@settings(max_examples=200, deadline=None)
@given(lines=priced_orders(), delivery=st.integers(0, 50_000), data=st.data())
def test_returning_everything_in_any_partial_returns_gives_back_exactly_what_was_paid(
        lines: list[OrderLine], delivery: int, data: st.DataObject) -> None:
    units = [(l.pos_id, 1) for l in lines for _ in range(l.qty)]
    order_of = data.draw(st.permutations(units))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(order_of) - 1, 1)), max_size=4)))
    batches = [order_of[a:b] for a, b in zip([0, *cuts], [*cuts, len(order_of)]) if order_of[a:b]]
    so_far: dict[int, int] = {}
    money = bonus = 0
    for batch in batches:
        request: dict[int, int] = {}
        for pos, q in batch:
            request[pos] = request.get(pos, 0) + q
        refund = refund_view(refund_return(paid_lines(lines), so_far, request, delivery_paid=delivery))
        receipt = refund_bundle_lines([ReturnLine(pos_id=l.pos_id, sku=l.sku, name=l.name, qty=l.qty,
                                                  unit_price=l.unit_price) for l in lines], refund)
        assert sum(x.amount for x in receipt) == refund.money  # the fiscal receipt sums to the refund
        assert all(x.discount >= 0 and x.bonus == 0 for x in receipt)
        money += refund.total
        bonus += refund.bonus
        for pos, q in request.items():
            so_far[pos] = so_far.get(pos, 0) + q
    assert money == sum(l.amount for l in lines) + delivery
    assert bonus == sum(l.bonus for l in lines)


def order(delivered_at: datetime | None = NOW - timedelta(days=2), status: ShipmentState = ShipmentState.delivered) -> OrderSnapshot:
    lines = [OrderLine(pos_id=1, sku="A", name="Платье", qty=3, unit_price=100_000),
             OrderLine(pos_id=2, sku="B", name="Ремень", qty=1, unit_price=50_000)]
    return OrderSnapshot(
        order_id="O1", status=OrderStatus.completed, channel=Channel.web, customer=Customer(phone="+7", name="А"),
        delivery=Delivery(method=DeliveryMethod.courier), lines=lines, totals=Totals(total=350_000),
        payment=PaymentView(md_order="md"), timeline=[], created_at=NOW, updated_at=NOW, version=1,
        shipments=[ShipmentView(shipment_id="s1", location_id="MSK-002", lines=[LineRequest("A", 3), LineRequest("B", 1)],
                                status=status, delivered_at=delivered_at)])


def other(status: ReturnStatus, qty: int, accepted: int = 0) -> ReturnSnapshot:
    return ReturnSnapshot(return_id="R0", order_id="O1", status=status, method=ReturnMethod.in_store,
                          location_id="MSK-001", created_at=NOW, updated_at=NOW,
                          lines=[ReturnLine(pos_id=1, sku="A", name="Платье", qty=qty, accepted=accepted)])


def refused(o: OrderSnapshot, req: list[tuple[int, int]], others: list[ReturnSnapshot] = []) -> ReturnRefused:
    with pytest.raises(ReturnRefused) as err:
        check_request(o, [ReturnLineRequest(p, q) for p, q in req], others, now=NOW, window_days=14)
    return err.value


def test_check_request_rules_name_the_field() -> None:
    lines = check_request(order(), [ReturnLineRequest(1, 2, "мал")], [], now=NOW, window_days=14)
    assert lines == [ReturnLine(pos_id=1, sku="A", name="Платье", qty=2, reason="мал", unit_price=100_000,
                                line_qty=3, line_amount=300_000)]
    assert refused(order(status=ShipmentState.in_transit), [(1, 1)]).code == "not_delivered"
    assert refused(order(NOW - timedelta(days=15)), [(1, 1)]).code == "return_window_closed"
    e = refused(order(), [(2, 1), (9, 1)])
    assert (e.code, e.field) == ("unknown_line", "lines[1].pos_id")
    assert refused(order(), [(1, 1), (1, 1)]).field == "lines[1].pos_id"
    e = refused(order(), [(1, 2)], [other(ReturnStatus.awaiting_goods, 2)])  # in flight: held whole
    assert (e.code, e.field, e.status) == ("too_many_units", "lines[0].qty", 409)
    # finished returns hold what was accepted; abandoned ones hold nothing
    check_request(order(), [ReturnLineRequest(1, 2)], [other(ReturnStatus.completed, 2, accepted=1)], now=NOW, window_days=14)
    check_request(order(), [ReturnLineRequest(1, 3)], [other(ReturnStatus.abandoned, 2)], now=NOW, window_days=14)
    check_request(order(), [ReturnLineRequest(1, 3)], [other(ReturnStatus.rejected, 2)], now=NOW, window_days=14)


def test_inspection_accepts_at_most_what_came_and_rejects_the_rest() -> None:
    lines = [ReturnLine(pos_id=1, sku="A", name="Платье", qty=2), ReturnLine(pos_id=2, sku="B", name="Ремень", qty=1)]
    out = inspect(lines, [LineRequest("A", 5)], [{"sku": "B", "qty": 1, "reason": "брак"}])
    assert [(l.accepted, l.rejected, l.reject_reason) for l in out] == [(2, 0, ""), (0, 1, "брак")]
    assert RefundView(money=10, bonus=1, delivery=5).total == 15


def test_exchange_difference_is_the_price_difference_and_never_refunds_more_than_was_paid() -> None:
    line = ReturnLine(pos_id=1, sku="A", name="Платье", qty=2, unit_price=100_000, line_qty=2, line_amount=150_000)
    swap = lambda price: exchange_difference(line, ExchangeRequest(pos_id=1, sku="A2", name="Платье L", qty=2,  # noqa: E731
                                                                   unit_price=price))
    assert swap(100_000) == 0  # same price: no extra charge, the discount stays with the replacement
    assert swap(120_000) == 40_000
    assert swap(90_000) == -20_000
    assert swap(10_000) == -150_000  # cheaper than what was paid for the units: at most that comes back
