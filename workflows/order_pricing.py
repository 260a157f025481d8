"""Loyalty prices the order (Loymax-style phases, ``shared/reference/loyalty.md``): a quote
(``calculate``), the purchase transaction begun at placement (bonus write-off held), and begun
again after a change of lines, so discounts, bonus and accrual are always exact."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.loyalty import LoyaltyActivities
    from contracts.order import CatalogLine
    from contracts.steps import LoyaltyBegin, LoyaltyRef, PriceRequest, Priced

from workflows.common import call
from workflows.order_state import OrderState


class Pricing:
    def __init__(self, state: OrderState) -> None:
        self.state = state

    async def quote(self, catalog: list[CatalogLine]) -> Priced:
        inp = self.state.inp
        return await call(LoyaltyActivities.price_cart, PriceRequest(
            phone=inp.customer.phone, lines=catalog, bonus_to_spend=inp.bonus_to_spend, promo_code=inp.promo_code))

    async def begin(self, catalog: list[CatalogLine], quoted: Priced) -> Priced:
        """Begin the purchase at the quoted total (loyalty refuses if its price moved meanwhile)."""
        st, inp = self.state, self.state.inp
        return await call(LoyaltyActivities.begin_loyalty, LoyaltyBegin(
            purchase_id=inp.order_id, transaction_id=st.loyalty_tx, phone=inp.customer.phone, lines=catalog,
            bonus_to_spend=inp.bonus_to_spend, expected_total=quoted.subtotal - quoted.discount - quoted.bonus_spent,
            promo_code=inp.promo_code))

    async def reprice(self, catalog: list[CatalogLine], quoted: Priced | None = None) -> None:
        """Roll the loyalty transaction back and begin it again with ``catalog``: exact lines and totals.
        ``quoted``: the price already calculated for ``catalog`` (an operator's edit priced it before
        anything changed); loyalty must begin at that total, else it refuses."""
        st = self.state
        await call(LoyaltyActivities.rollback_loyalty, LoyaltyRef(st.order_id, st.loyalty_tx))
        quoted = quoted or await self.quote(catalog)
        st.loyalty_gen += 1
        priced = await self.begin(catalog, quoted)
        st.catalog = catalog
        st.price(priced.lines, priced.subtotal, priced.discount, priced.bonus_spent, priced.bonus_to_accrue)
