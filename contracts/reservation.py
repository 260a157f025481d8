"""Shapes of a store reservation (click & reserve, and the at-store stage of click & collect).

Frozen dataclasses crossing the API / workflow / activity boundaries; every field added
later gets a default so running workflows keep decoding their history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from contracts.order import CancelRequest, Channel, Customer, LineRequest, OrderLine, TimelineEntry
from contracts.stock import Allocation, LocationInfo

__all__ = [
    "ReservationStatus",
    "ReservationInput",
    "ReservationPlacement",
    "ReservationSnapshot",
    "ReservationResult",
    "SettleTaken",
    "SettleResult",
    "CancelRequest",
    "reservation_workflow_id",
]


class ReservationStatus(StrEnum):
    reserving = "reserving"  # holding the items in the ledger
    rejected = "rejected"  # the store lacks the items: nothing held
    setting_aside = "setting_aside"  # the store's POS has the task, staff are picking
    ready = "ready"  # on the pickup shelf, the customer was told until when
    collected = "collected"  # handed to the customer (all, or part: see ``taken``)
    expired = "expired"  # not collected in the window: released, put back
    cancelled = "cancelled"  # cancelled by the customer, the store or the order

    @property
    def is_final(self) -> bool:
        return self in (ReservationStatus.rejected, ReservationStatus.collected, ReservationStatus.expired,
                        ReservationStatus.cancelled)


@dataclass(frozen=True)
class ReservationInput:
    reservation_id: str
    store: LocationInfo
    customer: Customer
    lines: list[OrderLine]
    channel: Channel = Channel.web
    #: what the customer and the store see: the reservation id, or the order id for click & collect
    number: str = ""
    #: paid online (click & collect by card): the till takes no money at pickup
    prepaid: bool = False
    #: None: hold ``lines`` in the ledger under this workflow's id (click & reserve). Otherwise the
    #: order (this workflow id) already holds ``held`` at the store (click & collect).
    ledger_owner: str | None = None
    held: list[Allocation] = field(default_factory=list)
    #: click & collect: the order workflow to report to, and the shipment id to report on
    parent_id: str | None = None
    report_as: str | None = None
    ready_sla_minutes: int = 30
    pickup_window_days: int = 3
    #: a shorter hold than the store's window (a store tablet holding an item for an hour; tests)
    hold_minutes: float | None = None
    currency: str = "RUB"
    created_at: datetime | None = None


@dataclass(frozen=True)
class ReservationPlacement:
    """The synchronous answer to ``POST /v1/reservations`` (the ``placement`` update)."""

    reservation_id: str
    status: ReservationStatus
    amount: int = 0
    currency: str = "RUB"
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class ReservationSnapshot:
    """What ``GET /v1/reservations/{id}`` shows; written whole with a version."""

    reservation_id: str
    number: str
    status: ReservationStatus
    channel: Channel
    store_id: str
    customer: Customer
    lines: list[OrderLine]
    amount: int
    currency: str
    created_at: datetime
    updated_at: datetime
    version: int
    timeline: list[TimelineEntry] = field(default_factory=list)
    order_id: str | None = None
    prepaid: bool = False
    ready_at: datetime | None = None
    until: datetime | None = None
    taken: list[LineRequest] = field(default_factory=list)
    amount_taken: int = 0
    paid_amount: int | None = None


@dataclass(frozen=True)
class ReservationResult:
    status: ReservationStatus
    taken: list[LineRequest] = field(default_factory=list)
    amount_taken: int = 0
    paid_amount: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class SettleTaken:
    """At pickup: consume ``taken`` units of each held key (0 = release it), atomically and once."""

    owner: str
    taken: list[tuple[str, int]]  # (reservation key, units handed over)


@dataclass(frozen=True)
class SettleResult:
    consumed: int
    released: int


def reservation_workflow_id(reservation_id: str) -> str:
    return f"reservation-{reservation_id}"
