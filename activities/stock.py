"""Stock ledger steps (PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import logger
from adapters.ledger import Ledger, OutOfStock
from contracts.steps import ErrorType, ReholdRequest, ReserveRequest, SettleRequest, StockViewRequest
from contracts.stock import StockView


@dataclass
class StockActivities:
    ledger: Ledger

    @activity.defn
    async def load_stock_view(self, req: StockViewRequest) -> StockView:
        locations = await self.ledger.locations()
        available = [a for a in await self.ledger.availability(req.skus) if a.available > 0]
        return StockView(locations=locations, available=available)

    @activity.defn
    async def reserve_stock(self, req: ReserveRequest) -> None:
        try:
            await self.ledger.reserve(req.owner, req.allocations)
        except OutOfStock as exc:
            raise ApplicationError(str(exc), exc.sku, exc.location_id, type=ErrorType.OUT_OF_STOCK, non_retryable=True) from exc
        logger().info("stock.reserved", lines=len(req.allocations))

    @activity.defn
    async def rehold_stock(self, req: ReholdRequest) -> int:
        try:
            units = await self.ledger.rehold(req.owner, req.release_keys, req.allocations)
        except OutOfStock as exc:
            raise ApplicationError(str(exc), exc.sku, exc.location_id, type=ErrorType.OUT_OF_STOCK, non_retryable=True) from exc
        logger().info("stock.reheld", released=units, lines=len(req.allocations))
        return units

    @activity.defn
    async def release_stock(self, req: SettleRequest) -> int:
        units = await self.ledger.release(req.owner, req.keys)
        logger().info("stock.released", units=units)
        return units

    @activity.defn
    async def consume_stock(self, req: SettleRequest) -> int:
        units = await self.ledger.consume(req.owner, req.keys)
        logger().info("stock.consumed", units=units)
        return units
