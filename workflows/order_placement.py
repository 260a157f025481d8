"""Steps 1-3 of an order: price the cart, choose where the goods ship from and hold them, hold the
bonus write-off and register the card payment. The storefront's answer (totals, payment link, or
why not) comes from here.

Sourcing happens once, here: the plan that holds the stock is the plan the order ships by, and the
plan the delivery is priced and promised from (the region's carrier rules applied to its shipments:
``domain.delivery.delivery_options``, the same computation as the ``/v1/delivery-options`` quote).
A method or carrier no rule offers for this cart refuses the order naming ``delivery.method`` /
``delivery.carrier``; a region without rules pays the default price and gets no promise.
"""

from __future__ import annotations

import dataclasses

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.delivery import DeliveryActivities
    from activities.stock import StockActivities
    from contracts.order import (
        DeliveryMethod,
        LineRequest,
        OrderStatus,
        Placement as PlacementAnswer,
        ShipmentView,
        fulfillment_workflow_id,
    )
    from contracts.steps import CarrierRulesRequest, ErrorType, ReserveRequest, StockViewRequest
    from contracts.stock import Allocation, LocationInfo, reservation_key
    from domain.delivery import delivery_options
    from domain.promise import CarrierRule
    from domain.money import format_money
    from domain.planning import delivery_price, plan_shipments
    from domain.sourcing import SourcingPlan

from workflows.common import STEP_FAILED, failure_message, failure_type, local
from workflows.order_payments import Payments
from workflows.order_pricing import Pricing
from workflows.order_state import OrderState, PlacementRefused, Ports, Undo, UndoKind, carrier_for
from workflows.pickup import PickupStage

#: methods a carrier delivers (a pickup at a store is the store's)
SHIPPED = (DeliveryMethod.courier, DeliveryMethod.pickup_point, DeliveryMethod.post)


class Placement:
    def __init__(self, state: OrderState, ports: Ports, pricing: Pricing, payments: Payments,
                 pickup: PickupStage) -> None:
        self.state, self.ports, self.pricing, self.payments, self.pickup = state, ports, pricing, payments, pickup

    async def place(self) -> None:
        """Price, source and hold, begin loyalty, register the payment; then answer the storefront.
        Raises :class:`PlacementRefused` (what was held is undone by the saga)."""
        st, inp = self.state, self.state.inp
        quoted = await self.pricing.quote(st.catalog)
        await self._source_and_hold()
        delivery = delivery_price(st.inp.delivery, max(len(st.shipments), 1))  # as chosen while sourcing
        try:
            priced = await self.pricing.begin(st.catalog, quoted)
        except STEP_FAILED as err:
            raise PlacementRefused("LoyaltyRefused", failure_message(err)) from err
        st.undo.append(Undo(UndoKind.rollback_loyalty))
        st.price(priced.lines, priced.subtotal, priced.discount, priced.bonus_spent, priced.bonus_to_accrue, delivery)
        st.note("priced", f"Сумма {format_money(st.totals.total, inp.currency)}: товары "
                          f"{format_money(priced.subtotal)}, скидка {format_money(priced.discount)}, "
                          f"бонусы {format_money(priced.bonus_spent)}, доставка {format_money(delivery)}")
        if st.pay_on_pickup:  # click & collect paid at the till: no online payment to register
            st.status = OrderStatus.assembling
            st.note("pay_on_pickup", f"Оплата при получении в магазине {inp.delivery.store_id}")
        else:
            await self._register_payment()
        st.placement = PlacementAnswer(order_id=inp.order_id, status=st.status, totals=st.totals,
                                       payment_url=st.payment_url)
        await self.ports.save()
        await self.ports.notify("accepted_on_pickup" if st.pay_on_pickup else "accepted",
                                total=format_money(st.totals.total, inp.currency), payment_url=st.payment_url,
                                store=st.store_id)

    async def _register_payment(self) -> None:
        st = self.state
        try:
            payment = await self.payments.register()
        except STEP_FAILED as err:
            raise PlacementRefused("PaymentRefused", failure_message(err)) from err
        st.status = OrderStatus.awaiting_payment
        st.note("payment_registered", f"Платёж зарегистрирован в банке (mdOrder {payment.md_order})",
                md_order=payment.md_order)

    async def _source_and_hold(self) -> None:
        """Source the lines over the network's stock and hold them; stock may move between the
        look-up and the hold (a sale at a till): then source once more. The view carries the rule set
        in force (weights, learned safety stock, today's load), and ``plan_shipments`` sources with
        ``domain.planning.sourcing_request``: the request the chain simulator builds too."""
        st, inp = self.state, self.state.inp
        for attempt in (1, 2):
            view = await local(StockActivities.load_stock_view,
                               StockViewRequest(skus=sorted({line.sku for line in inp.lines})))
            plan = plan_shipments(inp, view, now=workflow.now())
            if plan.unfulfilled:
                missing = ", ".join(f"{line.sku} × {line.qty}" for line in plan.unfulfilled)
                raise PlacementRefused(ErrorType.OUT_OF_STOCK, f"not enough stock for: {missing}")
            await self._choose_delivery(plan, view.locations)
            allocations = _allocations(st.wf_id, plan, attempt)
            try:
                await local(StockActivities.reserve_stock, ReserveRequest(owner=st.wf_id, allocations=allocations))
            except STEP_FAILED as err:
                if attempt == 1 and failure_type(err) == ErrorType.OUT_OF_STOCK:
                    st.note("resourcing", f"Остаток изменился ({failure_message(err)}), подбираем склад заново")
                    continue
                raise PlacementRefused(ErrorType.OUT_OF_STOCK, failure_message(err)) from err
            st.undo.append(Undo(UndoKind.release_stock))
            self._record(plan, view.locations, allocations)
            return

    async def _choose_delivery(self, plan: SourcingPlan, locations: list[LocationInfo]) -> None:
        """The chosen delivery option's carrier, price and promised dates, from the region's rules."""
        st, inp = self.state, self.state.inp
        delivery = inp.delivery
        if delivery.method not in SHIPPED or delivery.address is None:
            return
        region = delivery.address.region
        rows = await local(DeliveryActivities.load_carrier_rules, CarrierRulesRequest(region=region))
        if not rows:
            return
        rules = [CarrierRule.parse(**dataclasses.asdict(row)) for row in rows]
        options = delivery_options(plan.shipments, {loc.id: loc for loc in locations}, rules, region=region,
                                   now=inp.placed_at or workflow.now(), assembly_minutes=inp.assembly_sla_minutes)
        same_method = [o for o in options if o.method.value == delivery.method.value]
        if not same_method:
            offered = ", ".join(sorted({o.method.value for o in options})) or "nothing"
            raise PlacementRefused("method_not_offered", f"delivery.method: no {delivery.method.value} delivery to "
                                   f"{region} for this cart; offered: {offered}", field="delivery.method")
        chosen = [o for o in same_method if delivery.carrier is None or o.carrier == delivery.carrier]
        if not chosen:
            raise PlacementRefused("carrier_not_offered", f"delivery.carrier: {delivery.carrier} does not offer "
                                   f"{delivery.method.value} delivery to {region}; offered: "
                                   f"{', '.join(sorted({o.carrier for o in same_method}))}", field="delivery.carrier")
        best = chosen[0]  # options come best first
        st.inp = dataclasses.replace(inp, delivery=dataclasses.replace(
            delivery, carrier=best.carrier, price=best.price, promised_from=best.date_from.isoformat(),
            promised_to=best.date_to.isoformat()))

    def _record(self, plan: SourcingPlan, locations: list[LocationInfo], allocations: list[Allocation]) -> None:
        st, inp = self.state, self.state.inp
        for n, shipment in enumerate(plan.shipments, start=1):
            sid = fulfillment_workflow_id(inp.order_id, n)
            st.shipments[sid] = ShipmentView(
                shipment_id=sid, location_id=shipment.location_id,
                lines=[LineRequest(sku=line.sku, qty=line.qty) for line in shipment.lines],
                reason=shipment.reason, transfer_to=shipment.transfer_to,
                carrier=carrier_for(inp.delivery.method, inp.delivery.carrier),
                promised_from=inp.delivery.promised_from, promised_to=inp.delivery.promised_to)
            st.note("sourced", f"Отгрузка {n} со склада {shipment.location_id}: {shipment.reason}",
                    shipment_id=sid, location_id=shipment.location_id)
        st.locations = {loc.id: loc for loc in locations}
        st.allocation_keys = {sid: [a.key for a in allocations if a.location_id == s.location_id]
                              for sid, s in st.shipments.items()}
        if st.pickup:
            st.store_id = inp.delivery.store_id
            self.pickup.promise()
        elif len(st.shipments) == 1:
            st.store_id = next(iter(st.shipments.values())).location_id


def _allocations(owner: str, plan: SourcingPlan, attempt: int) -> list[Allocation]:
    return [Allocation(key=reservation_key(owner, line.pos_id, shipment.location_id, attempt), sku=line.sku,
                       location_id=shipment.location_id, qty=line.qty)
            for shipment in plan.shipments for line in shipment.lines]
