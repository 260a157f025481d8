"""Stand-in activities for ReturnWorkflow tests, registered under the real activity names.

The refund is computed with the real pure math (``domain.refunds`` through ``paid_lines``) over
a fixed order, keeping what earlier returns took, as ``adapters.returns_repo`` does in PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.order import OrderLine
from contracts.stock import Availability, LocationInfo, StockView
from domain.refunds import refund_return
from contracts.returns import RefundClaim, RefundView, RestockRequest, ReturnInput, ReturnSnapshot, ReturnStatus
from domain.returns import paid_lines, refund_view
from contracts.steps import (
    BookedShipment,
    CaptureRequest,
    CustomerNotice,
    ErpMovement,
    LoyaltyReturnRequest,
    LoyaltyReturnResult,
    PosCancel,
    PaymentRegistered,
    PosTaskRequest,
    RefundRequest,
    RegisterPayment,
    ReserveRequest,
    SettleRequest,
    ShipmentBookingRequest,
    StockViewRequest,
    StoreMessage,
    TrackingResult,
)

#: an order of 3 × 1 999.00 (line discount 300.00, bonus 200.01) and 1 × 999.00 (bonus 99.99), delivery 399.00
ORDER_LINES = [
    OrderLine(pos_id=1, sku="SKU-1", name="Платье", qty=3, unit_price=199_900, discount=30_000, bonus=20_001),
    OrderLine(pos_id=2, sku="SKU-2", name="Ремень", qty=1, unit_price=99_900, discount=0, bonus=9_999),
]
DELIVERY = 39_900


@dataclass
class ReturnWorld:
    pos_tasks: list[PosTaskRequest] = field(default_factory=list)
    pos_cancelled: list[str] = field(default_factory=list)
    store_messages: list[StoreMessage] = field(default_factory=list)
    bookings: list[ShipmentBookingRequest] = field(default_factory=list)
    cancelled_bookings: list[str] = field(default_factory=list)
    tracking: list[str] = field(default_factory=list)  # statuses the carrier reports, one per poll
    polls: int = 0
    snapshots: list[ReturnSnapshot] = field(default_factory=list)
    refunded_units: dict[int, int] = field(default_factory=dict)
    refund_claims: dict[str, RefundView] = field(default_factory=dict)
    bank_refunds: dict[str, RefundRequest] = field(default_factory=dict)  # idempotency key -> request
    loyalty_returns: dict[str, LoyaltyReturnRequest] = field(default_factory=dict)
    restocked: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # key -> (sku, location, qty)
    erp_returns: dict[str, ErpMovement] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    stock: dict[tuple[str, str], int] = field(default_factory=dict)  # available per (sku, location)
    held: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)
    consumed: list[str] = field(default_factory=list)
    payments: list[RegisterPayment] = field(default_factory=list)
    captured: list[int] = field(default_factory=list)
    sales: list[ErpMovement] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)  # returns whose units were claimed
    refuse_registration: tuple[int, str, str] | None = None  # (status, code, field) the rules answer

    def last(self) -> ReturnSnapshot:
        return self.snapshots[-1]

    def activities(self) -> list[Callable[..., Any]]:
        w = self

        @activity.defn(name="create_pos_task")
        async def create_pos_task(req: PosTaskRequest) -> None:
            w.pos_tasks.append(req)

        @activity.defn(name="cancel_pos_task")
        async def cancel_pos_task(req: PosCancel) -> None:
            w.pos_cancelled.append(req.task_id)

        @activity.defn(name="notify_store")
        async def notify_store(msg: StoreMessage) -> None:
            w.store_messages.append(msg)

        @activity.defn(name="book_shipment")
        async def book_shipment(req: ShipmentBookingRequest) -> BookedShipment:
            w.bookings.append(req)
            return BookedShipment(carrier=req.carrier, external_id=f"uuid-{req.shipment_id}",
                                  tracking_number=f"TRK-{len(w.bookings)}")

        @activity.defn(name="cancel_shipment")
        async def cancel_shipment(b: BookedShipment) -> None:
            w.cancelled_bookings.append(b.external_id)

        @activity.defn(name="track_shipment")
        async def track_shipment(b: BookedShipment) -> TrackingResult:
            w.polls += 1
            status = w.tracking.pop(0) if w.tracking else "created"
            return TrackingResult(status=status, code=status)

        @activity.defn(name="post_return_code")
        async def post_return_code(b: BookedShipment) -> str:
            return "123456"

        @activity.defn(name="register_return")
        async def register_return(inp: ReturnInput) -> ReturnSnapshot:
            if w.refuse_registration is not None:
                status, code, field_name = w.refuse_registration
                raise ApplicationError(f"{field_name}: refused", status, code, field_name, type="ReturnRefused",
                                       non_retryable=True)
            at = inp.created_at or datetime(2026, 12, 1, tzinfo=timezone.utc)
            w.registered.append(inp.return_id)
            return ReturnSnapshot(return_id=inp.return_id, order_id=inp.order_id, status=ReturnStatus.registered,
                                  method=inp.method, location_id=inp.location.id, lines=list(inp.lines),
                                  created_at=at, updated_at=at, version=0, currency=inp.currency)

        @activity.defn(name="save_return")
        async def save_return(s: ReturnSnapshot) -> None:
            w.snapshots.append(s)

        @activity.defn(name="settle_return_refund")
        async def settle_return_refund(c: RefundClaim) -> RefundView:
            if c.return_id not in w.refund_claims:
                r = refund_return(paid_lines(ORDER_LINES), dict(w.refunded_units), dict(c.accepted),
                                  delivery_paid=DELIVERY, delivery_policy=c.delivery_policy)
                for x in r.lines:
                    w.refunded_units[x.pos_id] = w.refunded_units.get(x.pos_id, 0) + x.qty
                w.refund_claims[c.return_id] = refund_view(r)
            return w.refund_claims[c.return_id]

        @activity.defn(name="refund_payment")
        async def refund_payment(req: RefundRequest) -> None:
            assert sum(l.amount for l in req.lines) + req.delivery_amount == req.amount, "bundle must sum to the amount"
            w.bank_refunds.setdefault(req.idempotency_key, req)

        @activity.defn(name="return_bonus")
        async def return_bonus(req: LoyaltyReturnRequest) -> LoyaltyReturnResult:
            w.loyalty_returns.setdefault(req.return_id, req)
            return LoyaltyReturnResult(bonus_returned=111, accrual_reversed=22)

        @activity.defn(name="restock_return")
        async def restock_return(req: RestockRequest) -> int:
            units = 0
            for i in req.items:
                if i.key not in w.restocked:
                    w.restocked[i.key] = (i.sku, req.location_id, i.qty)
                    units += i.qty
            return units

        @activity.defn(name="post_return")
        async def post_return(req: ErpMovement) -> None:
            w.erp_returns.setdefault(req.number, req)

        @activity.defn(name="notify_customer")
        async def notify_customer(n: CustomerNotice) -> None:
            w.notices.append(n.event)

        @activity.defn(name="load_stock_view")
        async def load_stock_view(req: StockViewRequest) -> StockView:
            locs = {l for _, l in w.stock}
            return StockView(
                locations=[LocationInfo(id=l, name=l, kind="store", city="Москва", region="RU-MOW", lat=0, lon=0)
                           for l in sorted(locs)],
                available=[Availability(sku=s, location_id=l, on_hand=q, reserved=0, safety_stock=0, available=q)
                           for (s, l), q in sorted(w.stock.items()) if s in req.skus])

        @activity.defn(name="reserve_stock")
        async def reserve_stock(req: ReserveRequest) -> None:
            for a in req.allocations:
                if a.key not in w.held:
                    w.stock[(a.sku, a.location_id)] -= a.qty
                    w.held[a.key] = (a.sku, a.location_id, a.qty)

        @activity.defn(name="release_stock")
        async def release_stock(req: SettleRequest) -> int:
            for key in req.keys or []:
                if key in w.held:
                    sku, loc, qty = w.held.pop(key)
                    w.stock[(sku, loc)] += qty
                    w.released.append(key)
            return 0

        @activity.defn(name="consume_stock")
        async def consume_stock(req: SettleRequest) -> int:
            for key in req.keys or []:
                if w.held.pop(key, None):
                    w.consumed.append(key)
            return 0

        @activity.defn(name="post_sale")
        async def post_sale(req: ErpMovement) -> None:
            w.sales.append(req)

        @activity.defn(name="register_payment")
        async def register_payment(req: RegisterPayment) -> PaymentRegistered:
            assert sum(l.amount for l in req.lines) == req.amount
            w.payments.append(req)
            return PaymentRegistered(md_order="md-x", form_url="http://bank/pay?mdOrder=md-x")

        @activity.defn(name="capture_payment")
        async def capture_payment(req: CaptureRequest) -> None:
            w.captured.append(req.amount)

        return [register_return, load_stock_view, reserve_stock, release_stock, consume_stock, post_sale, register_payment,
                capture_payment, create_pos_task, cancel_pos_task, notify_store, book_shipment, cancel_shipment, track_shipment,
                post_return_code, save_return, settle_return_refund, refund_payment, return_bonus, restock_return,
                post_return, notify_customer]
