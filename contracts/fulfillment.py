"""A shipment's workflow (``FulfillmentWorkflow``, ``fulfillment-{order}-{n}``): its input and result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.order import CancelRequest, Customer, Delivery, OrderLine, StoreEvent
from contracts.steps import BookedShipment
from contracts.stock import LocationInfo


@dataclass(frozen=True)
class FulfillmentInput:
    order_id: str
    shipment_id: str
    n: int
    location: LocationInfo
    lines: list[OrderLine]
    reservation_keys: list[str]
    delivery: Delivery
    customer: Customer
    carrier: str
    parent_id: str
    assembly_sla_minutes: int = 120
    #: webhooks are the norm; polling catches a lost one (post: the only way)
    poll_hours: int = 6
    #: Russian Post has no webhooks: its tracking is polled this often (the order's ``post_poll_minutes``)
    post_poll_minutes: int = 240
    #: people and timers (workflows.escalation): one more interval after the SLA per step (0: half the SLA)
    escalate_after_minutes: int = 0
    auto_resource: bool = True  # move the shipment elsewhere on a shortage before asking a person
    attempt: int = 1  # the location attempt (the POS task id carries it from the 2nd on)
    tried: list[str] = field(default_factory=list)  # locations the shipment moved away from
    revision: int = 0
    #: store events of the previous run still to act on (an "assembled" pressed while the order decided)
    carried_events: list[StoreEvent] = field(default_factory=list)
    #: a cancel that arrived while the previous run was continuing as new
    cancel: CancelRequest | None = None


@dataclass(frozen=True)
class FulfillmentResult:
    shipment_id: str
    delivered: bool
    cancelled: bool = False
    delivered_at: datetime | None = None
    booking: BookedShipment | None = None
    notes: list[str] = field(default_factory=list)
