"""Shapes of marketplace (Ozon, Wildberries) orders and stock crossing the activity boundary.

A marketplace order is read into :class:`MarketplaceOrder` whatever the marketplace: its own id
(an Ozon posting number, a Wildberries order id), the seller's warehouse at the marketplace
(mapped to an Orkestr location by settings), and lines in Orkestr SKUs (the seller's
``offer_id`` / ``article``) with the marketplace's price in kopecks. The requests of
``activities.marketplaces`` (pull, pack, label / cancel, push stock) are here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Marketplace(StrEnum):
    OZON = "ozon"
    WILDBERRIES = "wildberries"


@dataclass(frozen=True)
class MarketplaceLine:
    sku: str  # the seller's offer_id / article = Orkestr's SKU
    quantity: int
    price: int  # kopecks per unit
    #: the marketplace's own id of the item (Ozon sku, Wildberries chrtId)
    item_id: int
    #: the unit needs a Честный ЗНАК code before it ships
    marking_required: bool = False
    marking_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class MarketplaceOrder:
    marketplace: Marketplace
    order_id: str  # posting number (Ozon) / order id (Wildberries)
    warehouse_id: int
    status: str  # the marketplace's own status, e.g. awaiting_packaging, new/waiting
    lines: tuple[MarketplaceLine, ...]
    created_at: str = ""
    ship_by: str | None = None
    cancelled: bool = False
    cancel_reason: str = ""
    #: Wildberries: the supply the order is on
    supply_id: str = ""


@dataclass(frozen=True)
class StockLevel:
    sku: str
    warehouse_id: int
    quantity: int
    item_id: int | None = None  # Ozon product_id / Wildberries chrtId when the push needs it


@dataclass(frozen=True)
class StockPushFailure:
    sku: str
    warehouse_id: int
    code: str
    message: str


@dataclass(frozen=True)
class StockPushResult:
    updated: int
    failed: tuple[StockPushFailure, ...] = ()


# ---------------------------------------------------------------- activity requests (activities.marketplaces)
@dataclass(frozen=True)
class PullOrders:
    marketplace: Marketplace
    #: Ozon: postings whose ship-by date is within [now − lookback, now + ahead]
    lookback_days: int = 7
    ahead_days: int = 14


@dataclass(frozen=True)
class PackOrder:
    marketplace: Marketplace
    order_id: str
    #: Ozon: [(ozon sku, quantity)]; Wildberries: unused (one unit an order)
    lines: tuple[tuple[int, int], ...] = ()
    #: marking codes: Ozon {ozon sku: [code per unit]}, Wildberries {0: [the unit's code]}
    marking_codes: dict[int, list[str]] = field(default_factory=dict)
    #: Wildberries: the open supply the order goes on
    supply_id: str = ""


@dataclass(frozen=True)
class CancelOrder:
    marketplace: Marketplace
    order_id: str
    reason: str = ""


@dataclass(frozen=True)
class PushStock:
    marketplace: Marketplace
    levels: tuple[StockLevel, ...]
    #: Wildberries pushes per seller warehouse
    warehouse_id: int = 0
