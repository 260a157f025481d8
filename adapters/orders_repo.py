"""The order projection and the API's idempotency keys, in PostgreSQL."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.order import OrderSnapshot

_SNAPSHOT = TypeAdapter(OrderSnapshot)


def phone_hash(phone: str, salt: str = "") -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    return hashlib.sha256(f"{salt}{digits}".encode()).hexdigest()[:32]


def snapshot_to_json(snapshot: OrderSnapshot) -> dict[str, Any]:
    data: dict[str, Any] = _SNAPSHOT.dump_python(snapshot, mode="json")
    return data


def snapshot_from_json(data: dict[str, Any]) -> OrderSnapshot:
    return _SNAPSHOT.validate_python(data)


@dataclass(frozen=True)
class Saved:
    """A snapshot written to the projection; ``previous_status`` None: the order is new there."""

    previous_status: str | None


@dataclass
class OrdersRepo:
    engine: AsyncEngine
    phone_salt: str = ""

    async def save(self, snapshot: OrderSnapshot) -> "Saved | None":
        """Upsert the snapshot unless a newer version is stored. Returns None when a newer version was
        there (nothing written), else what the row's status was before (None for a new order): a retried
        or repeated save of the same status is told apart from a change of status. ``before`` reads the row
        as the statement's snapshot saw it (one workflow saves its order's snapshots one at a time)."""
        data = snapshot_to_json(snapshot)
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        """
                        WITH before AS (SELECT status FROM orders WHERE order_id = :order_id)
                        INSERT INTO orders (order_id, status, channel, phone, phone_hash, customer_name, store_id,
                                            total, currency, version, snapshot, created_at, updated_at)
                        VALUES (:order_id, :status, :channel, :phone, :phone_hash, :name, :store_id,
                                :total, :currency, :version, CAST(:snapshot AS jsonb), :created_at, :updated_at)
                        ON CONFLICT (order_id) DO UPDATE SET
                            status = EXCLUDED.status, store_id = EXCLUDED.store_id, total = EXCLUDED.total,
                            version = EXCLUDED.version, snapshot = EXCLUDED.snapshot, updated_at = EXCLUDED.updated_at
                        WHERE orders.version <= EXCLUDED.version
                        RETURNING order_id, (SELECT status FROM before) AS previous_status
                        """
                    ),
                    {
                        "order_id": snapshot.order_id,
                        "status": snapshot.status.value,
                        "channel": snapshot.channel.value,
                        "phone": snapshot.customer.phone,
                        "phone_hash": phone_hash(snapshot.customer.phone, self.phone_salt),
                        "name": snapshot.customer.name,
                        "store_id": snapshot.store_id,
                        "total": snapshot.totals.total,
                        "currency": snapshot.totals.currency,
                        "version": snapshot.version,
                        "snapshot": _dumps(data),
                        "created_at": snapshot.created_at,
                        "updated_at": snapshot.updated_at,
                    },
                )
            ).first()
        return None if row is None else Saved(previous_status=row.previous_status)

    async def count_by_status(self) -> dict[str, int]:
        """Orders in the projection per status (the ``orkestr_orders`` gauge)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT status, count(*) AS n FROM orders GROUP BY status"))).all()
        return {r.status: r.n for r in rows}

    async def get(self, order_id: str) -> OrderSnapshot | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT snapshot FROM orders WHERE order_id = :id"), {"id": order_id})).first()
        return snapshot_from_json(row.snapshot) if row else None

    async def list(
        self, *, status: str | None = None, phone: str | None = None, store_id: str | None = None,
        limit: int = 50, offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        where = ["TRUE"]
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            where.append("status = :status")
            params["status"] = status
        if phone:
            where.append("phone_hash = :ph")
            params["ph"] = phone_hash(phone, self.phone_salt)
        if store_id:
            where.append("store_id = :store")
            params["store"] = store_id
        cond = " AND ".join(where)
        async with self.engine.connect() as conn:
            total = (await conn.execute(text(f"SELECT count(*) FROM orders WHERE {cond}"), params)).scalar_one()
            rows = await conn.execute(
                text(
                    f"""SELECT order_id, status, channel, phone, customer_name, store_id, total, currency,
                               created_at, updated_at
                        FROM orders WHERE {cond} ORDER BY created_at DESC, order_id LIMIT :limit OFFSET :offset"""
                ),
                params,
            )
            return [dict(r._mapping) for r in rows], total


def _dumps(data: Any) -> str:
    import json

    return json.dumps(data, ensure_ascii=False)


# --- idempotency keys (Stripe semantics; see shared/reference/fiscal-and-idempotency.md) ----------


@dataclass(frozen=True)
class KeyClaim:
    """``new``: go ahead; ``replay``: answer with the stored response; ``in_flight``: 409;
    ``mismatch``: same key, different request: 422."""

    outcome: str
    status_code: int | None = None
    body: Any = None


@dataclass
class IdempotencyRepo:
    engine: AsyncEngine
    lock_for: timedelta = timedelta(seconds=60)

    async def claim(self, *, key: str, scope: str, request_hash: str) -> KeyClaim:
        async with self.engine.begin() as conn:
            inserted = (
                await conn.execute(
                    text(
                        """INSERT INTO idempotency_key (key, scope, request_hash, state, created_at, locked_until)
                           VALUES (:key, :scope, :h, 'in_flight', now(), now() + :lock)
                           ON CONFLICT (key, scope) DO NOTHING RETURNING key"""
                    ),
                    {"key": key, "scope": scope, "h": request_hash, "lock": self.lock_for},
                )
            ).first()
            if inserted:
                return KeyClaim("new")
            row = (
                await conn.execute(
                    text(
                        """SELECT request_hash, state, status_code, body, locked_until < now() AS expired
                           FROM idempotency_key WHERE key = :key AND scope = :scope FOR UPDATE"""
                    ),
                    {"key": key, "scope": scope},
                )
            ).one()
            if row.request_hash != request_hash:
                return KeyClaim("mismatch")
            if row.state == "done":
                return KeyClaim("replay", row.status_code, row.body)
            if row.expired:  # the first request died mid-way: this one takes over
                await conn.execute(
                    text("UPDATE idempotency_key SET locked_until = now() + :lock WHERE key = :key AND scope = :scope"),
                    {"key": key, "scope": scope, "lock": self.lock_for},
                )
                return KeyClaim("new")
            return KeyClaim("in_flight")

    async def finish(self, *, key: str, scope: str, status_code: int, body: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    """UPDATE idempotency_key SET state = 'done', status_code = :code, body = CAST(:body AS jsonb)
                       WHERE key = :key AND scope = :scope"""
                ),
                {"key": key, "scope": scope, "code": status_code, "body": _dumps(body)},
            )

    async def release(self, *, key: str, scope: str) -> None:
        """Forget an in-flight key whose request failed before doing anything (so a retry may run)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM idempotency_key WHERE key = :key AND scope = :scope AND state = 'in_flight'"),
                {"key": key, "scope": scope},
            )
