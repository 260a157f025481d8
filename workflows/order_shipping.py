"""Step 5 of a shipped order: one ``FulfillmentWorkflow`` per shipment (assemble at its location,
courier, tracking), what they report back, and what the order tells them (cancel, a new address,
an operator's retry).

The children report with ``shipment_update``; the order applies each report as an inbox event
(:meth:`Shipping.on_update`): the shipment's view, the order's status (shipped, delivered; ready
for pickup), the timeline, the projection and the customer's messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from contracts.order import (
        Address,
        CancelRequest,
        Customer,
        Delivery,
        OrderStatus,
        ShipmentState,
        ShipmentUpdate,
        line_portion,
    )
    from contracts.recovery import RetryRequest
    from contracts.fulfillment import FulfillmentInput, FulfillmentResult
    from workflows.fulfillment import FulfillmentWorkflow
    from workflows.reservation import ReservationWorkflow

from workflows import search
from workflows.common import failure_message, signal
from workflows.order_state import OrderState, OrderStopped, Ports, stop_if_cancelled

ShipmentHandle = workflow.ChildWorkflowHandle[FulfillmentWorkflow, FulfillmentResult]


class Shipping:
    def __init__(self, state: OrderState, ports: Ports) -> None:
        self.state, self.ports = state, ports
        self.stage_id: str | None = None  # the at-store pickup (a ReservationWorkflow child), once started

    async def begin_fulfilment(self) -> None:
        """The order is paid and in the ERP: it goes to its locations (unless cancelled meanwhile)."""
        stop_if_cancelled(self.state)
        self.state.status = OrderStatus.assembling
        await self.ports.save()

    async def fulfil(self) -> None:
        """Step 5: every shipment assembled, handed over and delivered. Raises :class:`OrderStopped`
        on a cancel before hand-over, or when a shipment fails and an operator cancels the order."""
        st = self.state
        await self.begin_fulfilment()
        handles = [await self.start(sid, st.inp.delivery, st.inp.customer, shipment.carrier or "cdek")
                   for sid, shipment in st.shipments.items()]
        results = await self.follow(handles, failed="fulfilment_failed")
        if st.cancel is not None and not all(r.delivered for r in results):
            stop_if_cancelled(st)
        if not results or not all(r.delivered or r.shipment_id in st.dropped for r in results):
            await self.on_hold("Не все отгрузки доставлены: заказ ждёт решения оператора")

    async def start(self, sid: str, delivery: Delivery, customer: Customer, carrier: str) -> ShipmentHandle:
        """Start the shipment ``sid`` as a child: its lines priced from the order, its holds."""
        st, inp = self.state, self.state.inp
        shipment = st.shipments[sid]
        loc = st.locations[shipment.location_id]
        by_sku = {line.sku: line for line in st.lines}
        child = FulfillmentInput(
            order_id=inp.order_id, shipment_id=sid, n=list(st.shipments).index(sid) + 1, location=loc,
            lines=[line_portion(by_sku[line.sku], line.qty) for line in shipment.lines],
            reservation_keys=st.allocation_keys[sid], delivery=delivery, customer=customer, carrier=carrier,
            parent_id=st.wf_id, assembly_sla_minutes=loc.assembly_sla_minutes or inp.assembly_sla_minutes,
            post_poll_minutes=inp.post_poll_minutes)
        handle = await workflow.start_child_workflow(
            FulfillmentWorkflow.run, child, id=sid, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search.for_child("assembling", shipment.location_id))
        st.children.append(sid)
        return handle

    async def follow(self, handles: list[Any], *, failed: str, what: str = "Отгрузка не выполнена",
                     ) -> list[FulfillmentResult]:
        """Wait for the children to end, applying what happens meanwhile; their results ([] when one failed)."""
        everything = asyncio.gather(*handles)
        await self.ports.wait(everything.done)
        try:
            return list(everything.result())
        except ChildWorkflowError as err:
            self.state.note(failed, f"{what}: {failure_message(err)}")
            return []

    async def on_hold(self, why: str) -> NoReturn:
        """Something a person must decide: the order waits for an operator's cancel, then stops."""
        st = self.state
        st.status = OrderStatus.on_hold
        st.note("on_hold", why)
        await self.ports.save()
        await self.ports.wait(lambda: st.cancel is not None)
        assert st.cancel is not None  # the wait has no timeout
        raise OrderStopped(f"Заказ отменён: {st.cancel.reason}", "cancelled")

    # ------------------------------------------------------------------ what the shipments report
    async def on_update(self, update: ShipmentUpdate) -> None:
        st = self.state
        current = st.shipments.get(update.shipment_id)
        if current is None:
            return
        st.shipments[update.shipment_id] = dataclasses.replace(
            current, status=update.status, carrier=update.carrier or current.carrier,
            tracking_number=update.tracking_number or current.tracking_number,
            external_id=update.external_id or current.external_id,
            delivered_at=update.at if update.status == ShipmentState.delivered else current.delivered_at,
            late=bool(update.data.get("late", current.late)))
        moved_to = update.data.get("location_id")
        if isinstance(moved_to, str) and moved_to:  # moved to another location (escalation, shortage)
            st.shipments[update.shipment_id] = dataclasses.replace(st.shipments[update.shipment_id],
                                                                   location_id=moved_to)
        st.note(f"shipment_{update.status.value}", update.message, shipment_id=update.shipment_id, **update.data)
        notice: tuple[str, dict[str, object]] | None = None
        if not current.transfer_to and not st.status.is_final:  # a transfer: the customer waits for "ready"
            notice = self._order_status(update)
        await self.ports.save()
        if notice is not None:
            event, params = notice
            await self.ports.notify(event, key_suffix=str(params.pop("shipment", "")), **params)

    def _order_status(self, update: ShipmentUpdate) -> tuple[str, dict[str, object]] | None:
        st = self.state
        states = {s.status for s in st.live_shipments.values()}
        if states == {ShipmentState.delivered}:
            st.status = OrderStatus.delivered
            return ("collected" if st.pickup else "delivered"), {}
        if st.pickup and update.status == ShipmentState.ready_for_pickup:
            st.status = OrderStatus.ready_for_pickup
        elif update.status == ShipmentState.handed_over:
            st.status = OrderStatus.shipped
            return "shipped", {"carrier": update.carrier, "tracking": update.tracking_number,
                               "shipment": update.shipment_id}
        return None

    # ------------------------------------------------------------------ what the order tells them
    async def forward_cancel(self, req: CancelRequest) -> None:
        for sid in self.state.children:
            await signal(sid, FulfillmentWorkflow.cancel, req)
        if self.stage_id is not None:
            await signal(self.stage_id, ReservationWorkflow.withdraw, req)

    async def forward_address(self, address: Address) -> None:
        for sid in self.state.children:
            await signal(sid, FulfillmentWorkflow.change_address, address)

    async def forward_retry(self, req: RetryRequest) -> list[str]:
        """Resume the shipments' parked steps; what was resumed (``<workflow id>:<step>``)."""
        st = self.state
        resumed = []
        for wf_id, parked in list(st.parked_children.items()):
            await signal(wf_id, FulfillmentWorkflow.retry, req)
            resumed.append(f"{wf_id}:{parked.step}")
            st.note("retry_requested", f"Оператор {req.by} повторяет шаг {parked.step} ({wf_id})"
                    f"{': ' + req.note if req.note else ''}", by=req.by, step=parked.step, shipment_id=wf_id)
        st.parked_children.clear()
        return resumed
