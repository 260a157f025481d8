"""What a child workflow tells the workflow that started it: the signals every parent handles.

A shipment (``FulfillmentWorkflow``) or an at-store pickup (``ReservationWorkflow``) reports to its
parent through these handler references, so the name and the argument's type are checked where the
signal is sent. The parents implement them (``OrderWorkflow`` all of :class:`OrderParent`;
``ReturnWorkflow`` :class:`ShipmentParent`, for an exchange's replacement); each parent module
asserts it for the type checker (``_PARENT: type[OrderParent] = OrderWorkflow``) and
``tests/workflows/test_typed_calls.py`` checks the names at run time. These classes are never
workflows, nor bases of one: they only declare.
"""

from __future__ import annotations

from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from contracts.edits import EditAnswer
    from contracts.order import CancelRequest, ShipmentUpdate
    from contracts.recovery import ParkedStep
    from contracts.tasks import ShortageReport


class ShipmentParent(Protocol):
    """The parent of anything that moves goods for it."""

    @workflow.signal
    def shipment_update(self, update: ShipmentUpdate) -> None:
        """What happened to the shipment (assembling, booked, handed over, delivered, moved…)."""


class OrderParent(ShipmentParent, Protocol):
    """The parent order of a shipment: it decides what a shipment cannot decide alone."""

    @workflow.signal
    def shortage_reported(self, rep: ShortageReport) -> None:
        """The store lacks an item and no other location can take the shipment: ask the customer."""

    @workflow.signal
    def edit_answer(self, answer: EditAnswer) -> None:
        """The shipment stopped its store for an operator's edit (or says why it could not)."""

    @workflow.signal
    def step_parked(self, parked: ParkedStep) -> None:
        """A step of the shipment was refused and waits for an operator (the order goes on hold)."""

    @workflow.signal
    def cancel_order(self, req: CancelRequest) -> None:
        """An operator's answer on an escalation: cancel the whole order."""
