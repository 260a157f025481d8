"""How an order ends early: refused at placement (nothing is held), or stopped (payment window
expired, the bank declined, a cancel, goods not collected) and every step done undone in reverse.

Each step that holds something records what undoes it in ``OrderState.undo`` (data, not closures:
the list is part of the order's state and shows what a cancellation would do). :class:`Saga` runs
them from the last to the first.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.loyalty import LoyaltyActivities
    from activities.stock import StockActivities
    from contracts.order import OrderStatus, Placement
    from contracts.steps import LoyaltyRef, SettleRequest

from workflows.common import call, local
from workflows.order_payments import Payments
from workflows.order_state import OrderState, OrderStopped, PlacementRefused, Ports, Undo, UndoKind


class Saga:
    def __init__(self, state: OrderState, ports: Ports, payments: Payments) -> None:
        self.state, self.ports, self.payments = state, ports, payments

    async def reject(self, refusal: PlacementRefused) -> None:
        """Placement refused: undo what was held; the storefront gets the reason, nothing is saved."""
        st = self.state
        await self.compensate()
        st.status = OrderStatus.rejected
        st.placement = Placement(order_id=st.order_id, status=st.status, error_code=refusal.code,
                                 error_message=refusal.message, error_field=refusal.field)

    async def cancel(self, stop: OrderStopped) -> None:
        """Undo every step done, in reverse; the order is cancelled and the customer told why."""
        st = self.state
        await self.compensate()
        st.status = OrderStatus.cancelled
        st.note("cancelled", stop.reason)
        await self.ports.save()
        await self.ports.notify(stop.notice, reason=stop.reason)

    async def compensate(self) -> None:
        st = self.state
        while st.undo:
            undo = st.undo.pop()
            await self._undo(undo)
            st.note("compensated", f"Отменено: {undo.kind.value}")

    async def _undo(self, undo: Undo) -> None:
        st = self.state
        if undo.kind == UndoKind.release_stock:
            await local(StockActivities.release_stock, SettleRequest(owner=st.wf_id))
        elif undo.kind == UndoKind.rollback_loyalty:
            await call(LoyaltyActivities.rollback_loyalty, LoyaltyRef(st.order_id, st.loyalty_tx))
        else:  # a payment: an open link is closed, a hold reversed
            payment = st.main_payment if undo.md_order is None else st.payment(undo.md_order)
            if payment is not None:
                await self.payments.close_for_good(payment)
