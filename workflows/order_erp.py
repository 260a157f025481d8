"""The order in the ERP (1C-style OData, ``shared/reference/erp-pos.md``): exported once paid
(``Document_CustomerOrder``), and kept in step with every later change of lines or total (an
operator's edit, a substitution, a dropped shipment)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.erp import ErpActivities
    from contracts.recovery import ParkedStep, RetryRequest
    from contracts.steps import ErpOrderExport
    from domain.money import format_money

from workflows.common import STEP_FAILED, call, failure_message
from workflows.order_state import OrderState, Ports, stop_if_cancelled
from workflows.recovery import Recovery, StepAbandoned


class Erp:
    def __init__(self, state: OrderState, ports: Ports, recovery: Recovery) -> None:
        self.state, self.ports, self.recovery = state, ports, recovery

    async def export(self) -> None:
        """Step 5: the ERP gets the order. A refusal (or a long outage) parks the order for an
        operator (``retry``); a cancel while it waits stops the order."""
        st = self.state
        try:
            await self.recovery.run("erp_export", lambda: call(ErpActivities.export_order, self._document()),
                                    on_park=self._parked, on_resume=self._resumed,
                                    abandon=lambda: st.cancel is not None, wait=self.ports.wait)
        except StepAbandoned:
            stop_if_cancelled(st)
        st.erp_exported = True
        st.note("erp_exported", "Заказ выгружен в ERP")

    async def follow(self) -> None:
        """The exported order changed: the ERP's customer order follows. Not worth holding the order
        for: a refusal or a long outage lands in the timeline."""
        st = self.state
        if not st.erp_exported:
            return
        try:
            await call(ErpActivities.update_erp_order, self._document(), schedule_to_close=timedelta(minutes=10))
        except STEP_FAILED as err:
            st.note("erp_update_failed", f"ERP не принял изменение заказа: {failure_message(err)}")
            return
        st.note("erp_updated", f"Изменение заказа передано в ERP: сумма {format_money(st.totals.total)}")

    def _document(self) -> ErpOrderExport:
        st, inp = self.state, self.state.inp
        return ErpOrderExport(number=inp.order_id, created_at=st.created_at, currency=inp.currency,
                              amount=st.totals.total, customer_name=inp.customer.name,
                              customer_phone=inp.customer.phone, channel=inp.channel.value, lines=st.lines)

    async def _parked(self, parked: ParkedStep) -> None:
        self.state.parked = parked
        self.state.enter_hold(parked)
        await self.ports.save()

    async def _resumed(self, parked: ParkedStep, req: RetryRequest) -> None:
        st = self.state
        st.note("retry_requested", f"Оператор {req.by} повторяет шаг {parked.step}"
                f"{': ' + req.note if req.note else ''}", by=req.by, step=parked.step)
        st.parked = None
        st.leave_hold()
        await self.ports.save()
