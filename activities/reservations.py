"""Store reservation steps (PostgreSQL): the projection, and settling a pickup in the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.common import logger
from adapters.ledger import Ledger
from adapters.reservations_repo import ReservationsRepo
from contracts.reservation import ReservationSnapshot, SettleResult, SettleTaken


@dataclass
class ReservationActivities:
    repo: ReservationsRepo
    ledger: Ledger

    @activity.defn
    async def save_reservation(self, snapshot: ReservationSnapshot) -> None:
        await self.repo.save(snapshot)

    @activity.defn
    async def settle_reservation(self, req: SettleTaken) -> SettleResult:
        consumed, released = await self.ledger.settle_taken(req.owner, req.taken)
        logger().info("stock.settled", consumed=consumed, released=released)
        return SettleResult(consumed=consumed, released=released)
