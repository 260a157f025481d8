"""Stock shapes crossing the workflow boundary."""

from __future__ import annotations

from dataclasses import dataclass

from domain.sourcing import SourcingWeights


@dataclass(frozen=True)
class Allocation:
    """Units of one SKU held at one location for one line. ``key`` makes holding idempotent."""

    key: str
    sku: str
    location_id: str
    qty: int


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


def line_key(owner: str, pos_id: int, location_id: str, suffix: str) -> str:
    """A hold of one order line at one location; ``suffix`` tells which step took it (``e<n>`` an
    edit, ``s<n>``/``v<n>`` a substitution, ``m<n>`` a move, ``x<n>`` an edit's interim extra units).
    Same shape as :func:`reservation_key`: the line's position is third from the end."""
    return f"{owner}:{pos_id}:{location_id}:{suffix}"


def line_pos(key: str) -> int:
    """The order line a hold's key belongs to (:func:`reservation_key` / :func:`line_key` shape)."""
    return int(key.split(":")[-3])
