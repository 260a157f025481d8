"""Loyalty steps: price the cart, hold the write-off, commit (accrual), roll back, return, activate."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.common import logger, refusals_as
from adapters.loyalty import LoyaltyClient
from adapters.wire.loyalty import CartLine, Calculation
from contracts.order import CatalogLine, OrderLine
from contracts.steps import (
    ErrorType,
    LoyaltyBegin,
    LoyaltyCommit,
    LoyaltyRef,
    LoyaltyReturnRequest,
    LoyaltyReturnResult,
    PriceRequest,
    Priced,
)


def _cart(lines: list[CatalogLine]) -> list[CartLine]:
    return [CartLine(pos_id=l.pos_id, sku=l.sku, price=l.unit_price, qty=l.qty) for l in lines]


def _priced(lines: list[CatalogLine], calc: Calculation) -> Priced:
    by_pos = {p.pos_id: p for p in calc.lines}
    out = []
    for l in lines:
        p = by_pos[l.pos_id]
        out.append(OrderLine(pos_id=l.pos_id, sku=l.sku, name=l.name, qty=l.qty, unit_price=l.unit_price,
                             discount=p.discount, bonus=p.bonus))
    return Priced(lines=out, subtotal=calc.subtotal, discount=calc.discount, bonus_spent=calc.bonus_spent,
                  bonus_to_accrue=calc.bonus_to_accrue)


@dataclass
class LoyaltyActivities:
    loyalty: LoyaltyClient

    @activity.defn
    async def price_cart(self, req: PriceRequest) -> Priced:
        with refusals_as(ErrorType.LOYALTY_REFUSED):
            calc = await self.loyalty.calculate(
                phone=req.phone, lines=_cart(req.lines), bonus_to_spend=req.bonus_to_spend, promo_code=req.promo_code
            )
        return _priced(req.lines, calc)

    @activity.defn
    async def begin_loyalty(self, req: LoyaltyBegin) -> Priced:
        with refusals_as(ErrorType.LOYALTY_REFUSED):
            calc = await self.loyalty.begin(
                purchase_id=req.purchase_id, transaction_id=req.transaction_id, phone=req.phone,
                lines=_cart(req.lines), bonus_to_spend=req.bonus_to_spend, expected_total=req.expected_total,
                promo_code=req.promo_code,
            )
        logger().info("loyalty.held", bonus=calc.bonus_spent)
        return _priced(req.lines, calc)

    @activity.defn
    async def commit_loyalty(self, req: LoyaltyCommit) -> int:
        with refusals_as(ErrorType.LOYALTY_REFUSED):
            res = await self.loyalty.commit(
                purchase_id=req.purchase_id, transaction_id=req.transaction_id, order_id=req.order_id,
                lines=req.kept,
            )
        logger().info("loyalty.committed", written_off=res.bonus_written_off, accrual=res.bonus_to_accrue)
        return res.bonus_to_accrue

    @activity.defn
    async def rollback_loyalty(self, req: LoyaltyRef) -> None:
        with refusals_as(ErrorType.LOYALTY_REFUSED):
            await self.loyalty.rollback(purchase_id=req.purchase_id, transaction_id=req.transaction_id)
        logger().info("loyalty.rolled_back")

    @activity.defn
    async def return_bonus(self, req: LoyaltyReturnRequest) -> LoyaltyReturnResult:
        with refusals_as(ErrorType.LOYALTY_REFUSED):
            res = await self.loyalty.return_lines(purchase_id=req.purchase_id, return_id=req.return_id, lines=req.lines)
        return LoyaltyReturnResult(bonus_returned=res.bonus_returned, accrual_reversed=res.accrual_reversed)

    @activity.defn
    async def activate_bonus(self, req: LoyaltyRef) -> int:
        with refusals_as(ErrorType.LOYALTY_REFUSED):
            return await self.loyalty.activate(purchase_id=req.purchase_id)
