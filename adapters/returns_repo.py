"""Returns in PostgreSQL: the projection, what each return holds against its order, and the
refund computed exactly once per return.

Concurrency: creating a return and computing a refund both lock the order's row in ``orders``
(``SELECT … FOR UPDATE``) for the length of one short transaction, so two returns of one order
are checked and priced one after the other: they can never both take the last unit, and each
refund sees every refund computed before it (``domain.refunds`` is cumulative: the kopecks
carried by the first units go to whichever return comes first, and all returns together refund
exactly what was paid).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.orders_repo import snapshot_from_json
from contracts.order import OrderSnapshot
from domain.refunds import DeliveryRefundPolicy, refund_return
from contracts.returns import RefundClaim, RefundView, ReturnSnapshot
from domain.returns import paid_lines, refund_view

_SNAPSHOT = TypeAdapter(ReturnSnapshot)
_REFUND = TypeAdapter(RefundView)


def return_to_json(snapshot: ReturnSnapshot) -> dict[str, Any]:
    data: dict[str, Any] = _SNAPSHOT.dump_python(snapshot, mode="json")
    return data


def return_from_json(data: dict[str, Any]) -> ReturnSnapshot:
    return _SNAPSHOT.validate_python(data)


class OrderNotFound(LookupError):
    pass


Build = Callable[[OrderSnapshot, Sequence[ReturnSnapshot]], ReturnSnapshot]


@dataclass
class ReturnsRepo:
    engine: AsyncEngine

    async def _lock_order(self, conn: AsyncConnection, order_id: str) -> OrderSnapshot:
        row = (await conn.execute(text("SELECT snapshot FROM orders WHERE order_id = :id FOR UPDATE"),
                                  {"id": order_id})).first()
        if row is None:
            raise OrderNotFound(order_id)
        return snapshot_from_json(row.snapshot)

    async def _of_order(self, conn: AsyncConnection, order_id: str) -> list[ReturnSnapshot]:
        rows = await conn.execute(text("SELECT snapshot FROM returns WHERE order_id = :o ORDER BY created_at, return_id"),
                                  {"o": order_id})
        return [return_from_json(r.snapshot) for r in rows]

    async def create(self, *, return_id: str, order_id: str, build: Build) -> tuple[ReturnSnapshot, bool]:
        """Insert the return ``build(order, other returns of the order)`` makes, under the order's
        lock (``build`` raises to refuse). An existing ``return_id`` is answered as is (a retried
        request): ``(snapshot, False)``. Raises ``OrderNotFound``."""
        async with self.engine.begin() as conn:
            order = await self._lock_order(conn, order_id)
            existing = (await conn.execute(text("SELECT snapshot FROM returns WHERE return_id = :id"),
                                           {"id": return_id})).first()
            if existing is not None:
                return return_from_json(existing.snapshot), False
            snap = build(order, await self._of_order(conn, order_id))
            await conn.execute(
                text("""INSERT INTO returns (return_id, order_id, status, method, location_id, version, snapshot,
                                             created_at, updated_at)
                        VALUES (:id, :o, :status, :method, :loc, :v, CAST(:snap AS jsonb), :at, :at)"""),
                {"id": snap.return_id, "o": snap.order_id, "status": snap.status.value, "method": snap.method.value,
                 "loc": snap.location_id, "v": snap.version, "snap": _dumps(return_to_json(snap)),
                 "at": snap.created_at},
            )
        return snap, True

    async def save(self, snapshot: ReturnSnapshot) -> bool:
        """Write the snapshot unless a newer version is stored."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(
                text("""UPDATE returns SET status = :status, location_id = :loc, version = :v,
                               snapshot = CAST(:snap AS jsonb), updated_at = :at
                        WHERE return_id = :id AND version <= :v RETURNING return_id"""),
                {"id": snapshot.return_id, "status": snapshot.status.value, "loc": snapshot.location_id,
                 "v": snapshot.version, "snap": _dumps(return_to_json(snapshot)), "at": snapshot.updated_at},
            )).first()
        return row is not None

    async def get(self, return_id: str) -> ReturnSnapshot | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(text("SELECT snapshot FROM returns WHERE return_id = :id"),
                                      {"id": return_id})).first()
        return return_from_json(row.snapshot) if row else None

    async def for_order(self, order_id: str) -> list[ReturnSnapshot]:
        async with self.engine.connect() as conn:
            return await self._of_order(conn, order_id)

    async def settle_refund(self, claim: RefundClaim) -> RefundView:
        """The refund of this return, computed once with ``domain.refunds.refund_return`` over the
        units every earlier refund of the order took, and stored; a repeat answers the stored one.
        Raises ``OrderNotFound``, ``LookupError`` (no such return) or ``ValueError`` (too many units)."""
        async with self.engine.begin() as conn:
            order = await self._lock_order(conn, claim.order_id)
            row = (await conn.execute(text("SELECT refund FROM returns WHERE return_id = :id FOR UPDATE"),
                                      {"id": claim.return_id})).first()
            if row is None:
                raise LookupError(f"no return {claim.return_id}")
            if row.refund is not None:
                return _REFUND.validate_python(row.refund)
            so_far: dict[int, int] = {}
            earlier = await conn.execute(
                text("SELECT refund FROM returns WHERE order_id = :o AND return_id <> :id AND refund IS NOT NULL"),
                {"o": claim.order_id, "id": claim.return_id})
            for r in earlier:
                for line in _REFUND.validate_python(r.refund).lines:
                    so_far[line.pos_id] = so_far.get(line.pos_id, 0) + line.qty
            request: dict[int, int] = {}
            for pos, qty in claim.accepted:
                if qty:
                    request[pos] = request.get(pos, 0) + qty
            refund = refund_view(refund_return(
                paid_lines(order.lines), so_far, request, delivery_paid=order.totals.delivery,
                delivery_policy=DeliveryRefundPolicy(claim.delivery_policy)))
            await conn.execute(text("UPDATE returns SET refund = CAST(:r AS jsonb) WHERE return_id = :id"),
                               {"id": claim.return_id, "r": _dumps(_REFUND.dump_python(refund, mode="json"))})
        return refund


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)
