"""The order projection (PostgreSQL), written whole on every change."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from adapters.orders_repo import OrdersRepo
from contracts.order import OrderSnapshot
from observability import STATUS_CHANGES


@dataclass
class ProjectionActivities:
    orders: OrdersRepo

    @activity.defn
    async def save_order(self, snapshot: OrderSnapshot) -> None:
        saved = await self.orders.save(snapshot)
        # a change of status is counted once: not a retried save, not a save of other fields
        if saved is not None and saved.previous_status != snapshot.status.value:
            STATUS_CHANGES.labels(snapshot.status.value, snapshot.channel.value).inc()
