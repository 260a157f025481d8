"""ErpStockSyncWorkflow: stock and prices from the ERP into the ledger.

A *full* import (locations, catalog, prices, stock: paged, heartbeating, resumable) runs on a Temporal
Schedule (``erp-sync-full``, hourly). *Delta* imports of stock movements since the last version seen
run every minute in **one long-running workflow** (``erp-sync-delta``): it imports, sleeps, imports
again, and continues as new every ``runs_per_history`` rounds (or sooner when Temporal suggests it),
so the Temporal UI's list shows one delta run per few hours instead of one a minute (a schedule
starting a workflow a minute flooded it). A failed round is logged and the next one comes on time.
``worker.bootstrap`` starts it with signal-with-start (``set_interval``): a restarted worker finds it
running and only tells it the current interval. A delta with ``every_seconds=0`` runs once (tests).
Imports set ``on_hand`` only: reservations held by workflows are never touched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Awaitable, Callable

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.erp import ErpActivities
    from contracts.steps import ImportResult

from workflows.common import call

IMPORT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1),
                           maximum_attempts=10)


@dataclass(frozen=True)
class SyncInput:
    mode: str = "full"  # full | delta
    #: delta: 0 imports once; N > 0 loops, one round every N seconds
    every_seconds: int = 0
    #: a looping delta continues as new after this many rounds (a short history, a new row in the UI)
    runs_per_history: int = 240


@dataclass(frozen=True)
class SyncResult:
    mode: str
    locations: int = 0
    products: int = 0
    prices: int = 0
    stock_rows: int = 0
    version: int = 0


@workflow.defn
class ErpStockSyncWorkflow:
    def __init__(self) -> None:
        self.every_seconds = 0

    @workflow.signal
    def set_interval(self, every_seconds: int) -> None:
        """A looping delta's interval, from the next round on (bootstrap sends the current setting)."""
        if every_seconds > 0:
            self.every_seconds = every_seconds

    @workflow.run
    async def run(self, inp: SyncInput) -> SyncResult:
        if inp.mode == "delta" and inp.every_seconds > 0:
            return await self._delta_every(inp)
        if inp.mode == "delta":
            delta = await _import(ErpActivities.import_stock_delta)
            return SyncResult(mode="delta", stock_rows=delta.rows, version=delta.version)
        locations = await _import(ErpActivities.import_locations)
        products = await _import(ErpActivities.import_products)
        prices = await _import(ErpActivities.import_prices)
        stock = await _import(ErpActivities.import_stock_full)
        return SyncResult(mode="full", locations=locations.rows, products=products.rows, prices=prices.rows,
                          stock_rows=stock.rows, version=stock.version)

    async def _delta_every(self, inp: SyncInput) -> SyncResult:
        """Import the stock movements, wait the interval, again; then continue as new (never returns)."""
        self.every_seconds = self.every_seconds or inp.every_seconds
        for _ in range(inp.runs_per_history):
            try:
                await _import(ErpActivities.import_stock_delta)
            except ActivityError as err:  # the ERP is down for longer than the retries: next round on time
                workflow.logger.warning("erp delta import failed, next round in %ss: %s", self.every_seconds, err)
            if workflow.info().is_continue_as_new_suggested():
                break
            await workflow.sleep(timedelta(seconds=self.every_seconds))
        workflow.continue_as_new(dataclasses.replace(inp, every_seconds=self.every_seconds))


async def _import(step: Callable[[ErpActivities], Awaitable[ImportResult]]) -> ImportResult:
    """A long paged import: heartbeating, resumable from its last page, retried a few times."""
    return await call(step, start_to_close=timedelta(minutes=30), schedule_to_close=timedelta(hours=1),
                      heartbeat=timedelta(seconds=60), retry=IMPORT_RETRY)
