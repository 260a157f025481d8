"""The loyalty adapter against the simulated loyalty processing, over real HTTP on loopback.

Expected numbers are worked out by hand from the rules in ``sandbox/loyalty.py``'s docstring.
"""

from __future__ import annotations

import random
from typing import Any, AsyncIterator

import httpx
import pytest

from adapters.errors import ExternalRefusal
from adapters.loyalty import LoyaltyClient
from adapters.wire.loyalty import CartLine

WELCOME = 50_000


@pytest.fixture
async def sb(make_sandbox: Any) -> AsyncIterator[Any]:
    async with make_sandbox() as sb:
        yield sb


@pytest.fixture
async def loyalty(sb: Any) -> AsyncIterator[LoyaltyClient]:
    async with httpx.AsyncClient(base_url=f"{sb.url}/loyalty", timeout=10) as http:
        yield LoyaltyClient(http, user="orkestr", password="orkestr")


async def set_customer(drive: httpx.AsyncClient, phone: str, **patch: Any) -> dict[str, Any]:
    resp = await drive.post(f"/sandbox/loyalty/customers/{phone}", json=patch)
    assert resp.status_code == 200, resp.text
    return resp.json()


CART = [CartLine(1, "SKU-DRESS", 100_000, 1), CartLine(2, "SKU-TEE", 50_000, 2)]


async def test_new_customer_gets_the_welcome_balance(loyalty: LoyaltyClient) -> None:
    bal = await loyalty.balance("+79160000001")
    assert (bal.phone, bal.balance, bal.pending, bal.held, bal.status) == ("+79160000001", WELCOME, 0, 0, "active")


async def test_calculate_promo_bonus_cap_by_balance_and_line_split(loyalty: LoyaltyClient) -> None:
    calc = await loyalty.calculate(phone="+79160000002", lines=CART, bonus_to_spend=60_000, promo_code="welcome10")
    # subtotal 200 000; 10 % = 20 000; 30 % of 180 000 = 54 000 but the balance is 50 000
    assert (calc.subtotal, calc.discount, calc.max_bonus_to_spend, calc.bonus_spent) == (200_000, 20_000, 50_000, 50_000)
    assert (calc.total, calc.bonus_to_accrue, calc.promo_code_status) == (130_000, 6_500, "Applied")
    assert [(l.pos_id, l.discount, l.bonus, l.amount) for l in calc.lines] == [(1, 10_000, 25_000, 65_000), (2, 10_000, 25_000, 65_000)]


async def test_calculate_thirty_percent_cap_and_automatic_discount(loyalty: LoyaltyClient, drive: httpx.AsyncClient) -> None:
    await set_customer(drive, "+79160000003", balance=5_000_000)
    capped = await loyalty.calculate(phone="+79160000003", lines=CART, bonus_to_spend=100_000)
    assert (capped.discount, capped.max_bonus_to_spend, capped.bonus_spent, capped.total) == (0, 60_000, 60_000, 140_000)
    assert capped.promo_code_status is None

    big = [CartLine(1, "SKU-COAT", 1_200_000, 1)]
    auto = await loyalty.calculate(phone="+79160000003", lines=big, bonus_to_spend=0, promo_code="NOSUCH")
    assert (auto.discount, auto.promo_code_status, auto.total, auto.bonus_to_accrue) == (60_000, "NotFound", 1_140_000, 57_000)
    promo = await loyalty.calculate(phone="+79160000003", lines=big, bonus_to_spend=0, promo_code="WELCOME10")
    assert (promo.discount, promo.promo_code_status) == (120_000, "Applied")


async def test_calculate_rounds_by_largest_remainder(loyalty: LoyaltyClient) -> None:
    lines = [CartLine(1, "A", 333, 1), CartLine(2, "B", 333, 1), CartLine(3, "C", 334, 1)]
    calc = await loyalty.calculate(phone="+79160000004", lines=lines, bonus_to_spend=0, promo_code="WELCOME10")
    assert [l.discount for l in calc.lines] == [33, 33, 34]
    assert [l.amount for l in calc.lines] == [300, 300, 300]


async def test_calculate_lines_always_sum_to_the_totals(loyalty: LoyaltyClient, drive: httpx.AsyncClient) -> None:
    rnd = random.Random(20240611)
    for n in range(25):
        phone = f"+7916100{n:04d}"
        balance = rnd.choice([0, 777, 50_000, 3_000_000])
        await set_customer(drive, phone, balance=balance)
        lines = [CartLine(i + 1, f"SKU-{i}", rnd.randint(1, 900_000), rnd.randint(1, 4)) for i in range(rnd.randint(1, 6))]
        want = rnd.randint(0, 2_000_000)
        promo = rnd.choice([None, "WELCOME10"])
        calc = await loyalty.calculate(phone=phone, lines=lines, bonus_to_spend=want, promo_code=promo)
        subtotal = sum(l.price * l.qty for l in lines)
        assert calc.subtotal == subtotal
        assert sum(l.discount for l in calc.lines) == calc.discount
        assert sum(l.bonus for l in calc.lines) == calc.bonus_spent
        assert sum(l.amount for l in calc.lines) == calc.total == subtotal - calc.discount - calc.bonus_spent
        assert all(l.amount == l.price * l.qty - l.discount - l.bonus >= 0 for l in calc.lines)
        assert calc.max_bonus_to_spend == min((subtotal - calc.discount) * 30 // 100, balance)
        assert calc.bonus_spent == min(want, calc.max_bonus_to_spend)
        assert calc.bonus_to_accrue == calc.total * 5 // 100


async def test_begin_commit_activate(loyalty: LoyaltyClient) -> None:
    phone = "+79160000010"
    calc = await loyalty.calculate(phone=phone, lines=CART, bonus_to_spend=40_000)
    assert calc.bonus_spent == 40_000
    args = dict(purchase_id="P-10", transaction_id="P-10:tx1", phone=phone, lines=CART, bonus_to_spend=40_000, expected_total=calc.total)
    begun = await loyalty.begin(**args)
    assert begun == calc
    assert await loyalty.begin(**args) == calc  # repeat: same answer, nothing held twice
    bal = await loyalty.balance(phone)
    assert (bal.balance, bal.held) == (WELCOME - 40_000, 40_000)

    committed = await loyalty.commit(purchase_id="P-10", transaction_id="P-10:tx1", order_id="ORD-10")
    assert (committed.bonus_written_off, committed.bonus_to_accrue) == (40_000, 160_000 * 5 // 100)
    assert await loyalty.commit(purchase_id="P-10", transaction_id="P-10:tx1", order_id="ORD-10") == committed
    bal = await loyalty.balance(phone)
    assert (bal.balance, bal.held, bal.pending) == (WELCOME - 40_000, 0, 8_000)

    with pytest.raises(ExternalRefusal) as late:
        await loyalty.rollback(purchase_id="P-10", transaction_id="P-10:tx1")
    assert late.value.code == "AlreadyCommitted"

    assert await loyalty.activate(purchase_id="P-10") == 8_000
    assert await loyalty.activate(purchase_id="P-10") == 0
    bal = await loyalty.balance(phone)
    assert (bal.balance, bal.pending) == (WELCOME - 40_000 + 8_000, 0)


async def test_rollback_returns_the_hold(loyalty: LoyaltyClient) -> None:
    phone = "+79160000011"
    calc = await loyalty.calculate(phone=phone, lines=CART, bonus_to_spend=30_000)
    await loyalty.begin(purchase_id="P-11", transaction_id="P-11:tx1", phone=phone, lines=CART, bonus_to_spend=30_000, expected_total=calc.total)
    assert (await loyalty.balance(phone)).held == 30_000
    await loyalty.rollback(purchase_id="P-11", transaction_id="P-11:tx1")
    await loyalty.rollback(purchase_id="P-11", transaction_id="P-11:tx1")
    bal = await loyalty.balance(phone)
    assert (bal.balance, bal.held, bal.pending) == (WELCOME, 0, 0)
    with pytest.raises(ExternalRefusal) as gone:
        await loyalty.commit(purchase_id="P-11", transaction_id="P-11:tx1", order_id="ORD-11")
    assert gone.value.code == "AlreadyRolledBack"

    # compensating a begin that never arrived is safe, and the late begin is then refused
    await loyalty.rollback(purchase_id="P-11", transaction_id="P-11:tx2")
    with pytest.raises(ExternalRefusal) as late:
        await loyalty.begin(purchase_id="P-11", transaction_id="P-11:tx2", phone=phone, lines=CART, bonus_to_spend=30_000, expected_total=calc.total)
    assert late.value.code == "TransactionRolledBack"
    assert (await loyalty.balance(phone)).balance == WELCOME


async def test_price_has_been_changed_holds_nothing(loyalty: LoyaltyClient) -> None:
    phone = "+79160000012"
    calc = await loyalty.calculate(phone=phone, lines=CART, bonus_to_spend=10_000)
    with pytest.raises(ExternalRefusal) as changed:
        await loyalty.begin(purchase_id="P-12", transaction_id="P-12:tx1", phone=phone, lines=CART, bonus_to_spend=10_000, expected_total=calc.total + 1)
    assert changed.value.code == "PriceHasBeenChanged"
    bal = await loyalty.balance(phone)
    assert (bal.balance, bal.held) == (WELCOME, 0)
    # a fresh begin with the right total goes through
    await loyalty.begin(purchase_id="P-12", transaction_id="P-12:tx2", phone=phone, lines=CART, bonus_to_spend=10_000, expected_total=calc.total)
    assert (await loyalty.balance(phone)).held == 10_000


async def test_blocked_card_and_not_enough_bonuses(loyalty: LoyaltyClient, drive: httpx.AsyncClient) -> None:
    await set_customer(drive, "+79160000013", blocked=True)
    assert (await loyalty.balance("+79160000013")).status == "blocked"
    with pytest.raises(ExternalRefusal) as blocked:
        await loyalty.begin(purchase_id="P-13", transaction_id="P-13:tx1", phone="+79160000013", lines=CART, bonus_to_spend=0, expected_total=200_000)
    assert blocked.value.code == "CardBlocked"

    await set_customer(drive, "+79160000014", balance=1_000)
    with pytest.raises(ExternalRefusal) as poor:
        await loyalty.begin(purchase_id="P-14", transaction_id="P-14:tx1", phone="+79160000014", lines=CART, bonus_to_spend=5_000, expected_total=195_000)
    assert poor.value.code == "NotEnoughBonuses"
    assert (await loyalty.balance("+79160000014")).held == 0


async def test_commit_with_a_removed_unit_releases_its_bonus(loyalty: LoyaltyClient) -> None:
    phone = "+79160000015"
    lines = [CartLine(1, "SKU-A", 10_001, 3), CartLine(2, "SKU-B", 7_000, 1)]
    calc = await loyalty.calculate(phone=phone, lines=lines, bonus_to_spend=10_000)
    # subtotal 37 003; cap 30 % = 11 100; spend 10 000 split 30 003 : 7 000 -> 8 108.3.. : 1 891.7..
    assert [l.bonus for l in calc.lines] == [8_108, 1_892]
    await loyalty.begin(purchase_id="P-15", transaction_id="P-15:tx1", phone=phone, lines=lines, bonus_to_spend=10_000, expected_total=calc.total)
    result = await loyalty.commit(purchase_id="P-15", transaction_id="P-15:tx1", order_id="ORD-15", lines=[(1, 2), (2, 1)])
    # line 1 keeps 2 of 3 units: 8 108 * 2/3 = 5 405.33 -> written off 5 405 + 1 892
    assert result.bonus_written_off == 7_297
    # kept lines cost 20 002 - 5 405 + 7 000 - 1 892 = 19 705; 5 % = 985
    assert result.bonus_to_accrue == 985
    bal = await loyalty.balance(phone)
    assert (bal.balance, bal.held, bal.pending) == (WELCOME - 7_297, 0, 985)


async def test_returns_in_two_parts_give_back_exactly_the_written_off_bonus(loyalty: LoyaltyClient, drive: httpx.AsyncClient) -> None:
    phone = "+79160000016"
    lines = [CartLine(1, "SKU-A", 10_001, 3), CartLine(2, "SKU-B", 7_000, 1)]
    calc = await loyalty.calculate(phone=phone, lines=lines, bonus_to_spend=10_000)
    await loyalty.begin(purchase_id="P-16", transaction_id="P-16:tx1", phone=phone, lines=lines, bonus_to_spend=10_000, expected_total=calc.total)
    done = await loyalty.commit(purchase_id="P-16", transaction_id="P-16:tx1", order_id="ORD-16")
    assert done.bonus_written_off == 10_000

    first = await loyalty.return_lines(purchase_id="P-16", return_id="R-1", lines=[(1, 1)])
    assert await loyalty.return_lines(purchase_id="P-16", return_id="R-1", lines=[(1, 1)]) == first  # idempotent
    second = await loyalty.return_lines(purchase_id="P-16", return_id="R-2", lines=[(1, 2), (2, 1)])
    assert first.bonus_returned == 8_108 // 3
    assert first.bonus_returned + second.bonus_returned == 10_000
    assert first.accrual_reversed + second.accrual_reversed == done.bonus_to_accrue
    assert first.accrual_not_reversed == second.accrual_not_reversed == 0
    bal = await loyalty.balance(phone)
    assert (bal.balance, bal.pending, bal.held) == (WELCOME, 0, 0)

    with pytest.raises(ExternalRefusal) as too_many:
        await loyalty.return_lines(purchase_id="P-16", return_id="R-3", lines=[(2, 1)])
    assert too_many.value.code == "TooManyUnits"
    history = (await drive.get(f"/sandbox/loyalty/customers/{phone}")).json()["operations"]
    assert [op["type"] for op in history].count("return_bonus") == 2


async def test_return_after_activation_takes_accrual_from_balance_never_below_zero(
    loyalty: LoyaltyClient, drive: httpx.AsyncClient
) -> None:
    phone = "+79160000017"
    calc = await loyalty.calculate(phone=phone, lines=CART, bonus_to_spend=0)
    await loyalty.begin(purchase_id="P-17", transaction_id="P-17:tx1", phone=phone, lines=CART, bonus_to_spend=0, expected_total=calc.total)
    done = await loyalty.commit(purchase_id="P-17", transaction_id="P-17:tx1", order_id="ORD-17")
    assert done.bonus_to_accrue == 10_000
    assert await loyalty.activate(purchase_id="P-17") == 10_000
    assert (await loyalty.balance(phone)).balance == WELCOME + 10_000
    await set_customer(drive, phone, balance=3_000)  # the customer spent most of it elsewhere

    ret = await loyalty.return_lines(purchase_id="P-17", return_id="R-17", lines=[(1, 1), (2, 2)])
    assert (ret.bonus_returned, ret.accrual_reversed, ret.accrual_not_reversed) == (0, 3_000, 7_000)
    assert (await loyalty.balance(phone)).balance == 0


async def test_bad_credentials_are_refused(sb: Any) -> None:
    async with httpx.AsyncClient(base_url=f"{sb.url}/loyalty", timeout=10) as http:
        with pytest.raises(ExternalRefusal) as denied:
            await LoyaltyClient(http, user="orkestr", password="nope").balance("+79160000018")
    assert denied.value.code == "Unauthorized"
