"""The chain the simulator runs on, and how the people and systems around Orkestr behave.

``Chain`` is the network (locations as ``contracts.stock.LocationInfo``, the catalogue, the stock
each location should hold) built from the demo data (``sandbox.demo_data``) or from a database
(``sim.replay``). ``Behaviour`` holds every number of the world that Orkestr does not control:
how often stores sell, how wrong the ERP is, how fast staff pick, how customers answer. Its
defaults are the calibrated baseline (the README's "Chain simulator" section states each number,
why it is plausible and what it was calibrated against).
``Policy`` is what Orkestr controls: the six configurations compared side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

from domain.safety_stock import SafetyStockPolicy
from domain.sourcing import DEFAULT_WEIGHTS, SourcingWeights
from contracts.stock import LocationInfo

__all__ = ["Chain", "Behaviour", "Policy", "CONFIGURATIONS", "chain_from_demo", "pick_configurations", "OTHER_CITIES"]


@dataclass(frozen=True)
class Chain:
    """The network and catalogue. ``target``: (sku, location id) → units the location is
    stocked up to (the planogram; what the weekly delivery tops the ERP record up to)."""

    locations: tuple[LocationInfo, ...]
    utc_offset_min: dict[str, int]  # location id → minutes east of UTC
    skus: tuple[str, ...]
    product_of: dict[str, str]  # sku → product id
    size_of: dict[str, str]
    color_of: dict[str, str]
    products: tuple[str, ...]  # in catalogue order
    sizes_of_product: dict[str, tuple[str, ...]]  # product → its sizes, smallest first
    target: dict[tuple[str, str], int]


def chain_from_demo(seed: int = 42, products: int = 2000, small: bool = False) -> Chain:
    """The demo chain: ``sandbox.demo_data.generate`` (100 stores in 25 cities + WH-ONLINE, ≈10 000 SKUs)."""
    from sandbox.demo_data import generate

    data = generate(seed, products, small)
    locs = tuple(
        LocationInfo(id=l.id, name=l.name, kind=l.kind, city=l.city, region=l.region, lat=l.lat, lon=l.lon,
                     ship_from_store=l.ship_from_store, pickup=l.pickup, opens_at=l.opens_at, closes_at=l.closes_at,
                     daily_capacity=l.daily_capacity, safety_stock=l.safety_stock,
                     pickup_window_days=l.pickup_window_days)
        for l in data.locations
    )
    sizes: dict[str, tuple[str, ...]] = {}
    for p in data.products:
        seen: list[str] = []
        for s in p.skus:
            if s.size not in seen:
                seen.append(s.size)
        sizes[p.id] = tuple(seen)
    return Chain(
        locations=locs,
        utc_offset_min={l.id: l.utc_offset * 60 for l in data.locations},
        skus=tuple(s.sku for p in data.products for s in p.skus),
        product_of={s.sku: p.id for p in data.products for s in p.skus},
        size_of={s.sku: s.size for p in data.products for s in p.skus},
        color_of={s.sku: s.color for p in data.products for s in p.skus},
        products=tuple(p.id for p in data.products),
        sizes_of_product=sizes,
        target=dict(data.stock),
    )


#: online customers outside the store cities (region, city, lat, lon, utc offset h): ~20 % of orders
OTHER_CITIES: tuple[tuple[str, str, float, float, int], ...] = (
    ("RU-YAR", "Ярославль", 57.6261, 39.8845, 3), ("RU-TUL", "Тула", 54.1930, 37.6173, 3),
    ("RU-RYA", "Рязань", 54.6269, 39.6916, 3), ("RU-SAR", "Саратов", 51.5331, 46.0342, 4),
    ("RU-ALT", "Барнаул", 53.3548, 83.7698, 7), ("RU-KHA", "Хабаровск", 48.4802, 135.0719, 10),
    ("RU-UD", "Ижевск", 56.8526, 53.2045, 4), ("RU-TVE", "Тверь", 56.8587, 35.9176, 3),
)


@dataclass(frozen=True)
class Behaviour:
    """The world around Orkestr. Ranges ``(lo, hi)`` are drawn uniformly per store, so stores differ.

    Times are minutes. The defaults are the calibrated baseline (README, "Chain simulator")."""

    # online demand
    online_orders_per_day: float = 1200.0
    other_city_share: float = 0.20  # customers in a city with no store
    pickup_share: float = 0.15  # click & collect, of customers in a store city
    lines_per_order: tuple[float, ...] = (0.62, 0.25, 0.09, 0.04)  # P(1 line), P(2), …
    two_units_share: float = 0.05
    product_popularity_exponent: float = 0.9  # Zipf over products (offline and online alike)
    unpaid_share: float = 0.05  # never paid: held for the payment window, then released
    payment_window_min: float = 20.0
    payment_median_min: float = 3.0

    # offline sales and stock that is wrong in the ERP
    offline_units_per_store_day: tuple[float, float] = (60.0, 200.0)
    record_error_share: tuple[float, float] = (0.3, 0.6)  # stocked pairs whose record is wrong at the start
    record_error_overstated: float = 0.65  # of wrong records: the ERP says more than there is
    misplaced_share: tuple[float, float] = (0.04, 0.16)  # units on the floor that cannot be found
    misplaced_found_days: float = 3.0  # mean time until a misplaced unit turns up again
    shrink_units_per_store_day: tuple[float, float] = (0.3, 1.5)  # theft, damage: gone, no record
    misscan_share: tuple[float, float] = (0.005, 0.03)  # a sale scanned as a sibling SKU (other size/colour)
    receiving_error_share: tuple[float, float] = (0.01, 0.03)  # delivered units booked but not in the box
    erp_upload_every_min: float = 60.0  # store POS → ERP exchange
    erp_upload_lag_min: float = 30.0  # … and the time the ERP takes to post what arrived
    spot_count_after_shortage: float = 0.4  # staff recount the SKU after "not found" and correct the ERP
    replenish_every_days: float = 3.5  # deliveries (twice a week) top the ERP record up to the planogram

    # people
    store_pick_mean_min: tuple[float, float] = (25.0, 110.0)  # per store, lognormal σ 0.6
    warehouse_pick_mean_min: float = 40.0
    handover_after_min: float = 180.0  # courier pick-up after assembly: the sale is posted then
    operator_hours_msk: tuple[int, int] = (9, 21)
    operator_answer_median_min: float = 20.0
    substitute_accepted: float = 0.35  # the customer takes another colour / the next size
    remove_rather_than_cancel: float = 0.6  # no substitute: keep the rest of the order

    def store_ranges(self) -> dict[str, tuple[float, float]]:
        return {k: getattr(self, k) for k in ("offline_units_per_store_day", "record_error_share", "misplaced_share",
                                              "shrink_units_per_store_day", "misscan_share", "store_pick_mean_min",
                                              "receiving_error_share")}


@dataclass(frozen=True)
class Policy:
    """What Orkestr does: one configuration of the comparison."""

    key: str
    label: str
    full_import_every_min: float = 60.0  # ERP full import into the ledger
    delta_every_min: float | None = None  # ERP stock deltas (None: none)
    pos_events: bool = False  # store sales reach the ledger from the POS in near real time
    learned_safety: SafetyStockPolicy | None = None  # domain.safety_stock
    auto_resource: bool = False  # a shortage / a late store moves the shipment before a person is asked
    weights: SourcingWeights = DEFAULT_WEIGHTS
    #: the locations' configured safety stock (the demo chain keeps 1 unit back at 2 stores in 3);
    #: off in the comparison, whose baseline has none
    configured_safety: bool = False

    def with_rules(self, weights: SourcingWeights, safety: SafetyStockPolicy | None) -> "Policy":
        return replace(self, weights=weights, learned_safety=safety)


_LEARNED = SafetyStockPolicy()

CONFIGURATIONS: dict[str, Policy] = {
    "a": Policy("a", "baseline: ERP full import hourly, no safety stock, no re-sourcing"),
    "b": Policy("b", "delta sync every minute", delta_every_min=1.0),
    "c": Policy("c", "POS sale events in near real time", pos_events=True),
    "d": Policy("d", "safety stock per store × SKU learned from shortages", learned_safety=_LEARNED),
    "e": Policy("e", "automatic re-sourcing before a person", auto_resource=True),
    "f": Policy("f", "all together", delta_every_min=1.0, pos_events=True, learned_safety=_LEARNED,
                auto_resource=True),
}


def pick_configurations(keys: Sequence[str] | None) -> list[Policy]:
    keys = list(keys or CONFIGURATIONS)
    unknown = [k for k in keys if k not in CONFIGURATIONS]
    if unknown:
        raise ValueError(f"configs: unknown {unknown}; known: {', '.join(CONFIGURATIONS)}")
    return [CONFIGURATIONS[k] for k in keys]

