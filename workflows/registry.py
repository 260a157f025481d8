"""Every workflow type Orkestr runs: the worker registers them, the replay tools and the golden
histories replay against them. (Deterministic module: imports only workflow definitions.)"""

from __future__ import annotations

from workflows.erp_sync import ErpStockSyncWorkflow
from workflows.fulfillment import FulfillmentWorkflow
from workflows.order import OrderWorkflow
from workflows.reservation import ReservationWorkflow
from workflows.returns import ReturnWorkflow

WORKFLOWS: list[type] = [OrderWorkflow, FulfillmentWorkflow, ErpStockSyncWorkflow, ReturnWorkflow, ReservationWorkflow]
