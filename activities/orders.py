"""The order projection (PostgreSQL), written whole on every change."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from adapters.orders_repo import OrdersRepo
from contracts.order import OrderSnapshot
from observability import ORDERS_BY_STATUS


@dataclass
class ProjectionActivities:
    orders: OrdersRepo

    @activity.defn
    async def save_order(self, snapshot: OrderSnapshot) -> None:
        if await self.orders.save(snapshot):
            ORDERS_BY_STATUS.labels(snapshot.status.value, snapshot.channel.value).inc()
