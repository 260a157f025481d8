"""Marketplace steps (Ozon, Wildberries) for the marketplace connector workflows: pull new
orders, attach marking codes, pack / add to a supply, print labels, cancel, push stock.

Each is one adapter call (or one paged read). Refusals are typed and final; a marketplace's
rate limit (HTTP 429) is retried after its ``Retry-After`` (``RateLimited``); outages retry.
Idempotency: pulls are reads; packing reads the posting first (already packed: done;
cancelled: ``POSTING_CANCELLED``), cancelling is answered as done on a repeat by the marketplaces; a stock push sends
absolute quantities, so a repeat sets the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from temporalio import activity

from activities.common import logger, rate_limits_as_delay, refusals_as
from adapters.errors import ExternalRefusal
from adapters.ozon import OzonClient
from adapters.wildberries import WildberriesClient
from contracts.marketplace import (
    CancelOrder,
    Marketplace,
    MarketplaceOrder,
    PackOrder,
    PullOrders,
    PushStock,
    StockPushResult,
)

MARKETPLACE_REFUSED = "MarketplaceRefused"
#: Ozon's unfulfilled list is read by pages of this many postings
OZON_PAGE = 100


@dataclass
class MarketplaceActivities:
    ozon: OzonClient
    wildberries: WildberriesClient

    @activity.defn
    async def pull_marketplace_orders(self, req: PullOrders) -> list[MarketplaceOrder]:
        with refusals_as(MARKETPLACE_REFUSED), rate_limits_as_delay():
            if req.marketplace == Marketplace.WILDBERRIES:
                return await self.wildberries.new_orders()
            now = datetime.now(timezone.utc)  # an activity: the real clock is fine here
            found: list[MarketplaceOrder] = []
            while True:
                page, total = await self.ozon.unfulfilled(cutoff_from=now - timedelta(days=req.lookback_days),
                                                          cutoff_to=now + timedelta(days=req.ahead_days),
                                                          limit=OZON_PAGE, offset=len(found))
                found.extend(page)
                activity.heartbeat(len(found))
                if not page or len(found) >= total:
                    return found

    @activity.defn
    async def pack_marketplace_order(self, req: PackOrder) -> list[str]:
        """Attach the marking codes, then pack (Ozon: ship; Wildberries: add to the supply).
        The order ids that result (Ozon may split a posting by package)."""
        with refusals_as(MARKETPLACE_REFUSED), rate_limits_as_delay():
            if req.marketplace == Marketplace.WILDBERRIES:
                order_id = int(req.order_id)
                for code in req.marking_codes.get(0, [])[:1]:
                    await self.wildberries.set_marking_code(order_id, code)
                await self.wildberries.add_to_supply(req.supply_id, [order_id])
                return [req.order_id]
            current = await self.ozon.get(req.order_id)
            if current.cancelled:  # the customer or Ozon cancelled meanwhile: nothing to pack
                raise ExternalRefusal("ozon", "ship", f"posting {req.order_id} was cancelled", code="POSTING_CANCELLED")
            if current.status != "awaiting_packaging":  # a retry after the first attempt packed it
                return [req.order_id]
            if req.marking_codes:
                await self.ozon.set_marking_codes(req.order_id, req.marking_codes)
            try:
                numbers = await self.ozon.ship(req.order_id, list(req.lines))
            except ExternalRefusal as exc:
                if exc.code != "POSTING_ALREADY_SHIPPED":
                    raise
                numbers = [req.order_id]  # a retry after the first attempt packed it
        logger().info("marketplace.packed", marketplace=str(req.marketplace), order_id=req.order_id, postings=numbers)
        return numbers

    @activity.defn
    async def marketplace_label(self, req: CancelOrder) -> bytes:
        """The label of a packed Ozon posting (PDF) or a Wildberries order's sticker (PNG)."""
        with refusals_as(MARKETPLACE_REFUSED), rate_limits_as_delay():
            if req.marketplace == Marketplace.WILDBERRIES:
                return (await self.wildberries.stickers([int(req.order_id)]))[int(req.order_id)]
            return await self.ozon.package_label([req.order_id])

    @activity.defn
    async def cancel_marketplace_order(self, req: CancelOrder) -> None:
        with refusals_as(MARKETPLACE_REFUSED), rate_limits_as_delay():
            if req.marketplace == Marketplace.WILDBERRIES:
                await self.wildberries.cancel(int(req.order_id))
            else:
                await self.ozon.cancel(req.order_id, message=req.reason)

    @activity.defn
    async def push_marketplace_stock(self, req: PushStock) -> StockPushResult:
        """One batch (Ozon ≤ 100, Wildberries ≤ 1000 levels); the caller batches and paces."""
        with refusals_as(MARKETPLACE_REFUSED), rate_limits_as_delay():
            if req.marketplace == Marketplace.WILDBERRIES:
                return await self.wildberries.push_stocks(req.warehouse_id, list(req.levels))
            return await self.ozon.push_stocks(list(req.levels))
