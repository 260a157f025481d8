"""Stand-in activities registered under the real activity names, so a workflow test can isolate
the workflow (samples-python style). They keep just enough state to check what the workflow did."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.order import OrderLine, OrderSnapshot, PaymentState
from contracts.steps import (
    BookedShipment,
    CarrierRuleRow,
    CarrierRulesRequest,
    CaptureRequest,
    CustomerNotice,
    ErpMovement,
    ErpOrderExport,
    ErrorType,
    LoyaltyBegin,
    LoyaltyCommit,
    LoyaltyRef,
    PaymentRegistered,
    PaymentStatusResult,
    PosCancel,
    PosTaskRequest,
    PriceRequest,
    Priced,
    RegisterPayment,
    ReholdRequest,
    ReserveRequest,
    ReverseRequest,
    SettleRequest,
    ShipmentBookingRequest,
    StockViewRequest,
    StoreMessage,
    TrackingResult,
)
from contracts.stock import Availability, LocationInfo, StockView
from domain.promise import CarrierRule

MSK = LocationInfo(id="MSK-001", name="Москва, Тверская", kind="store", city="Москва", region="RU-MOW",
                   lat=55.76, lon=37.61, opens_at=None, closes_at=None)
WH = LocationInfo(id="WH-ONLINE", name="Склад интернет-магазина", kind="warehouse", city="Подольск",
                  region="RU-MOS", lat=55.43, lon=37.54, pickup=False)


@dataclass
class World:
    """In-memory stock, bank and loyalty, with a log of every call."""

    stock: dict[tuple[str, str], int] = field(default_factory=dict)  # available per (sku, location)
    held: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # key -> (sku, loc, qty)
    consumed: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    payment_status: PaymentState = PaymentState.registered  # what the bank answers when asked
    captured: list[int] = field(default_factory=list)
    reversed: int = 0
    loyalty: str = "none"  # none | held | committed | rolled_back
    activated: int = 0
    snapshots: list[OrderSnapshot] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    pos_tasks: list[PosTaskRequest] = field(default_factory=list)
    store_messages: list[StoreMessage] = field(default_factory=list)
    bookings: list[ShipmentBookingRequest] = field(default_factory=list)
    cancelled_bookings: int = 0
    bonus_balance_spent: int = 0
    declined: list[str] = field(default_factory=list)  # payment registrations closed (decline.do)
    erp_orders: list[ErpOrderExport] = field(default_factory=list)  # customer orders updated in the ERP
    carrier_rules: list[CarrierRule] = field(default_factory=list)  # none: the default delivery price

    def units_held(self) -> int:
        return sum(q for _, _, q in self.held.values())

    def activities(self) -> list[Callable[..., Any]]:
        w = self

        @activity.defn(name="load_stock_view")
        async def load_stock_view(req: StockViewRequest) -> StockView:
            w.calls["load_stock_view"] += 1
            return StockView(locations=[MSK, WH], available=[
                Availability(sku=s, location_id=l, on_hand=q, reserved=0, safety_stock=0, available=q)
                for (s, l), q in sorted(w.stock.items()) if s in req.skus and q > 0])

        @activity.defn(name="reserve_stock")
        async def reserve_stock(req: ReserveRequest) -> None:
            w.calls["reserve_stock"] += 1
            new = [a for a in req.allocations if a.key not in w.held]
            for a in new:
                if w.stock.get((a.sku, a.location_id), 0) < a.qty:
                    raise ApplicationError("no stock", type=ErrorType.OUT_OF_STOCK, non_retryable=True)
            for a in new:
                w.stock[(a.sku, a.location_id)] -= a.qty
                w.held[a.key] = (a.sku, a.location_id, a.qty)

        @activity.defn(name="rehold_stock")
        async def rehold_stock(req: ReholdRequest) -> int:
            w.calls["rehold_stock"] += 1
            before = (dict(w.stock), dict(w.held))
            units = 0
            for key in req.release_keys:
                if key in w.held:
                    sku, loc, qty = w.held.pop(key)
                    w.stock[(sku, loc)] += qty
                    units += qty
            for a in req.allocations:
                if a.key in w.held:
                    continue
                if w.stock.get((a.sku, a.location_id), 0) < a.qty:
                    w.stock, w.held = before  # one transaction: nothing changes
                    raise ApplicationError(f"not enough stock of {a.sku} at {a.location_id} for {a.qty}",
                                           type=ErrorType.OUT_OF_STOCK, non_retryable=True)
                w.stock[(a.sku, a.location_id)] -= a.qty
                w.held[a.key] = (a.sku, a.location_id, a.qty)
            return units

        @activity.defn(name="release_stock")
        async def release_stock(req: SettleRequest) -> int:
            w.calls["release_stock"] += 1
            units = 0
            for key in list(req.keys or w.held):
                if key in w.held:
                    sku, loc, qty = w.held.pop(key)
                    w.stock[(sku, loc)] += qty
                    units += qty
            return units

        @activity.defn(name="consume_stock")
        async def consume_stock(req: SettleRequest) -> int:
            w.calls["consume_stock"] += 1
            units = 0
            for key in list(req.keys or w.held):
                if key in w.held:
                    w.consumed[key] = w.held.pop(key)
                    units += w.consumed[key][2]
            return units

        @activity.defn(name="load_carrier_rules")
        async def load_carrier_rules(req: CarrierRulesRequest) -> list[CarrierRuleRow]:
            return [CarrierRuleRow(carrier=r.carrier, method=r.method.value, region=r.region, price=r.price,
                                   days_min=r.days_min, days_max=r.days_max, cutoff=r.cutoff.strftime("%H:%M"))
                    for r in w.carrier_rules if r.region == req.region]

        @activity.defn(name="save_order")
        async def save_order(s: OrderSnapshot) -> None:
            w.snapshots.append(s)

        def priced(lines: Any, bonus: int) -> Priced:
            out = [OrderLine(pos_id=l.pos_id, sku=l.sku, name=l.name, qty=l.qty, unit_price=l.unit_price) for l in lines]
            sub = sum(l.gross for l in out)
            bonus = min(bonus, sub * 30 // 100)
            if out and bonus:
                first = out[0]
                out[0] = OrderLine(**{**first.__dict__, "bonus": bonus})
            return Priced(lines=out, subtotal=sub, discount=0, bonus_spent=bonus, bonus_to_accrue=(sub - bonus) // 20)

        @activity.defn(name="price_cart")
        async def price_cart(req: PriceRequest) -> Priced:
            w.calls["price_cart"] += 1
            return priced(req.lines, req.bonus_to_spend)

        @activity.defn(name="begin_loyalty")
        async def begin_loyalty(req: LoyaltyBegin) -> Priced:
            w.calls["begin_loyalty"] += 1
            w.loyalty = "held"
            p = priced(req.lines, req.bonus_to_spend)
            w.bonus_balance_spent = p.bonus_spent
            return p

        @activity.defn(name="commit_loyalty")
        async def commit_loyalty(req: LoyaltyCommit) -> int:
            w.calls["commit_loyalty"] += 1
            w.loyalty = "committed"
            return 100

        @activity.defn(name="rollback_loyalty")
        async def rollback_loyalty(req: LoyaltyRef) -> None:
            w.calls["rollback_loyalty"] += 1
            w.loyalty = "rolled_back"

        @activity.defn(name="activate_bonus")
        async def activate_bonus(req: LoyaltyRef) -> int:
            w.calls["activate_bonus"] += 1
            w.activated += 100
            return 100

        @activity.defn(name="register_payment")
        async def register_payment(req: RegisterPayment) -> PaymentRegistered:
            w.calls["register_payment"] += 1
            assert sum(l.amount for l in req.lines) + req.delivery_amount == req.amount
            return PaymentRegistered(md_order="md-1", form_url="http://bank/pay?mdOrder=md-1")

        @activity.defn(name="payment_status")
        async def payment_status(md_order: str) -> PaymentStatusResult:
            w.calls["payment_status"] += 1
            return PaymentStatusResult(md_order=md_order, state=w.payment_status)

        @activity.defn(name="capture_payment")
        async def capture_payment(req: CaptureRequest) -> None:
            w.calls["capture_payment"] += 1
            w.captured.append(req.amount)

        @activity.defn(name="reverse_payment")
        async def reverse_payment(req: ReverseRequest) -> None:
            w.calls["reverse_payment"] += 1
            w.reversed += 1

        @activity.defn(name="decline_payment")
        async def decline_payment(md_order: str) -> None:
            w.calls["decline_payment"] += 1
            if w.payment_status in (PaymentState.held, PaymentState.captured):
                raise ApplicationError("already paid", type=ErrorType.ALREADY_PAID, non_retryable=True)
            w.declined.append(md_order)

        @activity.defn(name="export_order")
        async def export_order(req: ErpOrderExport) -> None:
            w.calls["export_order"] += 1

        @activity.defn(name="update_erp_order")
        async def update_erp_order(req: ErpOrderExport) -> None:
            w.calls["update_erp_order"] += 1
            w.erp_orders.append(req)

        @activity.defn(name="post_sale")
        async def post_sale(req: ErpMovement) -> None:
            w.calls["post_sale"] += 1

        @activity.defn(name="notify_customer")
        async def notify_customer(n: CustomerNotice) -> None:
            w.notices.append(n.event)

        @activity.defn(name="create_pos_task")
        async def create_pos_task(req: PosTaskRequest) -> None:
            w.pos_tasks.append(req)

        @activity.defn(name="cancel_pos_task")
        async def cancel_pos_task(req: PosCancel) -> None:
            w.calls["cancel_pos_task"] += 1

        @activity.defn(name="notify_store")
        async def notify_store(msg: StoreMessage) -> None:
            w.store_messages.append(msg)

        @activity.defn(name="book_shipment")
        async def book_shipment(req: ShipmentBookingRequest) -> BookedShipment:
            w.bookings.append(req)
            return BookedShipment(carrier=req.carrier, external_id=f"uuid-{req.shipment_id}", tracking_number="1000")

        @activity.defn(name="cancel_shipment")
        async def cancel_shipment(b: BookedShipment) -> None:
            w.cancelled_bookings += 1

        @activity.defn(name="track_shipment")
        async def track_shipment(b: BookedShipment) -> TrackingResult:
            return TrackingResult(status="created")

        return [load_carrier_rules, load_stock_view, reserve_stock, rehold_stock, release_stock, consume_stock, save_order, price_cart, begin_loyalty,
                commit_loyalty, rollback_loyalty, activate_bonus, register_payment, payment_status, capture_payment,
                reverse_payment, decline_payment, export_order, update_erp_order, post_sale, notify_customer, create_pos_task, cancel_pos_task,
                notify_store, book_shipment, cancel_shipment, track_shipment]
