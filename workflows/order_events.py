"""The order's inbox: one typed event per outside message (``workflows/inbox.py`` has the rule).

Each signal or update handler of ``OrderWorkflow`` validates and puts one of these; the main loop
applies them one at a time (``OrderWorkflow._apply``). Updates carry the :class:`Reply` the caller
waits on. ``starts_process``: the event starts a process that waits itself (an edit, a shortage);
such events wait while another process runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.edits import EditAnswer, EditOutcome, OrderEdit
    from contracts.order import AddressChange, CancelRequest, Delivery, OrderStatus, PaymentEvent, ShipmentUpdate
    from contracts.recovery import ParkedStep, RetryOutcome, RetryRequest
    from contracts.tasks import ShortageReport

from workflows.inbox import Reply


@dataclass
class PaymentAnswered:
    """The bank's callback (checksum verified by the API) for one of the order's registrations."""

    event: PaymentEvent
    starts_process: ClassVar[bool] = False


@dataclass
class CancelAsked:
    """A customer, an operator (``cancel`` update: ``reply``) or a shipment's escalation (no reply)."""

    req: CancelRequest
    reply: Reply[OrderStatus] | None = None
    starts_process: ClassVar[bool] = False


@dataclass
class ShipmentChanged:
    """A shipment (or the at-store pickup) reports what happened to it."""

    update: ShipmentUpdate
    starts_process: ClassVar[bool] = False


@dataclass
class AddressChangeAsked:
    req: AddressChange
    reply: Reply[Delivery] = field(default_factory=Reply)
    starts_process: ClassVar[bool] = False


@dataclass
class RetryAsked:
    """An operator resumes what is on hold (the order's parked step and its shipments')."""

    req: RetryRequest
    reply: Reply[RetryOutcome] = field(default_factory=Reply)
    starts_process: ClassVar[bool] = False


@dataclass
class StepParked:
    """A shipment parked a refused step (the courier refused the booking): the order goes on hold."""

    parked: ParkedStep
    starts_process: ClassVar[bool] = False


@dataclass
class EditAnswered:
    """A shipment stopped its store for an edit, or says why it could not."""

    answer: EditAnswer
    starts_process: ClassVar[bool] = False


@dataclass
class EditAsked:
    """An operator changes the lines (``edit_lines`` update)."""

    edit: OrderEdit
    reply: Reply[EditOutcome] = field(default_factory=Reply)
    starts_process: ClassVar[bool] = True


@dataclass
class ShortageReported:
    """A store lacks an item and no other location can take the shipment: ask the customer."""

    rep: ShortageReport
    starts_process: ClassVar[bool] = True


OrderEvent = (PaymentAnswered | CancelAsked | ShipmentChanged | AddressChangeAsked | RetryAsked | StepParked
              | EditAnswered | EditAsked | ShortageReported)
