"""The shortage history the learned safety stock and the reliability weight need, read from the
order projection (``orders.snapshot``: shipments and timeline, written by the order workflow)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.safety_stock import ShortageHistory, history_from_timelines

_EVENTS = text(
    """
    SELECT o.order_id,
           (SELECT jsonb_object_agg(s ->> 'shipment_id', jsonb_array_length(COALESCE(s -> 'lines', '[]'::jsonb)))
              FROM jsonb_array_elements(o.snapshot -> 'shipments') AS s) AS lines,
           (SELECT jsonb_agg(jsonb_build_array(e ->> 'at', e ->> 'kind', e -> 'data') ORDER BY n)
              FROM jsonb_array_elements(o.snapshot -> 'timeline') WITH ORDINALITY AS t(e, n)
             WHERE e ->> 'kind' IN ('sourced', 'shipment_assembling')
               AND (e -> 'data' ? 'location_id' OR e -> 'data' ? 'shortage_sku')) AS events
    FROM orders o
    WHERE o.created_at >= :since
    """
)


@dataclass
class ShortageHistoryRepo:
    engine: AsyncEngine

    async def history(self, *, now: datetime, history_days: int, memory_days: int) -> ShortageHistory:
        """Orders created in the last ``history_days``; pairs short within ``memory_days`` are recent."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_EVENTS, {"since": now - timedelta(days=history_days)})).all()
        orders: list[tuple[dict[str, int], list[tuple[datetime, str, dict[str, Any]]]]] = []
        for r in rows:
            events = [(datetime.fromisoformat(at), kind, data or {}) for at, kind, data in (r.events or [])]
            orders.append((dict(r.lines or {}), events))
        return history_from_timelines(orders, memory_since=now - timedelta(days=memory_days))
