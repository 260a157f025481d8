"""Click & collect: the order's stage after payment for ``delivery.method == "pickup"``.

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
   lines kept. Expiry or cancel stops the order (its saga releases, reverses, rolls back).
"""

from __future__ import annotations

import asyncio
import dataclasses

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy

with workflow.unsafe.imports_passed_through():
    from contracts.order import Address, Customer, Delivery, DeliveryMethod, LineRequest, ShipmentView, Totals
    from contracts.reservation import ReservationInput, ReservationResult, ReservationStatus, reservation_workflow_id
    from contracts.stock import Allocation, LocationInfo
    from domain.money import format_money
    from domain.pickup import local_text, ready_by, taken_portions
    from workflows.reservation import ReservationWorkflow

from workflows import search
from workflows.order_shipping import Shipping
from workflows.order_state import OrderState, OrderStopped, Ports, stop_if_cancelled

TRANSFER_CARRIER = "cdek"


class PickupStage:
    def __init__(self, state: OrderState, ports: Ports, shipping: Shipping) -> None:
        self.state, self.ports, self.shipping = state, ports, shipping

    # at placement ---------------------------------------------------------------------------------
    def promise(self) -> None:
        """The promised ready date, on the order (``extra["pickup"]``), its transfers and its timeline."""
        st, inp = self.state, self.state.inp
        store = st.locations.get(inp.delivery.store_id or "")
        if store is None:
            return
        transfers = {sid: s for sid, s in st.shipments.items() if s.transfer_to}
        sources = sorted({s.location_id for s in transfers.values()})
        ready = ready_by(workflow.now(), set_aside_minutes=store.assembly_sla_minutes or inp.assembly_sla_minutes,
                         transfers_from=[st.locations[s] for s in sources if s in st.locations], store=store)
        when = local_text(ready, store.region)
        if sources:
            note = f"часть товара едет в магазин {store.id} из {', '.join(sources)}: будет готов к выдаче до {when}"
            for sid, s in transfers.items():
                st.shipments[sid] = dataclasses.replace(s, promised_to=ready.date().isoformat())
        else:
            note = f"всё есть в магазине {store.id}: будет готов к выдаче до {when}"
        st.extra["pickup"] = {"store_id": store.id, "ready_by": ready.isoformat(), "transfer_from": sources,
                              "note": note}
        st.note("promised", f"Самовывоз: {note}", ready_by=ready.isoformat())

    # after payment ----------------------------------------------------------------------------------
    async def collect(self) -> None:
        """Step 5 of a click & collect order: transfers, then set aside and picked up. Raises
        :class:`OrderStopped` when it expires uncollected or is cancelled."""
        st, inp = self.state, self.state.inp
        await self.shipping.begin_fulfilment()
        store = st.locations[inp.delivery.store_id or ""]
        stage_id = reservation_workflow_id(inp.order_id)
        at_store = next((sid for sid, s in st.shipments.items() if not s.transfer_to), None)
        if at_store is None:  # everything travels: the pickup itself is the order's last "shipment"
            st.shipments[stage_id] = ShipmentView(
                shipment_id=stage_id, location_id=store.id, reason=f"выдача в магазине {store.id}",
                lines=[LineRequest(sku=line.sku, qty=line.qty) for line in st.lines])
        transfers = [sid for sid, s in st.shipments.items() if s.transfer_to]
        if transfers:
            await self._transfer_to_store(transfers, store)
        stop_if_cancelled(st)
        result = await self._set_aside(store, stage_id, at_store)
        if result.status == ReservationStatus.collected:
            self._bill_what_was_taken(result)
            return
        if result.status == ReservationStatus.expired:
            raise OrderStopped(f"Заказ не забрали из магазина {store.id} вовремя: резерв снят", "expired")
        raise OrderStopped(f"Заказ отменён: {st.cancel.reason if st.cancel is not None else result.reason}",
                           "cancelled")

    async def _set_aside(self, store: LocationInfo, stage_id: str, at_store: str | None) -> ReservationResult:
        """The at-store stage as a ``ReservationWorkflow`` child, with the goods the order holds there."""
        st, inp = self.state, self.state.inp
        held = []
        if at_store is not None:
            held = [Allocation(key=k, sku=line.sku, location_id=store.id, qty=line.qty)
                    for k, line in zip(st.allocation_keys.get(at_store, []), st.shipments[at_store].lines)]
        stage = ReservationInput(
            reservation_id=inp.order_id, store=store, customer=inp.customer, lines=st.lines, channel=inp.channel,
            number=inp.order_id, prepaid=not st.pay_on_pickup, ledger_owner=st.wf_id, held=held,
            parent_id=st.wf_id, report_as=at_store or stage_id,
            ready_sla_minutes=store.assembly_sla_minutes or inp.assembly_sla_minutes,
            pickup_window_days=store.pickup_window_days, currency=inp.currency, created_at=workflow.now())
        handle = await workflow.start_child_workflow(ReservationWorkflow.run, stage, id=stage_id,
                                                     id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                                                     search_attributes=search.for_child("setting_aside", store.id))
        self.shipping.stage_id = stage_id
        done = asyncio.gather(handle)
        await self.ports.wait(done.done)
        result: ReservationResult = done.result()[0]
        return result

    async def _transfer_to_store(self, transfers: list[str], store: LocationInfo) -> None:
        """One FulfillmentWorkflow per transfer, shipping to the store; returns once all arrived."""
        st, inp = self.state, self.state.inp
        to_store = Delivery(method=DeliveryMethod.courier, carrier=TRANSFER_CARRIER, address=Address(
            region=store.region, city=store.city, line=f"{store.name} ({store.id}), для заказа {inp.order_id}",
            postcode=""))
        recipient = Customer(phone=inp.customer.phone, name=f"Магазин {store.id} для {inp.customer.name}")
        handles = []
        for sid in transfers:
            shipment = st.shipments[sid]
            st.note("transfer", f"Перемещение {shipment.location_id} → {store.id}: "
                                f"{', '.join(f'{line.sku} × {line.qty}' for line in shipment.lines)}", shipment_id=sid)
            handles.append(await self.shipping.start(sid, to_store, recipient, TRANSFER_CARRIER))
        results = await self.shipping.follow(handles, failed="transfer_failed", what="Перемещение не выполнено")
        if results and all(r.delivered for r in results):
            st.note("transferred", f"Весь товар заказа в магазине {store.id}")
            return
        stop_if_cancelled(st)
        await self.shipping.on_hold("Перемещение в магазин не доставлено: заказ ждёт решения оператора")

    def _bill_what_was_taken(self, result: ReservationResult) -> None:
        st, inp = self.state, self.state.inp
        took = taken_portions(st.lines, result.taken)
        if sum(line.qty for line in took) < sum(line.qty for line in st.lines):
            st.kept = [(line.pos_id, line.qty) for line in took]
            st.note("partially_collected", "Клиент забрал часть заказа: "
                                           f"{', '.join(f'{line.sku} × {line.qty}' for line in took)}; счёт пересчитан")
        st.lines = took
        goods = sum(line.amount for line in took)
        st.totals = Totals(subtotal=sum(line.gross for line in took), discount=sum(line.discount for line in took),
                           bonus_spent=sum(line.bonus for line in took), delivery=st.totals.delivery,
                           total=goods + st.totals.delivery, currency=inp.currency)
        if st.pay_on_pickup:
            paid = result.paid_amount or 0
            st.paid_at_till = paid
            st.note("paid_at_till", f"Оплачено на кассе магазина {format_money(paid, inp.currency)} "
                                    f"из {format_money(st.totals.total, inp.currency)}")
