"""From an order and a view of network stock to a sourcing plan (pure; runs inside workflows)."""

from __future__ import annotations

from datetime import datetime, time

from contracts.order import DeliveryMethod, Delivery, OrderInput
from domain.sourcing import (
    DEFAULT_WEIGHTS,
    LocationKind,
    Destination,
    SourceLocation,
    SourcingLine,
    SourcingMode,
    SourcingPlan,
    SourcingRequest,
    source,
)
from contracts.stock import LocationInfo, StockView

#: UTC offsets of the demo regions (Russia and Kazakhstan keep no summer time)
REGION_UTC_OFFSET_MIN: dict[str, int] = {
    "RU-KGD": 120, "RU-MOW": 180, "RU-MOS": 180, "RU-SPE": 180, "RU-LEN": 180, "RU-TA": 180,
    "RU-NIZ": 180, "RU-VOR": 180, "RU-ROS": 180, "RU-KDA": 180, "RU-VGG": 240, "RU-SAM": 240,
    "RU-BA": 300, "RU-PER": 300, "RU-SVE": 300, "RU-CHE": 300, "RU-TYU": 300, "RU-OMS": 360,
    "RU-NVS": 420, "RU-KYA": 420, "RU-IRK": 480, "RU-KHA": 600, "RU-PRI": 600,
    "KZ-ALA": 300, "KZ-AST": 300, "KZ-SHY": 300, "KZ-KAR": 300,
}

#: what delivery costs the customer until per-region carrier rules price it (kopecks, per shipment)
DEFAULT_DELIVERY_PRICE: dict[DeliveryMethod, int] = {
    DeliveryMethod.courier: 39_900,
    DeliveryMethod.pickup_point: 19_900,
    DeliveryMethod.post: 29_900,
    DeliveryMethod.pickup: 0,
}


def _hhmm(value: str | None) -> time | None:
    if not value:
        return None
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


def source_location(loc: LocationInfo, assigned_today: int = 0) -> SourceLocation:
    return SourceLocation(
        id=loc.id, name=loc.name, kind=LocationKind(loc.kind), city=loc.city, region=loc.region, lat=loc.lat,
        lon=loc.lon,
        ship_from_store=loc.ship_from_store, pickup=loc.pickup, opens_at=_hhmm(loc.opens_at),
        closes_at=_hhmm(loc.closes_at), daily_capacity=loc.daily_capacity, assigned_today=assigned_today,
        utc_offset_minutes=REGION_UTC_OFFSET_MIN.get(loc.region),
    )


def destination(delivery: Delivery, locations: list[LocationInfo]) -> Destination:
    """The customer's region and city; coordinates borrowed from a location in the same city."""
    if delivery.method == DeliveryMethod.pickup and delivery.store_id:
        store = next((l for l in locations if l.id == delivery.store_id), None)
        if store:
            return Destination(region=store.region, city=store.city, lat=store.lat, lon=store.lon)
    addr = delivery.address
    if addr is None:
        return Destination(region="", city="")
    same_city = next((l for l in locations if l.city.casefold() == addr.city.casefold()), None)
    return Destination(region=addr.region, city=addr.city,
                       lat=same_city.lat if same_city else None, lon=same_city.lon if same_city else None)


def plan_shipments(inp: OrderInput, view: StockView, *, now: datetime,
                   exclude: frozenset[str] = frozenset()) -> SourcingPlan:
    return source(sourcing_request(inp, view, now=now, exclude=exclude))


def sourcing_request(inp: OrderInput, view: StockView, *, now: datetime,
                     exclude: frozenset[str] = frozenset()) -> SourcingRequest:
    """The ``domain.sourcing`` request for an order against a stock view (pure)."""
    pickup = inp.delivery.method == DeliveryMethod.pickup
    return SourcingRequest(
        lines=[SourcingLine(pos_id=l.pos_id, sku=l.sku, qty=l.qty) for l in inp.lines],
        locations=[source_location(l, (view.assigned_today or {}).get(l.id, 0)) for l in view.locations],
        available={(a.sku, a.location_id): a.available for a in view.available},
        destination=destination(inp.delivery, view.locations),
        mode=SourcingMode.PICKUP if pickup else SourcingMode.SHIP,
        pickup_store_id=inp.delivery.store_id if pickup else None,
        now=now,
        exclude=exclude,
        weights=view.weights or DEFAULT_WEIGHTS,
    )


def delivery_price(delivery: Delivery, shipments: int) -> int:
    """The customer pays delivery once per order, whatever the number of shipments it splits into:
    the price of the option quoted from the carrier rules when there is one, else the default."""
    if delivery.price is not None:
        return delivery.price
    return DEFAULT_DELIVERY_PRICE.get(delivery.method, 0)
