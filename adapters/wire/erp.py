"""Shapes exchanged with the ERP (1C-like), as Orkestr sees them.

Frozen dataclasses, no I/O: they cross the workflow/activity boundary. Money is integer
minor units (kopecks, tiyn) with an ISO currency; the adapter converts 1C's decimal
roubles at the boundary (``shared/reference/erp-pos.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ErpLocation:
    """A warehouse or store from ``Catalog_Warehouses``."""

    id: str  # "WH-ONLINE", "MSK-014"
    name: str
    kind: str  # "warehouse" | "store"
    city: str
    region: str  # ISO 3166-2, e.g. "RU-MOW", "KZ-ALA"
    lat: float
    lon: float
    ship_from_store: bool
    pickup: bool
    opens_at: str  # "HH:MM" local time
    closes_at: str
    daily_capacity: int
    safety_stock: int
    pickup_window_days: int
    currency: str = "RUB"
    country: str = "RU"
    utc_offset: int = 3


@dataclass(frozen=True)
class ErpSku:
    """A characteristic (size/colour variant) of a nomenclature item."""

    sku: str  # "P000123-M-BLK"
    barcode: str
    size: str
    color: str


@dataclass(frozen=True)
class ErpProduct:
    """A ``Catalog_Nomenclature`` item with its SKUs."""

    id: str
    name: str
    brand: str
    category: str
    skus: tuple[ErpSku, ...]
    #: goods under mandatory Честный ЗНАК marking (``Catalog_Nomenclature.Marked``)
    marked: bool = False


@dataclass(frozen=True)
class ErpPrice:
    sku: str
    price_type: str  # "Retail" | "Sale"
    amount: int  # minor units
    currency: str  # "RUB" | "KZT"


@dataclass(frozen=True)
class StockRow:
    """Absolute quantity on hand of one SKU at one location."""

    sku: str
    location_id: str
    quantity: int


@dataclass(frozen=True)
class ProductPage:
    """One page of ``Catalog_Nomenclature``; ``total`` products in all.

    (Concrete page types rather than a generic ``Page[T]``: Temporal's default data
    converter cannot decode a type-variable field.)"""

    items: tuple[ErpProduct, ...]
    total: int


@dataclass(frozen=True)
class PricePage:
    """One page of ``InformationRegister_Prices``; ``total`` price rows in all."""

    items: tuple[ErpPrice, ...]
    total: int


@dataclass(frozen=True)
class StockPage:
    """One page of the stock balance and the ERP stock version it was read at.

    A (sku, location) pair absent from the full snapshot has quantity 0. When paging a
    full snapshot, keep the version of the *first* page and then apply
    ``stock_changes(since_version=that)``: changes made while paging are covered.
    """

    items: tuple[StockRow, ...]
    version: int
    total: int = 0


@dataclass(frozen=True)
class StockDelta:
    """Stock changes after a version, as absolute quantities (applying twice is harmless).

    ``version`` is the version the reader is up to date with after applying ``items``;
    if ``len(items) == top`` there may be more: ask again with ``since_version=version``.
    """

    items: tuple[StockRow, ...]
    version: int


@dataclass(frozen=True)
class ErpOrderItem:
    sku: str
    quantity: int
    price: int  # minor units per unit, after discounts
    amount: int  # minor units for the line


@dataclass(frozen=True)
class ErpOrderDoc:
    """An order exported to the ERP as ``Document_CustomerOrder`` (idempotent by ``number``)."""

    number: str
    date: datetime
    currency: str
    amount: int  # minor units
    customer_name: str
    customer_phone: str
    channel: str  # "web" | "app" | "store" | marketplace code
    items: tuple[ErpOrderItem, ...] = field(default_factory=tuple)
    customer_email: str = ""
    location_id: str = ""  # where it ships or is picked up from, if known
    comment: str = ""
