"""domain.refunds: every kopeck and every bonus point comes back exactly once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.refunds import (
    DeliveryRefundPolicy,
    PaidLine,
    ReturnRefund,
    allocate,
    cumulative,
    refund_for,
    refund_return,
    unit_split,
)

# --- strategies -------------------------------------------------------------------------------


@st.composite
def paid_lines(draw, max_lines: int = 5) -> list[PaidLine]:
    """An order as it was paid: line discounts, then an order discount and a bonus write-off
    allocated with ``allocate`` (the way the order workflow builds PaidLines)."""
    n = draw(st.integers(min_value=1, max_value=max_lines))
    raw = []
    for pos in range(1, n + 1):
        qty = draw(st.integers(min_value=1, max_value=7))
        price = draw(st.integers(min_value=0, max_value=500_000))
        line_disc = draw(st.integers(min_value=0, max_value=price * qty))
        raw.append((pos, qty, price, line_disc))
    gross = [(pos, price * qty - ld) for pos, qty, price, ld in raw]
    total = sum(g for _, g in gross)
    order_disc = draw(st.integers(min_value=0, max_value=total))
    bonus = draw(st.integers(min_value=0, max_value=total - order_disc))
    alloc = allocate(gross, discount=order_disc, bonus=bonus)
    return [
        PaidLine(pos_id=pos, sku=f"SKU-{pos}", qty=qty, unit_price=price, discount=ld + d, bonus=b)
        for (pos, qty, price, ld), (d, b) in zip(raw, alloc)
    ]


@st.composite
def order_and_returns(draw):
    """An order and a partition of all its units into returns (each a pos_id -> qty map),
    in a random order."""
    lines = draw(paid_lines())
    units = [ln.pos_id for ln in lines for _ in range(ln.qty)]
    units = draw(st.permutations(units))
    # cut the shuffled units into consecutive chunks = returns
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=max(1, len(units) - 1)), max_size=len(units))))
    cuts = [c for c in cuts if 0 < c < len(units)]
    bounds = [0, *cuts, len(units)]
    returns = []
    for a, b in zip(bounds, bounds[1:]):
        req: dict[int, int] = {}
        for pos in units[a:b]:
            req[pos] = req.get(pos, 0) + 1
        returns.append(req)
    return lines, returns


def run_returns(lines, returns, *, delivery_paid=0, policy=DeliveryRefundPolicy.WHEN_ALL_RETURNED):
    so_far: dict[int, int] = {}
    out: list[ReturnRefund] = []
    for req in returns:
        out.append(refund_return(lines, dict(so_far), req, delivery_paid=delivery_paid, delivery_policy=policy))
        for pos, q in req.items():
            so_far[pos] = so_far.get(pos, 0) + q
    return out


# --- allocate ---------------------------------------------------------------------------------


def test_allocate_example():
    # gross 1000 and 3000; discount 401 -> 100.25 / 300.75 -> 100 + 301
    # bonus over what is left (900, 2699): 500 -> 125.03.. / 374.97.. -> 125 + 375
    assert allocate([(1, 1000), (2, 3000)], discount=401, bonus=500) == [(100, 125), (301, 375)]


def test_allocate_empty_and_zero():
    assert allocate([], discount=0, bonus=0) == []
    assert allocate([(1, 0), (2, 0)], discount=0, bonus=0) == [(0, 0), (0, 0)]


@pytest.mark.parametrize("discount, bonus", [(1001, 0), (600, 401), (-1, 0), (0, -1)])
def test_allocate_rejects_impossible(discount, bonus):
    with pytest.raises(ValueError):
        allocate([(1, 400), (2, 600)], discount=discount, bonus=bonus)


@given(
    st.lists(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=10),
    st.data(),
)
def test_allocate_sums_exactly_and_never_below_zero(gross, data):
    total = sum(gross)
    discount = data.draw(st.integers(min_value=0, max_value=total))
    bonus = data.draw(st.integers(min_value=0, max_value=total - discount))
    parts = allocate(list(enumerate(gross)), discount=discount, bonus=bonus)
    assert sum(d for d, _ in parts) == discount
    assert sum(b for _, b in parts) == bonus
    for g, (d, b) in zip(gross, parts):
        assert 0 <= d and 0 <= b and d + b <= g


# --- unit split / cumulative ------------------------------------------------------------------


def test_unit_split_first_units_carry_the_extra_kopeck():
    assert [unit_split(100, 3, i) for i in range(3)] == [34, 33, 33]
    assert [cumulative(100, 3, n) for n in range(4)] == [0, 34, 67, 100]


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=50))
def test_cumulative_is_sum_of_unit_splits(total, qty):
    acc = 0
    for n in range(qty + 1):
        assert cumulative(total, qty, n) == acc
        if n < qty:
            u = unit_split(total, qty, n)
            assert total // qty <= u <= total // qty + 1
            acc += u
    assert acc == total


def test_unit_split_and_cumulative_reject_bad_input():
    for args in [(10, 0, 0), (10, 2, 2), (10, 2, -1), (-1, 2, 0)]:
        with pytest.raises(ValueError):
            unit_split(*args)
    for args in [(10, 2, 3), (-1, 2, 1), (5, 0, 0)]:
        with pytest.raises(ValueError):
            cumulative(*args)


# --- refund_for -------------------------------------------------------------------------------


def test_refund_for_worked_example():
    # 3 × 1 000,00 ₽ with 100,00 ₽ discount and 200,01 ₽ bonus -> paid 2 699,99 ₽
    line = PaidLine(pos_id=1, sku="A", qty=3, unit_price=100_000, discount=10_000, bonus=20_001)
    assert line.paid == 269_999
    first = refund_for(line, already_returned=0, qty=1)
    rest = refund_for(line, already_returned=1, qty=2)
    assert (first.money, first.bonus) == (90_000, 6_667)
    assert (rest.money, rest.bonus) == (179_999, 13_334)
    assert first.money + rest.money == line.paid
    assert first.bonus + rest.bonus == line.bonus


def test_refund_for_refuses_more_than_remains():
    line = PaidLine(pos_id=1, sku="A", qty=2, unit_price=1000, discount=0, bonus=0)
    with pytest.raises(ValueError):
        refund_for(line, already_returned=1, qty=2)
    with pytest.raises(ValueError):
        refund_for(line, already_returned=3, qty=0)
    with pytest.raises(ValueError):
        refund_for(line, already_returned=0, qty=-1)
    assert refund_for(line, already_returned=2, qty=0).money == 0


def test_paid_line_rejects_over_discount():
    with pytest.raises(ValueError):
        PaidLine(pos_id=1, sku="A", qty=1, unit_price=100, discount=60, bonus=41)


@given(paid_lines(max_lines=1), st.data())
def test_refund_for_never_exceeds_what_remains(lines, data):
    line = lines[0]
    r = data.draw(st.integers(min_value=0, max_value=line.qty))
    k = data.draw(st.integers(min_value=0, max_value=line.qty - r))
    part = refund_for(line, already_returned=r, qty=k)
    remaining_money = line.paid - cumulative(line.paid, line.qty, r)
    remaining_bonus = line.bonus - cumulative(line.bonus, line.qty, r)
    assert 0 <= part.money <= remaining_money
    assert 0 <= part.bonus <= remaining_bonus


# --- refund_return: the properties the issue asks for -----------------------------------------


@settings(max_examples=300)
@given(order_and_returns(), st.integers(min_value=0, max_value=100_000))
def test_any_partition_in_any_order_refunds_exactly_what_was_paid(case, delivery_paid):
    lines, returns = case
    refunds = run_returns(lines, returns, delivery_paid=delivery_paid)
    assert sum(r.money for r in refunds) == sum(ln.paid for ln in lines)
    assert sum(r.bonus for r in refunds) == sum(ln.bonus for ln in lines)
    # delivery comes back exactly once, with the last return
    assert sum(r.delivery for r in refunds) == delivery_paid
    assert all(r.delivery == 0 for r in refunds[:-1])
    # per line too
    for ln in lines:
        assert sum(x.money for r in refunds for x in r.lines if x.pos_id == ln.pos_id) == ln.paid
        assert sum(x.bonus for r in refunds for x in r.lines if x.pos_id == ln.pos_id) == ln.bonus


@settings(max_examples=200)
@given(order_and_returns())
def test_each_refund_is_at_most_what_remains(case):
    lines, returns = case
    refunds = run_returns(lines, returns)
    left_money = sum(ln.paid for ln in lines)
    left_bonus = sum(ln.bonus for ln in lines)
    for r in refunds:
        assert 0 <= r.money <= left_money
        assert 0 <= r.bonus <= left_bonus
        left_money -= r.money
        left_bonus -= r.bonus
    assert (left_money, left_bonus) == (0, 0)


@settings(max_examples=200)
@given(order_and_returns(), st.data())
def test_order_of_returns_does_not_matter(case, data):
    """Whatever order the same returns arrive in, what has been refunded once a given set of
    units is back is the same, and so is the total."""
    lines, returns = case
    shuffled = data.draw(st.permutations(returns))
    a = run_returns(lines, returns)
    b = run_returns(lines, shuffled)
    assert sum(r.money for r in a) == sum(r.money for r in b)
    assert sum(r.bonus for r in a) == sum(r.bonus for r in b)
    # after any prefix, the refunded total depends only on how many units of each line are back
    so_far: dict[int, int] = {}
    refunded = 0
    for req, r in zip(shuffled, b):
        for pos, q in req.items():
            so_far[pos] = so_far.get(pos, 0) + q
        refunded += r.money
        expected = sum(cumulative(ln.paid, ln.qty, so_far.get(ln.pos_id, 0)) for ln in lines)
        assert refunded == expected


def test_refund_return_everything_at_once_includes_delivery_once():
    lines = [
        PaidLine(pos_id=1, sku="A", qty=2, unit_price=150_000, discount=15_000, bonus=5_000),
        PaidLine(pos_id=2, sku="B", qty=1, unit_price=99_900, discount=0, bonus=0),
    ]
    r = refund_return(lines, {}, {1: 2, 2: 1}, delivery_paid=39_900)
    assert r.money == 280_000 + 99_900
    assert r.bonus == 5_000
    assert r.delivery == 39_900
    assert r.money_total == 280_000 + 99_900 + 39_900
    assert [(x.pos_id, x.qty) for x in r.lines] == [(1, 2), (2, 1)]
    # nothing left: an empty return afterwards refunds nothing, delivery not again
    again = refund_return(lines, {1: 2, 2: 1}, {}, delivery_paid=39_900)
    assert (again.money, again.bonus, again.delivery, again.lines) == (0, 0, 0, ())


def test_refund_return_delivery_only_with_the_return_that_completes_the_order():
    lines = [
        PaidLine(pos_id=1, sku="A", qty=2, unit_price=1000, discount=0, bonus=0),
        PaidLine(pos_id=2, sku="B", qty=1, unit_price=500, discount=0, bonus=0),
    ]
    first = refund_return(lines, {}, {1: 2}, delivery_paid=300)
    second = refund_return(lines, {1: 2}, {2: 1}, delivery_paid=300)
    assert (first.money, first.delivery) == (2000, 0)
    assert (second.money, second.delivery) == (500, 300)


def test_refund_return_policy_never():
    lines = [PaidLine(pos_id=1, sku="A", qty=1, unit_price=1000, discount=0, bonus=0)]
    r = refund_return(lines, {}, {1: 1}, delivery_paid=300, delivery_policy=DeliveryRefundPolicy.NEVER)
    assert (r.money, r.delivery) == (1000, 0)


def test_refund_return_rejects_bad_requests():
    lines = [PaidLine(pos_id=1, sku="A", qty=2, unit_price=1000, discount=0, bonus=0)]
    with pytest.raises(ValueError):
        refund_return(lines, {}, {9: 1}, delivery_paid=0)
    with pytest.raises(ValueError):
        refund_return(lines, {1: 1}, {1: 2}, delivery_paid=0)
    with pytest.raises(ValueError):
        refund_return(lines, {}, {1: -1}, delivery_paid=0)
    with pytest.raises(ValueError):
        refund_return(lines + lines, {}, {1: 1}, delivery_paid=0)
