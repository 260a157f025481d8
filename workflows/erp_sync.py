"""ErpStockSyncWorkflow: stock and prices from the ERP into the ledger, run by Temporal Schedules.

A *full* import (locations, catalog, prices, stock: paged, heartbeating, resumable) runs on one
schedule; *delta* imports of stock movements since the last version seen run on a shorter one.
Imports set ``on_hand`` only: reservations held by workflows are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Awaitable, Callable

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.erp import ErpActivities
    from contracts.steps import ImportResult

from workflows.common import call

IMPORT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1),
                           maximum_attempts=10)


@dataclass(frozen=True)
class SyncInput:
    mode: str = "full"  # full | delta


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
    @workflow.run
    async def run(self, inp: SyncInput) -> SyncResult:
        if inp.mode == "delta":
            delta = await _import(ErpActivities.import_stock_delta)
            return SyncResult(mode="delta", stock_rows=delta.rows, version=delta.version)
        locations = await _import(ErpActivities.import_locations)
        products = await _import(ErpActivities.import_products)
        prices = await _import(ErpActivities.import_prices)
        stock = await _import(ErpActivities.import_stock_full)
        return SyncResult(mode="full", locations=locations.rows, products=products.rows, prices=prices.rows,
                          stock_rows=stock.rows, version=stock.version)


async def _import(step: Callable[[ErpActivities], Awaitable[ImportResult]]) -> ImportResult:
    """A long paged import: heartbeating, resumable from its last page, retried a few times."""
    return await call(step, start_to_close=timedelta(minutes=30), schedule_to_close=timedelta(hours=1),
                      heartbeat=timedelta(seconds=60), retry=IMPORT_RETRY)
