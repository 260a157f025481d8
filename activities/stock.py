"""Stock ledger steps (PostgreSQL)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import logger
from adapters.ledger import Ledger, OutOfStock
from adapters.rules_store import RulesStore
from adapters.shortage_history import ShortageHistoryRepo
from contracts.steps import ErrorType, ReholdRequest, ReserveRequest, SettleRequest, StockViewRequest
from contracts.stock import Availability, StockView
from domain.availability import available_units
from domain.safety_stock import LearnedSafetyStock, SafetyStockPolicy, learn_safety_stock
from domain.sourcing_rules import SourcingRules


@dataclass
class StockActivities:
    ledger: Ledger
    #: the sourcing rule set in force (rules/active.toml) and the shortage history it may need;
    #: None (tests, or nothing activated) = today's rules
    rules: RulesStore | None = None
    history: ShortageHistoryRepo | None = None
    _learned: tuple[float, int | None, LearnedSafetyStock] | None = field(default=None, repr=False)

    @activity.defn
    async def load_stock_view(self, req: StockViewRequest) -> StockView:
        locations = await self.ledger.locations()
        rows = await self.ledger.availability(req.skus)
        rules = self.rules.active() if self.rules is not None else None
        if rules is None or rules.version is None:
            return StockView(locations=locations, available=[a for a in rows if a.available > 0])
        # the rules in force travel with the view, so the workflow sources by exactly them
        weights = rules.weights
        if rules.needs_history and self.history is not None:
            learned = await self._learned_for(rules)
            if rules.safety is not None:
                rows = [_with_safety(a, learned.effective_safety_stock(a.location_id, a.sku, a.on_hand, a.safety_stock))
                        for a in rows]
            if weights.reliability_km:
                weights = dataclasses.replace(weights, shortage_rate=dict(learned.miss_rate))
        load = await self.ledger.assigned_today() if weights.capacity_km else None
        return StockView(locations=locations, available=[a for a in rows if a.available > 0], weights=weights,
                         rules_version=rules.version, assigned_today=load)

    async def _learned_for(self, rules: SourcingRules) -> LearnedSafetyStock:
        """The learned safety stock from the projection, recomputed at most every 15 minutes."""
        now = time.monotonic()
        if self._learned is not None and self._learned[1] == rules.version and now - self._learned[0] < 900:
            return self._learned[2]
        policy = rules.safety or SafetyStockPolicy()
        assert self.history is not None
        hist = await self.history.history(now=datetime.now(timezone.utc), history_days=policy.history_days,
                                          memory_days=policy.pair_memory_days)
        learned = learn_safety_stock(hist, policy)
        self._learned = (now, rules.version, learned)
        return learned

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


def _with_safety(a: Availability, safety_stock: int) -> Availability:
    """The ledger's row with another safety stock (the learned one), its availability recomputed."""
    return dataclasses.replace(a, safety_stock=safety_stock,
                               available=available_units(a.on_hand, a.reserved, safety_stock))
