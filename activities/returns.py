"""Return steps in PostgreSQL (projection, the refund computed once, restock) and the post's return code."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import logger, refusals_as
from adapters.couriers import CourierRegistry
from adapters.ledger import Ledger
from datetime import datetime, timezone
from typing import Sequence

from adapters.returns_repo import OrderNotFound, ReturnsRepo
from adapters.wire.couriers import Booking
from contracts.order import OrderSnapshot
from contracts.returns import (
    RefundClaim,
    RefundView,
    RestockRequest,
    ReturnInput,
    ReturnLineRequest,
    ReturnSnapshot,
    ReturnStatus,
)
from contracts.steps import BookedShipment, ErrorType
from domain.returns import ReturnRefused, check_request

RETURN_REFUSED = "ReturnRefused"


@dataclass
class ReturnActivities:
    returns: ReturnsRepo
    ledger: Ledger
    couriers: CourierRegistry

    @activity.defn
    async def register_return(self, inp: ReturnInput) -> ReturnSnapshot:
        """Claim the return's units under the order's lock (``domain.returns.check_request`` against the
        order's record and its other returns) and save it; a retry answers the saved return. A refusal
        is a ``ReturnRefused`` error with details (HTTP status, code, field)."""
        now = inp.created_at or datetime.now(timezone.utc)

        def build(order: OrderSnapshot, others: Sequence[ReturnSnapshot]) -> ReturnSnapshot:
            lines = check_request(order, [ReturnLineRequest(pos_id=x.pos_id, qty=x.qty, reason=x.reason)
                                          for x in inp.lines], others, now=now, window_days=inp.window_days)
            return ReturnSnapshot(return_id=inp.return_id, order_id=inp.order_id, status=ReturnStatus.registered,
                                  method=inp.method, location_id=inp.location.id, lines=lines, created_at=now,
                                  updated_at=now, version=0, currency=inp.currency)

        try:
            snap, created = await self.returns.create(return_id=inp.return_id, order_id=inp.order_id, build=build)
        except ReturnRefused as exc:
            raise ApplicationError(exc.message, exc.status, exc.code, exc.field, type=RETURN_REFUSED,
                                   non_retryable=True) from exc
        except OrderNotFound as exc:
            raise ApplicationError(f"order_id: no order {inp.order_id}", 404, "not_found", "order_id",
                                   type=RETURN_REFUSED, non_retryable=True) from exc
        logger().info("return.registered", return_id=inp.return_id, order_id=inp.order_id, created=created)
        return snap

    @activity.defn
    async def save_return(self, snapshot: ReturnSnapshot) -> None:
        await self.returns.save(snapshot)

    @activity.defn
    async def settle_return_refund(self, claim: RefundClaim) -> RefundView:
        """The exact refund of the accepted units (``domain.refunds``), computed once per return."""
        try:
            refund = await self.returns.settle_refund(claim)
        except (OrderNotFound, LookupError, ValueError) as exc:
            raise ApplicationError(f"cannot price return {claim.return_id}: {exc}", type=RETURN_REFUSED,
                                   non_retryable=True) from exc
        logger().info("return.refund_settled", money=refund.money, bonus=refund.bonus, delivery=refund.delivery)
        return refund

    @activity.defn
    async def restock_return(self, req: RestockRequest) -> int:
        units = await self.ledger.restock(req.location_id, [(i.key, i.sku, i.qty) for i in req.items])
        logger().info("return.restocked", location=req.location_id, units=units)
        return units

    @activity.defn
    async def post_return_code(self, booked: BookedShipment) -> str:
        """The code the customer shows at any post office for a Russian Post easy return."""
        post = self.couriers.get(booked.carrier)
        code_of = getattr(post, "return_code", None)
        if code_of is None:
            raise ApplicationError(f"{booked.carrier} has no return codes", type=ErrorType.COURIER_REFUSED,
                                   non_retryable=True)
        with refusals_as(ErrorType.COURIER_REFUSED):
            return str(await code_of(Booking(carrier=booked.carrier, external_id=booked.external_id,
                                              tracking_number=booked.tracking_number or "")))
