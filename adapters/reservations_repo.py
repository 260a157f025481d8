"""The store-reservation projection (PostgreSQL table ``reservations``), written whole on every change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.reservation import ReservationSnapshot

_SNAPSHOT = TypeAdapter(ReservationSnapshot)


def reservation_to_json(snapshot: ReservationSnapshot) -> dict[str, Any]:
    data: dict[str, Any] = _SNAPSHOT.dump_python(snapshot, mode="json")
    return data


@dataclass
class ReservationsRepo:
    engine: AsyncEngine

    async def save(self, snapshot: ReservationSnapshot) -> bool:
        """Upsert unless a newer version is stored. Returns whether it was written."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(text(
                """
                INSERT INTO reservations (reservation_id, status, channel, store_id, phone, order_id, amount,
                                          currency, version, snapshot, created_at, updated_at)
                VALUES (:id, :status, :channel, :store_id, :phone, :order_id, :amount, :currency, :version,
                        CAST(:snapshot AS jsonb), :created_at, :updated_at)
                ON CONFLICT (reservation_id) DO UPDATE SET
                    status = EXCLUDED.status, amount = EXCLUDED.amount, version = EXCLUDED.version,
                    snapshot = EXCLUDED.snapshot, updated_at = EXCLUDED.updated_at
                WHERE reservations.version <= EXCLUDED.version
                RETURNING reservation_id
                """), {
                "id": snapshot.reservation_id, "status": snapshot.status.value, "channel": snapshot.channel.value,
                "store_id": snapshot.store_id, "phone": snapshot.customer.phone, "order_id": snapshot.order_id,
                "amount": snapshot.amount, "currency": snapshot.currency, "version": snapshot.version,
                "snapshot": json.dumps(reservation_to_json(snapshot), ensure_ascii=False),
                "created_at": snapshot.created_at, "updated_at": snapshot.updated_at,
            })).first()
        return row is not None

    async def get(self, reservation_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT snapshot FROM reservations WHERE reservation_id = :id"),
                                      {"id": reservation_id})).first()
        return dict(row.snapshot) if row else None
