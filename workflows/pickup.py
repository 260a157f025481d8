"""Click & collect: the part of ``OrderWorkflow`` after payment for ``delivery.method == "pickup"``.

Mixed into ``OrderWorkflow`` (plain methods, no handlers): the order keeps its saga, its
projection and its customer messages; this module decides the pickup stage.

1. at placement, promise a ready date: the store's set-aside time, after the slowest
   transfer when the store lacks some items (``domain.pickup.ready_by``);
2. items the store lacks travel from other locations as transfer shipments: one
   ``FulfillmentWorkflow`` each, shipping to the store (tracked, with their own timeline
   entries; the customer is not told "shipped" for a transfer);
3. then the at-store stage is a ``ReservationWorkflow`` child (``reservation-{order id}``) with
   the goods the order already holds at the store: set aside, "ready until", reminder,
   pickup or expiry; it reports onto the order's shipment with ``shipment_update``;
4. after the pickup the bill follows what was taken (partial pickup): the order captures
   that amount (card) or records what the till took (on_pickup), and commits loyalty for the
   lines kept. Expiry or cancel ends in the order's saga (release, reverse, roll back).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from domain.money import format_money
    from contracts.order import (
        Address,
        Customer,
        Delivery,
        DeliveryMethod,
        LineRequest,
        OrderStatus,
        PaymentMethod,
        PaymentState,
        PaymentView,
        ShipmentView,
        Totals,
        line_portion,
    )
    from domain.pickup import local_text, ready_by, taken_portions
    from contracts.reservation import ReservationInput, ReservationResult, ReservationStatus, reservation_workflow_id
    from contracts.stock import Allocation, LocationInfo
    from workflows.fulfillment import FulfillmentInput, FulfillmentResult, FulfillmentWorkflow
    from workflows.reservation import ReservationWorkflow

from workflows import search

TRANSFER_CARRIER = "cdek"


class PickupStage:
    """Click & collect steps of the order (``self`` is the ``OrderWorkflow``)."""

    _inp: Any
    _locations: dict[str, LocationInfo]
    _shipments: dict[str, ShipmentView]
    _allocation_keys: dict[str, list[str]]

    @property
    def _pay_on_pickup(self) -> bool:
        inp = self._inp
        return inp is not None and inp.payment_method == PaymentMethod.on_pickup

    # at placement ---------------------------------------------------------------------------------
    def _promise_pickup(self: Any) -> None:
        inp = self._require_input()
        store = self._locations.get(inp.delivery.store_id or "")
        if store is None:
            return
        transfers = {sid: s for sid, s in self._shipments.items() if s.transfer_to}
        sources = sorted({s.location_id for s in transfers.values()})
        ready = ready_by(workflow.now(), set_aside_minutes=store.assembly_sla_minutes or inp.assembly_sla_minutes,
                         transfers_from=[self._locations[s] for s in sources if s in self._locations], store=store)
        when = local_text(ready, store.region)
        if sources:
            note = f"часть товара едет в магазин {store.id} из {', '.join(sources)}: будет готов к выдаче до {when}"
            for sid, s in transfers.items():
                self._shipments[sid] = dataclasses.replace(s, promised_to=ready.date().isoformat())
        else:
            note = f"всё есть в магазине {store.id}: будет готов к выдаче до {when}"
        self._extra["pickup"] = {"store_id": store.id, "ready_by": ready.isoformat(), "transfer_from": sources,
                                 "note": note}
        self._event("promised", f"Самовывоз: {note}", ready_by=ready.isoformat())

    # after payment ----------------------------------------------------------------------------------
    async def _collect_at_store(self: Any) -> bool:
        inp = self._require_input()
        store = self._locations[inp.delivery.store_id]
        stage_id = reservation_workflow_id(inp.order_id)
        at_store = next((sid for sid, s in self._shipments.items() if not s.transfer_to), None)
        if at_store is None:  # everything travels: the pickup itself is the order's last "shipment"
            self._shipments[stage_id] = ShipmentView(
                shipment_id=stage_id, location_id=store.id, reason=f"выдача в магазине {store.id}",
                lines=[LineRequest(sku=l.sku, qty=l.qty) for l in self._lines])
        transfers = {sid: s for sid, s in self._shipments.items() if s.transfer_to}
        if transfers and not await self._transfer_to_store(transfers, store):
            return False
        if self._cancel is not None:
            await self._cancel_order(f"Заказ отменён: {self._cancel.reason}", "cancelled")
            return False

        held = []
        if at_store is not None:
            lines = self._shipments[at_store].lines
            held = [Allocation(key=k, sku=l.sku, location_id=store.id, qty=l.qty)
                    for k, l in zip(self._allocation_keys.get(at_store, []), lines)]
        stage = ReservationInput(
            reservation_id=inp.order_id, store=store, customer=inp.customer, lines=self._lines, channel=inp.channel,
            number=inp.order_id, prepaid=not self._pay_on_pickup, ledger_owner=self._owner, held=held,
            parent_id=workflow.info().workflow_id, report_as=at_store or stage_id,
            ready_sla_minutes=store.assembly_sla_minutes or inp.assembly_sla_minutes,
            pickup_window_days=store.pickup_window_days, currency=inp.currency, created_at=workflow.now())
        handle = await workflow.start_child_workflow(ReservationWorkflow.run, stage, id=stage_id,
                                                     id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                                                     search_attributes=search.for_child("setting_aside", store.id))
        done = asyncio.gather(handle)
        forwarded = False
        while not done.done():
            await workflow.wait_condition(
                lambda: done.done() or self._dirty or (self._cancel is not None and not forwarded))
            if self._cancel is not None and not forwarded and not done.done():
                forwarded = True
                await handle.signal(ReservationWorkflow.withdraw, self._cancel)
            await self._flush()
        result: ReservationResult = done.result()[0]
        await self._flush()
        if result.status == ReservationStatus.collected:
            self._bill_what_was_taken(result)
            return True
        if result.status == ReservationStatus.expired:
            await self._cancel_order(f"Заказ не забрали из магазина {store.id} вовремя: резерв снят", "expired")
        else:
            reason = self._cancel.reason if self._cancel is not None else result.reason
            await self._cancel_order(f"Заказ отменён: {reason}", "cancelled")
        return False

    async def _transfer_to_store(self: Any, transfers: dict[str, ShipmentView], store: LocationInfo) -> bool:
        """One FulfillmentWorkflow per transfer, shipping to the store; True once all arrived."""
        inp = self._require_input()
        by_sku = {l.sku: l for l in self._lines}
        to_store = Delivery(method=DeliveryMethod.courier, carrier=TRANSFER_CARRIER, address=Address(
            region=store.region, city=store.city, line=f"{store.name} ({store.id}), для заказа {inp.order_id}",
            postcode=""))
        recipient = Customer(phone=inp.customer.phone, name=f"Магазин {store.id} для {inp.customer.name}")
        handles = []
        for n, (sid, shipment) in enumerate(self._shipments.items(), start=1):
            if sid not in transfers:
                continue
            loc = self._locations[shipment.location_id]
            child = FulfillmentInput(
                order_id=inp.order_id, shipment_id=sid, n=n, location=loc,
                lines=[line_portion(by_sku[l.sku], l.qty) for l in shipment.lines],
                reservation_keys=self._allocation_keys[sid], delivery=to_store, customer=recipient,
                carrier=TRANSFER_CARRIER, parent_id=workflow.info().workflow_id,
                assembly_sla_minutes=loc.assembly_sla_minutes or inp.assembly_sla_minutes)
            self._event("transfer", f"Перемещение {shipment.location_id} → {store.id}: "
                                    f"{', '.join(f'{l.sku} × {l.qty}' for l in shipment.lines)}", shipment_id=sid)
            handles.append(await workflow.start_child_workflow(
                FulfillmentWorkflow.run, child, id=sid, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=search.for_child("assembling", shipment.location_id)))
        self._children = handles
        everything = asyncio.gather(*handles)
        while not everything.done():
            await workflow.wait_condition(lambda: everything.done() or self._dirty)
            await self._flush()
        results: list[FulfillmentResult] = []
        try:
            results = list(everything.result())
        except ChildWorkflowError as err:
            self._event("transfer_failed", f"Перемещение не выполнено: {err}")
        await self._flush()
        if results and all(r.delivered for r in results):
            self._event("transferred", f"Весь товар заказа в магазине {store.id}")
            return True
        if self._cancel is not None:
            await self._cancel_order(f"Заказ отменён: {self._cancel.reason}", "cancelled")
            return False
        self._status = OrderStatus.on_hold
        self._event("on_hold", "Перемещение в магазин не доставлено: заказ ждёт решения оператора")
        await self._save()
        await workflow.wait_condition(lambda: self._cancel is not None)
        await self._cancel_order(f"Заказ отменён: {self._cancel.reason}", "cancelled")
        return False

    def _bill_what_was_taken(self: Any, result: ReservationResult) -> None:
        inp = self._require_input()
        took = taken_portions(self._lines, result.taken)
        if sum(l.qty for l in took) < sum(l.qty for l in self._lines):
            self._kept = [(l.pos_id, l.qty) for l in took]
            self._event("partially_collected", "Клиент забрал часть заказа: "
                                               f"{', '.join(f'{l.sku} × {l.qty}' for l in took)}; счёт пересчитан")
        self._lines = took
        goods = sum(l.amount for l in took)
        self._totals = Totals(subtotal=sum(l.gross for l in took), discount=sum(l.discount for l in took),
                              bonus_spent=sum(l.bonus for l in took), delivery=self._totals.delivery,
                              total=goods + self._totals.delivery, currency=inp.currency)
        if self._pay_on_pickup:
            paid = result.paid_amount or 0
            self._payment = PaymentView(state=PaymentState.captured, captured=paid)
            self._event("paid_at_till", f"Оплачено на кассе магазина {format_money(paid, inp.currency)} "
                                        f"из {format_money(self._totals.total, inp.currency)}")

