"""Delivery in PostgreSQL: the per-region carrier rules (table ``carrier_rule``, seeded by
migration 0002) and the late-delivery report read from the order projection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.promise import CarrierRule


@dataclass
class DeliveryRepo:
    engine: AsyncEngine

    async def rules(self, region: str | None = None) -> list[CarrierRule]:
        """Active rules (of one destination region, case-insensitive, or all), in a stable order."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    """SELECT region, carrier, method, price, currency, days_min, days_max, cutoff, from_location_ids
                       FROM carrier_rule
                       WHERE active AND (CAST(:region AS text) IS NULL OR upper(region) = upper(:region))
                       ORDER BY region, carrier, method, id"""
                ),
                {"region": region},
            )
            return [
                CarrierRule.parse(carrier=r.carrier, method=r.method, region=r.region, price=r.price,
                                  days_min=r.days_min, days_max=r.days_max, cutoff=r.cutoff,
                                  from_location_ids=list(r.from_location_ids) if r.from_location_ids else None,
                                  currency=r.currency)
                for r in rows
            ]

    async def late_deliveries(self, *, since: datetime | None, until: datetime | None,
                              limit: int) -> tuple[int, int, list[dict[str, Any]]]:
        """Shipments delivered (by ``delivered_at``) in the period: how many, how many late, and the
        late ones (newest first, at most ``limit``). Only shipments that carried a promise count."""
        params = {"since": since, "until": until, "limit": limit}
        base = """
            FROM orders o CROSS JOIN LATERAL jsonb_array_elements(o.snapshot -> 'shipments') AS s
            WHERE s ->> 'status' = 'delivered' AND s ->> 'promised_to' IS NOT NULL
              AND (CAST(:since AS timestamptz) IS NULL OR CAST(s ->> 'delivered_at' AS timestamptz) >= :since)
              AND (CAST(:until AS timestamptz) IS NULL OR CAST(s ->> 'delivered_at' AS timestamptz) < :until)
        """
        async with self.engine.connect() as conn:
            counts = (await conn.execute(text(
                f"SELECT count(*) AS delivered, count(*) FILTER (WHERE (s ->> 'late')::boolean) AS late {base}"),
                params)).one()
            rows = await conn.execute(text(
                f"""SELECT o.order_id, s ->> 'shipment_id' AS shipment_id, s ->> 'location_id' AS location_id,
                           s ->> 'carrier' AS carrier, s ->> 'promised_from' AS promised_from,
                           s ->> 'promised_to' AS promised_to, s ->> 'delivered_at' AS delivered_at
                    {base} AND (s ->> 'late')::boolean
                    ORDER BY CAST(s ->> 'delivered_at' AS timestamptz) DESC, o.order_id LIMIT :limit"""), params)
            return counts.delivered, counts.late, [dict(r._mapping) for r in rows]
