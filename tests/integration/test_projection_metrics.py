"""The order projection's metrics on the real PostgreSQL: ``orkestr_order_status_changes_total`` counts a
*change* of status once (not a retried save, not a save of other fields, not an older version arriving
late), and ``orkestr_orders`` is the projection's count per status, read at scrape time."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import text

from activities.orders import ProjectionActivities
from adapters.orders_repo import OrdersRepo
from contracts.order import OrderStatus
from observability import refresh_orders_gauge
from test_returns_db import order


def changes(status: OrderStatus) -> float:
    return REGISTRY.get_sample_value("orkestr_order_status_changes_total",
                                     {"status": status.value, "channel": "web"}) or 0.0


async def test_a_status_change_is_counted_once_however_often_it_is_saved(engine: Any) -> None:
    acts = ProjectionActivities(OrdersRepo(engine))
    oid = f"MET{uuid.uuid4().hex[:8].upper()}"
    base = order(oid)
    paid = dataclasses.replace(base, status=OrderStatus.paid, version=1)
    before = {s: changes(s) for s in (OrderStatus.paid, OrderStatus.assembling)}

    await acts.save_order(paid)  # a new order, paid: a change (from nothing)
    await acts.save_order(paid)  # the same save retried
    await acts.save_order(dataclasses.replace(paid, version=2))  # another field changed, same status
    assert changes(OrderStatus.paid) == before[OrderStatus.paid] + 1

    await acts.save_order(dataclasses.replace(paid, status=OrderStatus.assembling, version=3))
    await acts.save_order(dataclasses.replace(paid, status=OrderStatus.assembling, version=3))  # retried
    await acts.save_order(dataclasses.replace(paid, status=OrderStatus.paid, version=2))  # late, older: not written
    assert changes(OrderStatus.assembling) == before[OrderStatus.assembling] + 1
    assert changes(OrderStatus.paid) == before[OrderStatus.paid] + 1
    assert (await OrdersRepo(engine).get(oid)).status == OrderStatus.assembling  # type: ignore[union-attr]


async def test_orders_by_status_gauge_is_the_projection(engine: Any) -> None:
    repo = OrdersRepo(engine)
    oid = f"GAU{uuid.uuid4().hex[:8].upper()}"
    await repo.save(dataclasses.replace(order(oid), status=OrderStatus.on_hold))
    await refresh_orders_gauge(engine)
    async with engine.connect() as conn:
        counts = {r.status: r.n for r in await conn.execute(text(
            "SELECT status, count(*) AS n FROM orders GROUP BY status"))}
    assert counts["on_hold"] >= 1
    for status in OrderStatus:
        assert REGISTRY.get_sample_value("orkestr_orders", {"status": status.value}) == counts.get(status.value, 0)
