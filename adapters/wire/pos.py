"""Shapes exchanged with the store POS (1C Retail-like), as Orkestr sees them.

Frozen dataclasses, no I/O. ``PosEvent`` is what a store POS posts to Orkestr's callback
URL (header ``X-Pos-Token``); FastAPI can take it as a request body and Temporal's default
converter can carry it into a workflow as a signal argument.

Store behaviour from ``shared/reference/erp-pos.md``: on an order the POS shows "assemble
this order" / "cancel this reserve"; staff report assembled, item missing, handed to the
customer, returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from domain.marking import parse_marking_code


class PosTaskKind(str, Enum):
    ASSEMBLE = "assemble"  # pick and pack for shipping or pickup
    SET_ASIDE = "set_aside"  # reserve on the shelf for the customer to come (click & reserve)
    PUT_BACK = "put_back"  # a reserve/assembly was released: return goods to the sales floor
    RECEIVE_RETURN = "receive_return"  # a customer return arrives at the store


class PosTaskStatus(str, Enum):
    NEW = "new"
    ASSEMBLED = "assembled"
    SHORTAGE = "shortage"
    READY = "ready"
    ISSUED = "issued"
    RECEIVED = "received"
    INSPECTED = "inspected"
    CANCELLED = "cancelled"


class PosEventKind(str, Enum):
    ASSEMBLED = "assembled"
    SHORTAGE = "shortage"
    READY = "ready"
    ISSUED = "issued"
    RECEIVED = "received"
    INSPECTED = "inspected"


@dataclass(frozen=True)
class PosLine:
    sku: str
    name: str
    qty: int


@dataclass(frozen=True)
class PosTask:
    """A task sent to a store; ``task_id`` is the idempotency key."""

    task_id: str
    kind: PosTaskKind
    order_id: str
    order_number: str
    lines: tuple[PosLine, ...]
    due_at: datetime | None
    callback_url: str
    customer_name: str = ""
    phone_masked: str = ""  # "+7 *** ***-12-34"
    note: str = ""


@dataclass(frozen=True)
class PosTaskState:
    """What the POS knows about a task (``GET .../tasks/{task_id}``)."""

    task_id: str
    location_id: str
    kind: PosTaskKind
    status: PosTaskStatus
    order_id: str
    order_number: str
    lines: tuple[PosLine, ...]
    cancel_reason: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class PosQty:
    sku: str
    qty: int
    #: the Честный ЗНАК code scanned for each marked unit (``assembled``); empty when the goods
    #: are not marked, and in events from before codes were scanned
    marking_codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.marking_codes) > self.qty:
            raise ValueError(f"{self.sku}: {len(self.marking_codes)} marking codes for {self.qty} units")
        for raw in self.marking_codes:
            parse_marking_code(raw)  # MarkingCodeError (a ValueError) names the part that is wrong


@dataclass(frozen=True)
class PosRejected:
    sku: str
    qty: int
    reason: str = ""


@dataclass(frozen=True)
class PosEvent:
    """An event a store reports to Orkestr. ``event_id`` is unique: deduplicate on it.

    * ``assembled`` / ``ready``: ``lines`` = what was picked (all lines of the task);
    * ``shortage``: ``sku`` and ``missing_qty``;
    * ``issued``: ``lines`` handed to the customer, ``paid_amount`` in minor units if the
      customer paid at the till (0/None when prepaid);
    * ``received``: ``lines`` received back; ``inspected``: ``accepted`` and ``rejected``.
    """

    event_id: str
    task_id: str
    location_id: str
    order_id: str
    event: PosEventKind
    occurred_at: datetime
    lines: tuple[PosQty, ...] | None = None
    sku: str | None = None
    missing_qty: int | None = None
    paid_amount: int | None = None
    accepted: tuple[PosQty, ...] | None = None
    rejected: tuple[PosRejected, ...] | None = None
