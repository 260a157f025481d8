"""Shapes of marketplace (Ozon, Wildberries) orders and stock crossing the activity boundary.

A marketplace order is read into :class:`MarketplaceOrder` whatever the marketplace: its own id
(an Ozon posting number, a Wildberries order id), the seller's warehouse at the marketplace
(mapped to an Orkestr location by settings), and lines in Orkestr SKUs (the seller's
``offer_id`` / ``article``) with the marketplace's price in kopecks.
"""

from __future__ import annotations

from dataclasses import dataclass
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
