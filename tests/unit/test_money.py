"""domain.money: largest-remainder proration and Russian money formatting."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import NBSP, format_money, prorate

weights_st = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30)
total_st = st.integers(min_value=0, max_value=10**9)


# --- prorate: examples ------------------------------------------------------------------------


def test_prorate_proportional_split_exact_when_divisible():
    assert prorate(1000, [1, 2, 2]) == [200, 400, 400]


def test_prorate_leftover_goes_to_largest_remainder():
    # exact shares 33.33.., 66.66.. -> floors 33, 66; remainders 1/3, 2/3 -> the kopeck goes to index 1
    assert prorate(100, [1, 2]) == [33, 67]


def test_prorate_ties_go_to_lower_index():
    assert prorate(100, [1, 1, 1]) == [34, 33, 33]
    assert prorate(2, [1, 1, 1]) == [1, 1, 0]


def test_prorate_all_zero_weights_split_evenly():
    assert prorate(10, [0, 0, 0]) == [4, 3, 3]
    assert prorate(0, [0, 0]) == [0, 0]


def test_prorate_zero_weight_gets_nothing_when_others_positive():
    assert prorate(101, [0, 5, 0, 5]) == [0, 51, 0, 50]


def test_prorate_empty():
    assert prorate(0, []) == []
    with pytest.raises(ValueError):
        prorate(1, [])


@pytest.mark.parametrize("total, weights", [(-1, [1]), (5, [1, -1])])
def test_prorate_rejects_negatives(total, weights):
    with pytest.raises(ValueError):
        prorate(total, weights)


# --- prorate: properties ----------------------------------------------------------------------


@given(total_st, weights_st)
def test_prorate_sums_exactly_and_each_part_is_floor_or_ceil(total, weights):
    parts = prorate(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    eff = weights if sum(weights) else [1] * len(weights)
    wsum = sum(eff)
    for p, w in zip(parts, eff):
        exact = Fraction(total * w, wsum)
        assert exact - 1 < p < exact + 1
        assert p >= 0


@given(total_st, weights_st)
def test_prorate_is_deterministic_and_order_consistent(total, weights):
    """Same input, same output; a larger weight never gets less than a smaller one."""
    parts = prorate(total, weights)
    assert parts == prorate(total, list(weights))
    for i in range(len(weights)):
        for j in range(len(weights)):
            if weights[i] > weights[j]:
                assert parts[i] >= parts[j]


@given(st.integers(min_value=0, max_value=10**6), weights_st)
def test_prorate_total_not_above_weights_keeps_each_part_within_its_weight(total, weights):
    """What refunds rely on: a discount <= the order never exceeds any line."""
    if total > sum(weights):
        total = sum(weights)
    if sum(weights) == 0:
        return
    for p, w in zip(prorate(total, weights), weights):
        assert p <= w


# --- format_money -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, currency, expected",
    [
        (123450, "RUB", f"1{NBSP}234,50{NBSP}₽"),
        (0, "RUB", f"0,00{NBSP}₽"),
        (5, "RUB", f"0,05{NBSP}₽"),
        (99900, "RUB", f"999,00{NBSP}₽"),
        (100000, "RUB", f"1{NBSP}000,00{NBSP}₽"),
        (123456789012, "RUB", f"1{NBSP}234{NBSP}567{NBSP}890,12{NBSP}₽"),
        (150000, "KZT", f"1{NBSP}500,00{NBSP}₸"),
        (150000, "kzt", f"1{NBSP}500,00{NBSP}₸"),
        (-123450, "RUB", f"-1{NBSP}234,50{NBSP}₽"),
        (1999, "XYZ", f"19,99{NBSP}XYZ"),
    ],
)
def test_format_money(amount, currency, expected):
    assert format_money(amount, currency) == expected


def test_format_money_defaults_to_roubles():
    assert format_money(123450) == "1\u00a0234,50\u00a0₽"


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_format_money_round_trips(amount):
    text = format_money(amount)
    assert " " not in text  # never a breakable space
    digits = text.replace(NBSP, "").removesuffix("₽").replace(",", "")
    assert int(digits) == amount
