"""Everything an order workflow knows, in one object it owns: :class:`OrderState`.

The order's helpers (placement, payments, edits, substitutions, shipping, pickup, settlement, the
saga) each get this state and the few shared :class:`Ports` they need, explicitly; none of them
keeps order data of its own. Deterministic data only (no handles, no futures), so the whole state
is what ``snapshot`` shows and what a reader of the workflow can reason about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Awaitable, Callable, Protocol

from temporalio import workflow

from workflows.common import Wait

with workflow.unsafe.imports_passed_through():
    from contracts.order import (
        CancelRequest,
        CatalogLine,
        Delivery,
        DeliveryMethod,
        OrderInput,
        OrderLine,
        OrderSnapshot,
        OrderStatus,
        PaymentEvent,
        PaymentMethod,
        PaymentState,
        PaymentView,
        Placement,
        ShipmentState,
        ShipmentView,
        TimelineEntry,
        Totals,
    )
    from contracts.recovery import ParkedStep
    from contracts.stock import LocationInfo

#: shipments an operator's edit may still change (the store has not finished assembling)
NOT_STARTED = (ShipmentState.planned, ShipmentState.assembling)
#: a shipment that has left its location with a carrier (a transfer to the pickup store aside)
LEFT = (ShipmentState.handed_over, ShipmentState.in_transit, ShipmentState.delivered)


class PlacementRefused(Exception):
    """Placement cannot go on (out of stock, loyalty or the bank refused): ``code`` is the answer's."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


class OrderStopped(Exception):
    """The order ends before completion: ``reason`` for the timeline, ``notice`` the customer's message."""

    def __init__(self, reason: str, notice: str) -> None:
        super().__init__(reason)
        self.reason, self.notice = reason, notice


def stop_if_cancelled(state: OrderState, before: str = "") -> None:
    """Raise :class:`OrderStopped` when a cancel has been taken (``before``: e.g. " до оплаты")."""
    if state.cancel is not None:
        raise OrderStopped(f"Заказ отменён{before}: {state.cancel.reason}", "cancelled")


class Purpose(StrEnum):
    order = "order"  # the order's total (a new link after an unpaid edit is again an ``order`` payment)
    difference = "difference"  # a paid order made dearer (substitute, edit): the bank cannot raise a hold


@dataclass
class Payment:
    """One registration at the bank (``registerPreAuth.do``) and what became of it."""

    md_order: str
    order_number: str  # our idempotency key at the bank: ``order-<id>``, ``order-<id>~e<n>``, ``order-<id>~<n>``
    amount: int
    form_url: str
    purpose: Purpose = Purpose.order
    n: int = 1  # a payment of the difference: its number (keys ``~<n>:capture`` / ``~<n>:reverse``)
    state: PaymentState = PaymentState.registered
    held: int = 0
    captured: int = 0
    answer: PaymentEvent | None = None  # the bank's first answer: approved (success or not) or timed out
    closed_by_edit: bool = False  # an operator's edit closed the link (``decline.do``): callbacks are ignored
    late: bool = False  # approved after the order was cancelled: reversed at once


class UndoKind(StrEnum):
    release_stock = "release stock"
    rollback_loyalty = "roll back loyalty"
    close_payment_link = "close the payment link"
    reverse_payment = "reverse the payment hold"
    close_difference_link = "close the link for the difference"
    reverse_difference = "reverse the extra payment"


@dataclass(frozen=True)
class Undo:
    """A step done that a cancellation undoes (in reverse order): what to undo, and for a payment which."""

    kind: UndoKind
    md_order: str | None = None


@dataclass
class OrderState:
    inp: OrderInput
    created_at: datetime
    status: OrderStatus = OrderStatus.pending
    status_before_hold: OrderStatus | None = None
    catalog: list[CatalogLine] = field(default_factory=list)  # the lines as asked for (edits change them)
    lines: list[OrderLine] = field(default_factory=list)  # the same, priced by loyalty
    totals: Totals = field(default_factory=Totals)
    bonus_to_accrue: int = 0
    loyalty_gen: int = 0  # the loyalty transaction is begun again after each re-price
    payments: list[Payment] = field(default_factory=list)
    paid_at_till: int | None = None  # click & collect paid at the store's till
    payment_deadline: datetime | None = None
    placement: Placement | None = None
    shipments: dict[str, ShipmentView] = field(default_factory=dict)
    allocation_keys: dict[str, list[str]] = field(default_factory=dict)
    locations: dict[str, LocationInfo] = field(default_factory=dict)
    store_id: str | None = None
    children: list[str] = field(default_factory=list)  # shipment workflows started
    dropped: set[str] = field(default_factory=set)  # shipments a removal left empty: cancelled on purpose
    undo: list[Undo] = field(default_factory=list)
    cancel: CancelRequest | None = None
    parked: ParkedStep | None = None  # the order's own step waiting for an operator (workflows.recovery)
    parked_children: dict[str, ParkedStep] = field(default_factory=dict)
    erp_exported: bool = False
    edits: int = 0  # operators' edits taken
    revisions: int = 0  # substitutions applied
    extra: dict[str, object] = field(default_factory=dict)  # e.g. the pickup promise (workflows.pickup)
    kept: list[tuple[int, int]] | None = None  # (pos_id, qty) finally sold after a partial pickup
    timeline: list[TimelineEntry] = field(default_factory=list)
    version: int = 0

    @classmethod
    def begin(cls, inp: OrderInput) -> OrderState:
        return cls(inp=inp, created_at=inp.placed_at or workflow.now(), catalog=list(inp.lines))

    # ------------------------------------------------------------------ reading
    @property
    def wf_id(self) -> str:
        return workflow.info().workflow_id

    @property
    def order_id(self) -> str:
        return self.inp.order_id

    @property
    def delivery(self) -> Delivery:
        return self.inp.delivery

    @property
    def pickup(self) -> bool:
        return self.inp.delivery.method == DeliveryMethod.pickup

    @property
    def pay_on_pickup(self) -> bool:
        return self.inp.payment_method == PaymentMethod.on_pickup

    @property
    def loyalty_tx(self) -> str:
        return f"{self.wf_id}:tx{f':{self.loyalty_gen}' if self.loyalty_gen else ''}"

    @property
    def main_payment(self) -> Payment | None:
        """The payment for the order's total: the latest ``order`` registration."""
        return next((p for p in reversed(self.payments) if p.purpose == Purpose.order), None)

    @property
    def differences(self) -> list[Payment]:
        return [p for p in self.payments if p.purpose == Purpose.difference]

    @property
    def held(self) -> int:
        """What the bank holds for the order: the main hold and the paid differences."""
        return sum(p.held for p in self.payments if p.state == PaymentState.held)

    @property
    def payment_url(self) -> str | None:
        main = self.main_payment
        return main.form_url if main is not None else None

    @property
    def live_shipments(self) -> dict[str, ShipmentView]:
        return {sid: s for sid, s in self.shipments.items() if sid not in self.dropped}

    def payment(self, md_order: str) -> Payment | None:
        return next((p for p in self.payments if p.md_order == md_order), None)

    def handed_over(self) -> list[str]:
        """Shipments a carrier has taken to the customer (a cancel is no longer possible)."""
        return [s.shipment_id for s in self.shipments.values() if not s.transfer_to and s.status in LEFT]

    # ------------------------------------------------------------------ writing
    def note(self, kind: str, message: str, **data: object) -> None:
        """An entry of the order's timeline (shown to people, in Russian)."""
        self.timeline.append(TimelineEntry(at=workflow.now(), kind=kind, message=message, data=dict(data)))

    def price(self, lines: list[OrderLine], subtotal: int, discount: int, bonus_spent: int, bonus_to_accrue: int,
              delivery: int | None = None) -> None:
        """The order's lines and totals after a (re-)price; delivery stays unless given."""
        self.lines, self.bonus_to_accrue = lines, bonus_to_accrue
        delivery = self.totals.delivery if delivery is None else delivery
        goods = subtotal - discount - bonus_spent
        self.totals = Totals(subtotal=subtotal, discount=discount, bonus_spent=bonus_spent, delivery=delivery,
                             total=goods + delivery, currency=self.inp.currency)

    def enter_hold(self, parked: ParkedStep) -> None:
        if self.status != OrderStatus.on_hold:
            self.status_before_hold = self.status
        self.status = OrderStatus.on_hold
        self.note("on_hold", f"Шаг {parked.step} не выполнен: {parked.message}. Заказ ждёт решения оператора",
                  step=parked.step, error=parked.message, error_type=parked.error_type,
                  workflow_id=parked.workflow_id)

    def leave_hold(self) -> None:
        if self.status == OrderStatus.on_hold and self.status_before_hold is not None:
            self.status = self.status_before_hold
        self.status_before_hold = None

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            order_id=self.order_id, status=self.status, channel=self.inp.channel, customer=self.inp.customer,
            delivery=self.inp.delivery, lines=list(self.lines), totals=self.totals, payment=self.payment_view(),
            shipments=list(self.shipments.values()), timeline=list(self.timeline), created_at=self.created_at,
            updated_at=workflow.now(), version=self.version, payment_url=self.payment_url, store_id=self.store_id,
            extra=dict(self.extra))

    def payment_view(self) -> PaymentView:
        if self.paid_at_till is not None:
            return PaymentView(state=PaymentState.captured, captured=self.paid_at_till)
        main = self.main_payment
        if main is None:
            return PaymentView()
        captured = sum(p.captured for p in self.payments)
        return PaymentView(state=main.state, md_order=main.md_order, held=main.held, captured=captured)


class Notify(Protocol):
    async def __call__(self, event: str, key_suffix: str = "", **params: object) -> None:
        """Tell the customer (SMS/e-mail template ``event``), once per key."""


@dataclass(frozen=True)
class Ports:
    """What the order's helpers share besides the state: the one way to wait (it applies outside
    events meanwhile), to save the projection and to tell the customer."""

    wait: Wait
    save: Callable[[], Awaitable[None]]
    notify: Notify


def carrier_for(method: DeliveryMethod, chosen: str | None) -> str | None:
    """The carrier of a shipment: the customer's choice, else the post for ``post``, none for a
    pickup at a store, CDEK otherwise."""
    if chosen:
        return chosen
    return {DeliveryMethod.post: "post", DeliveryMethod.pickup: None}.get(method, "cdek")
