"""ErpStockSyncWorkflow: stock and prices from the ERP into the ledger, run by Temporal Schedules.

A *full* import (locations, catalog, prices, stock: paged, heartbeating, resumable) runs on one
schedule; *delta* imports of stock movements since the last version seen run on a shorter one.
Imports set ``on_hand`` only: reservations held by workflows are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
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
        long_import = {"start_to_close": timedelta(minutes=30), "schedule_to_close": timedelta(hours=1),
                       "heartbeat": timedelta(seconds=60), "retry": IMPORT_RETRY}
        if inp.mode == "delta":
            delta = await call("import_stock_delta", result_type=ImportResult, **long_import)
            return SyncResult(mode="delta", stock_rows=delta.rows, version=delta.version)
        locations = await call("import_locations", result_type=ImportResult, **long_import)
        products = await call("import_products", result_type=ImportResult, **long_import)
        prices = await call("import_prices", result_type=ImportResult, **long_import)
        stock = await call("import_stock_full", result_type=ImportResult, **long_import)
        return SyncResult(mode="full", locations=locations.rows, products=products.rows, prices=prices.rows,
                          stock_rows=stock.rows, version=stock.version)
