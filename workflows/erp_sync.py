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

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.steps import ImportResult

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


LONG_IMPORT = {"start_to_close": timedelta(minutes=30), "schedule_to_close": timedelta(hours=1),
               "heartbeat": timedelta(seconds=60), "retry": IMPORT_RETRY}


@workflow.defn
class ErpStockSyncWorkflow:
    def __init__(self) -> None:
        self._every_seconds = 0

    @workflow.signal
    def set_interval(self, every_seconds: int) -> None:
        """A looping delta's interval, from the next round on (bootstrap sends the current setting)."""
        if every_seconds > 0:
            self._every_seconds = every_seconds

    @workflow.run
    async def run(self, inp: SyncInput) -> SyncResult:
        long_import = LONG_IMPORT
        if inp.mode == "delta" and inp.every_seconds > 0:
            return await self._delta_every(inp)
        if inp.mode == "delta":
            delta = await call("import_stock_delta", result_type=ImportResult, **long_import)
            return SyncResult(mode="delta", stock_rows=delta.rows, version=delta.version)
        locations = await call("import_locations", result_type=ImportResult, **long_import)
        products = await call("import_products", result_type=ImportResult, **long_import)
        prices = await call("import_prices", result_type=ImportResult, **long_import)
        stock = await call("import_stock_full", result_type=ImportResult, **long_import)
        return SyncResult(mode="full", locations=locations.rows, products=products.rows, prices=prices.rows,
                          stock_rows=stock.rows, version=stock.version)

    async def _delta_every(self, inp: SyncInput) -> SyncResult:
        """Import the stock movements, wait the interval, again; then continue as new (never returns)."""
        self._every_seconds = self._every_seconds or inp.every_seconds
        for _ in range(inp.runs_per_history):
            try:
                await call("import_stock_delta", result_type=ImportResult, **LONG_IMPORT)
            except ActivityError as err:  # the ERP is down for longer than the retries: next round on time
                workflow.logger.warning("erp delta import failed, next round in %ss: %s", self._every_seconds, err)
            if workflow.info().is_continue_as_new_suggested():
                break
            await workflow.sleep(timedelta(seconds=self._every_seconds))
        workflow.continue_as_new(dataclasses.replace(inp, every_seconds=self._every_seconds))
