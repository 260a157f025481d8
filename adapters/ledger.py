"""The stock ledger in PostgreSQL: on hand from the ERP, reserved by workflows.

Every change is a conditional single-statement UPDATE (the row lock is the
statement's own), so concurrent reservations can never oversell; every change is
keyed (reservation key, status transition) so a retried activity changes nothing.
``available = on_hand - reserved - safety_stock`` of the location (``contracts.stock.available_units``;
the conditional hold below is the same rule in SQL, ``contracts.stock.can_hold``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import TextClause

from contracts.stock import Allocation, Availability, LocationInfo, StockLevel
from domain.availability import available_units


class OutOfStock(Exception):
    def __init__(self, sku: str, location_id: str, qty: int) -> None:
        super().__init__(f"not enough stock of {sku} at {location_id} for {qty}")
        self.sku = sku
        self.location_id = location_id
        self.qty = qty


class ReservationConflict(Exception):
    """A reservation key was reused for a different line: a programming error, never retried."""


_INSERT = text(
    """
    INSERT INTO reservation (key, owner, sku, location_id, qty, status, created_at, updated_at)
    VALUES (:key, :owner, :sku, :location_id, :qty, 'held', now(), now())
    ON CONFLICT (key) DO NOTHING
    RETURNING key
    """
)
_EXISTING = text("SELECT owner, sku, location_id, qty, status FROM reservation WHERE key = :key")
_TAKE = text(
    """
    UPDATE stock AS s SET reserved = s.reserved + :qty, updated_at = now()
    FROM location AS l
    WHERE l.id = s.location_id AND s.sku = :sku AND s.location_id = :location_id
      AND s.on_hand - s.reserved - l.safety_stock >= :qty
    RETURNING s.sku
    """
)


def _settle(new_status: str, consume: bool) -> TextClause:
    on_hand = "s.on_hand - x.qty" if consume else "s.on_hand"
    return text(
        f"""
        WITH r AS (
            UPDATE reservation SET status = '{new_status}', updated_at = now()
            WHERE owner = :owner AND status = 'held' AND (CAST(:keys AS text[]) IS NULL OR key = ANY(:keys))
            RETURNING sku, location_id, qty
        ), x AS (SELECT sku, location_id, sum(qty) AS qty FROM r GROUP BY sku, location_id)
        UPDATE stock AS s SET reserved = s.reserved - x.qty, on_hand = {on_hand}, updated_at = now()
        FROM x WHERE s.sku = x.sku AND s.location_id = x.location_id
        RETURNING s.sku, s.location_id, x.qty
        """
    )


_SETTLE_TAKEN = text(
    """
    WITH old AS (
        SELECT key, sku, location_id, qty, LEAST(CAST(:take AS int), qty) AS taken FROM reservation
        WHERE key = :key AND owner = :owner AND status = 'held' FOR UPDATE
    ), r AS (
        UPDATE reservation AS t
        SET status = CASE WHEN old.taken > 0 THEN 'consumed' ELSE 'released' END,
            qty = CASE WHEN old.taken > 0 THEN old.taken ELSE old.qty END, updated_at = now()
        FROM old WHERE t.key = old.key
        RETURNING old.sku, old.location_id, old.qty AS held, old.taken
    ), rest AS (
        INSERT INTO reservation (key, owner, sku, location_id, qty, status, created_at, updated_at)
        SELECT old.key || ':' || 'rest', :owner, old.sku, old.location_id, old.qty - old.taken, 'released', now(), now()
        FROM old WHERE old.taken > 0 AND old.qty > old.taken
        ON CONFLICT (key) DO NOTHING
    )
    UPDATE stock AS s SET reserved = s.reserved - r.held, on_hand = s.on_hand - r.taken, updated_at = now()
    FROM r WHERE s.sku = r.sku AND s.location_id = r.location_id
    RETURNING r.held, r.taken
    """
)


_RESTOCK = text(
    """
    WITH r AS (
        INSERT INTO restock (key, sku, location_id, qty, created_at)
        SELECT key, sku, :location_id, qty, now()
        FROM unnest(CAST(:keys AS text[]), CAST(:skus AS text[]), CAST(:qtys AS int[])) AS t(key, sku, qty)
        ON CONFLICT (key) DO NOTHING
        RETURNING sku, location_id, qty
    ), x AS (SELECT sku, location_id, sum(qty)::int AS qty FROM r GROUP BY sku, location_id
    ), s AS (
        INSERT INTO stock (sku, location_id, on_hand, reserved, updated_at)
        SELECT sku, location_id, qty, 0, now() FROM x
        ON CONFLICT (sku, location_id) DO UPDATE SET on_hand = stock.on_hand + EXCLUDED.on_hand, updated_at = now()
        RETURNING sku
    )
    SELECT COALESCE(sum(qty), 0)::int AS qty FROM x
    """
)

_RELEASE = _settle("released", consume=False)
_CONSUME = _settle("consumed", consume=True)


@dataclass
class Ledger:
    engine: AsyncEngine

    async def reserve(self, owner: str, allocations: Sequence[Allocation]) -> None:
        """Hold every allocation or none (one transaction). Idempotent by allocation key."""
        async with self.engine.begin() as conn:
            await _hold(conn, owner, allocations)

    async def release(self, owner: str, keys: Iterable[str] | None = None) -> int:
        """Release held reservations of ``owner`` (all, or the given keys). Returns units released."""
        return await self._settle(_RELEASE, owner, keys)

    async def rehold(self, owner: str, release_keys: Sequence[str], allocations: Sequence[Allocation]) -> int:
        """Change what ``owner`` holds in one transaction: release ``release_keys`` and hold
        ``allocations`` (e.g. a line's quantity changed by an operator). The units released are
        counted as available to the new holds, so shrinking a line never fails and growing it
        needs only the difference; if any new hold does not fit, nothing changes (OutOfStock).
        Idempotent: released keys stay released, held keys are not taken twice. Returns units released."""
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_RELEASE, {"owner": owner, "keys": list(release_keys)})).all() if release_keys else []
            await _hold(conn, owner, allocations)  # OutOfStock rolls back the releases too
        return sum(r.qty for r in rows)

    async def consume(self, owner: str, keys: Iterable[str] | None = None) -> int:
        """The goods left the location: held reservations become a decrease of on hand."""
        return await self._settle(_CONSUME, owner, keys)

    async def restock(self, location_id: str, items: Sequence[tuple[str, str, int]]) -> int:
        """Put goods back on hand at ``location_id`` (a return accepted there). ``items`` are
        ``(key, sku, qty)``; a key already restocked changes nothing, so a retried activity
        never counts twice. One statement: the keyed insert and the on-hand increase commit
        together. Returns the units added now (0 on a repeat)."""
        if not items:
            return 0
        params = {"location_id": location_id, "keys": [k for k, _, _ in items], "skus": [s for _, s, _ in items],
                  "qtys": [q for _, _, q in items]}
        async with self.engine.begin() as conn:
            rows = (await conn.execute(_RESTOCK, params)).all()
        return sum(r.qty for r in rows)

    async def _settle(self, stmt: TextClause, owner: str, keys: Iterable[str] | None) -> int:
        params = {"owner": owner, "keys": list(keys) if keys is not None else None}
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt, params)).all()
        return sum(r.qty for r in rows)

    async def settle_taken(self, owner: str, taken: Sequence[tuple[str, int]]) -> tuple[int, int]:
        """A pickup: of each held key, ``take`` units become a sale (on hand decreases) and the rest
        is released (recorded as ``<key>:rest``); ``take`` 0 releases the key. One transaction; a
        key no longer held is left alone, so a repeat changes nothing. Returns (consumed, released)."""
        consumed = released = 0
        async with self.engine.begin() as conn:
            for key, take in taken:
                row = (await conn.execute(_SETTLE_TAKEN, {"owner": owner, "key": key, "take": max(take, 0)})).first()
                if row is not None:
                    consumed += row.taken
                    released += row.held - row.taken
        return consumed, released

    async def held(self, owner: str) -> list[Allocation]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT key, sku, location_id, qty FROM reservation WHERE owner = :o AND status = 'held' ORDER BY key"),
                {"o": owner},
            )
            return [Allocation(key=r.key, sku=r.sku, location_id=r.location_id, qty=r.qty) for r in rows]

    async def availability(
        self, skus: Sequence[str], *, location_ids: Sequence[str] | None = None, region: str | None = None
    ) -> list[Availability]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    """
                    SELECT s.sku, s.location_id, s.on_hand, s.reserved, l.safety_stock
                    FROM stock s JOIN location l ON l.id = s.location_id
                    WHERE s.sku = ANY(:skus)
                      AND (CAST(:locs AS text[]) IS NULL OR s.location_id = ANY(:locs))
                      AND (CAST(:region AS text) IS NULL OR l.region = :region)
                    ORDER BY s.sku, s.location_id
                    """
                ),
                {"skus": list(skus), "locs": list(location_ids) if location_ids else None, "region": region},
            )
            return [
                Availability(sku=r.sku, location_id=r.location_id, on_hand=r.on_hand, reserved=r.reserved,
                             safety_stock=r.safety_stock,
                             available=available_units(r.on_hand, r.reserved, r.safety_stock))
                for r in rows
            ]

    async def assigned_today(self) -> dict[str, int]:
        """Holds placed since midnight UTC per location, counted by owner (≈ shipments given today):
        the load the sourcing rules' capacity weight uses."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(text(
                "SELECT location_id, count(DISTINCT owner) AS n FROM reservation "
                "WHERE created_at >= date_trunc('day', now()) AND status <> 'released' GROUP BY location_id"))
            return {r.location_id: r.n for r in rows}

    async def locations(self) -> list[LocationInfo]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(text("SELECT * FROM location ORDER BY id"))
            return [LocationInfo(**{k: v for k, v in r._mapping.items() if k in LocationInfo.__dataclass_fields__}) for r in rows]

    async def set_on_hand(self, levels: Sequence[StockLevel]) -> int:
        """Apply absolute on-hand quantities from the ERP. Never touches ``reserved``.

        ``levels`` are in ERP order (a delta lists movements oldest first): when a pair appears
        more than once, the last quantity wins (one statement cannot update a row twice)."""
        if not levels:
            return 0
        levels = list({(lv.sku, lv.location_id): lv for lv in levels}.values())
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    """
                    INSERT INTO stock (sku, location_id, on_hand, reserved, updated_at)
                    SELECT sku, loc, qty, 0, now()
                    FROM unnest(CAST(:skus AS text[]), CAST(:locs AS text[]), CAST(:qtys AS int[])) AS t(sku, loc, qty)
                    ON CONFLICT (sku, location_id) DO UPDATE SET on_hand = EXCLUDED.on_hand, updated_at = now()
                    """
                ),
                {
                    "skus": [lv.sku for lv in levels],
                    "locs": [lv.location_id for lv in levels],
                    "qtys": [lv.on_hand for lv in levels],
                },
            )
        return len(levels)


async def _hold(conn: AsyncConnection, owner: str, allocations: Sequence[Allocation]) -> None:
    """Hold each allocation in the caller's transaction: keyed (a key already used by this line is
    left alone), conditional on what is available; OutOfStock rolls the whole transaction back."""
    for a in allocations:
        inserted = (await conn.execute(_INSERT, {**_params(a), "owner": owner})).first()
        if inserted is None:
            row = (await conn.execute(_EXISTING, {"key": a.key})).one()
            if (row.owner, row.sku, row.location_id, row.qty) != (owner, a.sku, a.location_id, a.qty):
                raise ReservationConflict(f"reservation key {a.key} already used for another line")
            continue  # already held (or settled) by an earlier attempt: nothing to do
        if (await conn.execute(_TAKE, _params(a))).first() is None:
            raise OutOfStock(a.sku, a.location_id, a.qty)


def _params(a: Allocation) -> dict[str, object]:
    return {"key": a.key, "sku": a.sku, "location_id": a.location_id, "qty": a.qty}
