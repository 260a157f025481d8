"""Steps 6-7 of an order: once everything is delivered (or collected), capture what was shipped and
commit the loyalty purchase; keep the accrued bonus pending until the return window closes."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.loyalty import LoyaltyActivities
    from contracts.order import OrderStatus
    from contracts.steps import LoyaltyCommit, LoyaltyRef
    from domain.money import format_money

from workflows.common import call
from workflows.order_payments import Payments
from workflows.order_state import OrderState, Ports


class Settlement:
    def __init__(self, state: OrderState, ports: Ports, payments: Payments) -> None:
        self.state, self.ports, self.payments = state, ports, payments

    async def settle(self) -> None:
        """Step 6: capture the shipped total (``deposit.do``), commit loyalty for the lines kept
        (the accrual starts pending); nothing is left to compensate: later changes are returns."""
        st, inp = self.state, self.state.inp
        await self.payments.capture()
        accrual = await call(LoyaltyActivities.commit_loyalty, LoyaltyCommit(
            purchase_id=inp.order_id, transaction_id=st.loyalty_tx, order_id=inp.order_id, kept=st.kept))
        st.undo.clear()
        st.note("loyalty_committed", f"Покупка проведена в программе лояльности, к начислению {format_money(accrual)}")
        st.status = OrderStatus.completed
        st.note("completed", "Заказ выполнен")
        await self.ports.save()

    async def keep_bonus_pending(self) -> None:
        """Step 7: the accrual becomes spendable only when the return window closes (a return
        meanwhile takes its share back, so the balance never goes negative)."""
        st = self.state
        await self.ports.wait(lambda: False, timeout=timedelta(days=st.inp.return_window_days))
        activated = await call(LoyaltyActivities.activate_bonus, LoyaltyRef(purchase_id=st.order_id))
        st.note("bonus_activated", f"Окно возврата закрыто: начислено {format_money(activated)} бонусов")
        await self.ports.save()
