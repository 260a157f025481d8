"""Acquiring steps: hold, status, capture, reverse, refund. Idempotent by order number / key."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import logger, refusals_as
from adapters.acquiring import AcquiringClient
from adapters.errors import ExternalRefusal
from contracts.order import OrderLine, PaymentState
from adapters.wire.acquiring import BundleItem
from contracts.steps import (
    CaptureRequest,
    ErrorType,
    PaymentRegistered,
    PaymentStatusResult,
    RefundRequest,
    RegisterPayment,
    ReverseRequest,
)


def bundle(lines: list[OrderLine], delivery_amount: int = 0) -> list[BundleItem]:
    """The cart for the fiscal receipt: item amounts sum to the payment amount."""
    items = [
        BundleItem(
            position_id=line.pos_id, item_code=line.sku, name=line.name[:100], quantity=line.qty,
            item_price=line.amount // line.qty if line.qty else 0, item_amount=line.amount,
        )
        for line in lines
        if line.qty > 0
    ]
    if delivery_amount:
        items.append(
            BundleItem(position_id=len(items) + 1000, item_code="DELIVERY", name="Доставка", quantity=1,
                       item_price=delivery_amount, item_amount=delivery_amount, payment_object="service")
        )
    return items


@dataclass
class PaymentActivities:
    acquiring: AcquiringClient
    callback_url: str
    return_url: str

    @activity.defn
    async def register_payment(self, req: RegisterPayment) -> PaymentRegistered:
        with refusals_as(ErrorType.PAYMENT_REFUSED):
            reg = await self.acquiring.register_preauth(
                order_number=req.order_number, amount=req.amount, currency=req.currency,
                description=req.description, return_url=self.return_url, fail_url=self.return_url,
                callback_url=self.callback_url, session_timeout_secs=req.session_timeout_secs,
                phone=req.phone, email=req.email, bundle=bundle(req.lines, req.delivery_amount),
            )
        logger().info("payment.registered", md_order=reg.md_order, amount=req.amount)
        return PaymentRegistered(md_order=reg.md_order, form_url=reg.form_url)

    @activity.defn
    async def payment_status(self, md_order: str) -> PaymentStatusResult:
        with refusals_as(ErrorType.PAYMENT_REFUSED):
            st = await self.acquiring.status(md_order=md_order)
        return PaymentStatusResult(
            md_order=md_order, state=st.state, approved=st.approved,
            deposited=st.deposited, refunded=st.refunded,
        )

    @activity.defn
    async def capture_payment(self, req: CaptureRequest) -> None:
        with refusals_as(ErrorType.PAYMENT_REFUSED):
            await self.acquiring.deposit(md_order=req.md_order, amount=req.amount, idempotency_key=req.idempotency_key)
        logger().info("payment.captured", md_order=req.md_order, amount=req.amount)

    @activity.defn
    async def reverse_payment(self, req: ReverseRequest) -> None:
        with refusals_as(ErrorType.PAYMENT_REFUSED):
            await self.acquiring.reverse(md_order=req.md_order, idempotency_key=req.idempotency_key)
        logger().info("payment.reversed", md_order=req.md_order)

    @activity.defn
    async def decline_payment(self, md_order: str) -> None:
        """Close an unpaid registration; ``AlreadyPaid`` when the customer paid it meanwhile."""
        with refusals_as(ErrorType.PAYMENT_REFUSED):
            try:
                await self.acquiring.decline(md_order=md_order)
            except ExternalRefusal as exc:
                st = await self.acquiring.status(md_order=md_order)
                if st.state in (PaymentState.held, PaymentState.captured):
                    raise ApplicationError(f"the payment {md_order} has just been made", md_order,
                                           type=ErrorType.ALREADY_PAID, non_retryable=True) from exc
                raise
        logger().info("payment.declined", md_order=md_order)

    @activity.defn
    async def refund_payment(self, req: RefundRequest) -> None:
        with refusals_as(ErrorType.PAYMENT_REFUSED):
            await self.acquiring.refund(
                md_order=req.md_order, amount=req.amount, idempotency_key=req.idempotency_key,
                bundle=bundle(req.lines, req.delivery_amount) if req.lines else None,
            )
        logger().info("payment.refunded", md_order=req.md_order, amount=req.amount)
