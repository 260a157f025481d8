"""Fiscal receipts (54-FZ) through the fiscal service: register one, read its state.

Each receipt's ``external_id`` ("{order_id}:{purpose}") is its idempotency key, so a retried
activity registers it once (the service answers a repeat with the first receipt).
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.common import logger, refusals_as
from adapters.fiscal import FiscalClient
from contracts.fiscal import FiscalReport, ReceiptRegistration, ReceiptRequest

FISCAL_REFUSED = "FiscalRefused"


@dataclass
class FiscalActivities:
    fiscal: FiscalClient

    @activity.defn
    async def register_receipt(self, receipt: ReceiptRequest) -> ReceiptRegistration:
        with refusals_as(FISCAL_REFUSED):
            registration = await self.fiscal.register(receipt)
        logger().info("fiscal.receipt_registered", external_id=receipt.external_id, uuid=registration.uuid,
                      repeated=registration.repeated)
        return registration

    @activity.defn
    async def receipt_status(self, receipt_uuid: str) -> FiscalReport:
        with refusals_as(FISCAL_REFUSED):
            return await self.fiscal.report(receipt_uuid)
