"""Stock shapes crossing the workflow boundary."""

from __future__ import annotations

from dataclasses import dataclass

from models.sourcing import SourcingWeights


@dataclass(frozen=True)
class Allocation:
    """Units of one SKU held at one location for one line. ``key`` makes holding idempotent."""

    key: str
    sku: str
    location_id: str
    qty: int


def available_units(on_hand: int, reserved: int, safety_stock: int) -> int:
    """The ledger's availability rule (ATP of one SKU at one location): units that may be promised
    to a new order = on hand − reserved − safety stock, never below zero.

    ``on_hand`` comes from the ERP, ``reserved`` is what workflows hold, ``safety_stock`` the
    units kept back from online sale (the location's, or a learned per-SKU figure, see
    ``models.safety_stock``). ``adapters.ledger`` answers availability with this function; its
    conditional hold (``UPDATE … WHERE on_hand - reserved - safety_stock >= qty``) is the same rule
    in SQL, and ``tests/integration/test_ledger.py`` checks the two agree. The simulator
    (``sim/``) uses it too.
    """
    return max(on_hand - reserved - safety_stock, 0)


def can_hold(on_hand: int, reserved: int, safety_stock: int, qty: int) -> bool:
    """Whether ``qty`` more units may be held (the ledger's conditional UPDATE, in Python)."""
    return qty <= on_hand - reserved - safety_stock


@dataclass(frozen=True)
class Availability:
    sku: str
    location_id: str
    on_hand: int
    reserved: int
    safety_stock: int
    available: int


@dataclass(frozen=True)
class StockLevel:
    sku: str
    location_id: str
    on_hand: int


@dataclass(frozen=True)
class LocationInfo:
    id: str
    name: str
    kind: str
    city: str
    region: str
    lat: float
    lon: float
    ship_from_store: bool = True
    pickup: bool = True
    opens_at: str | None = None
    closes_at: str | None = None
    daily_capacity: int | None = None
    safety_stock: int = 0
    pickup_window_days: int = 3
    assembly_sla_minutes: int | None = None


@dataclass(frozen=True)
class StockView:
    """What sourcing needs: the locations and what each has available of the cart's SKUs."""

    locations: list[LocationInfo]
    available: list[Availability]
    #: the sourcing rule set in force when the view was read (``rules/active.toml``); None = defaults
    weights: SourcingWeights | None = None
    rules_version: int | None = None
    #: shipments given to each location today (read only when the rules weigh capacity)
    assigned_today: dict[str, int] | None = None


def reservation_key(owner: str, pos_id: int, location_id: str, attempt: int = 1) -> str:
    return f"{owner}:{pos_id}:{location_id}:{attempt}"
