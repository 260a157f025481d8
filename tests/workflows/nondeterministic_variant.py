"""A deliberately non-deterministic variant of OrderWorkflow, for the `orkestr replay` test.

It asks the bank for a payment status before placing the order: a history recorded with the real
workflow scheduled ``price_cart`` first, so replaying it against this code must fail.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentActivities
    from contracts.order import OrderInput, OrderStatus

from workflows.common import call
from workflows.order import OrderWorkflow as RealOrderWorkflow


@workflow.defn(name="OrderWorkflow")
class OrderWorkflow(RealOrderWorkflow):
    @workflow.run
    async def run(self, inp: OrderInput) -> OrderStatus:
        await call(PaymentActivities.payment_status, "probe")  # the new first step
        return await super().run(inp)
