"""Availability (pure): the ledger's rule for what may be promised, and what a storefront shows
about a SKU's stock across the network.

``available_units`` / ``can_hold`` are the availability-to-promise rule of one SKU at one location.

``summarize(sku, rows, locations)`` turns ledger rows (``contracts.stock.Availability``) into the
available units per location and in total, and a sentence in Russian such as
"в наличии в 3 магазинах Москвы" or "в наличии в 5 магазинах в 2 городах и на складе
интернет-магазина". Stores count when they hand out orders (``pickup``); warehouses count as
"the online warehouse". Only locations with something available are listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from contracts.stock import Availability, LocationInfo

__all__ = ["available_units", "can_hold", "LocationStock", "SkuAvailability", "summarize", "summary_text", "CITY_GENITIVE"]


def available_units(on_hand: int, reserved: int, safety_stock: int) -> int:
    """The ledger's availability rule (ATP of one SKU at one location): units that may be promised
    to a new order = on hand − reserved − safety stock, never below zero.

    ``on_hand`` comes from the ERP, ``reserved`` is what workflows hold, ``safety_stock`` the
    units kept back from online sale (the location's, or a learned per-SKU figure, see
    ``domain.safety_stock``). ``adapters.ledger`` answers availability with this function; its
    conditional hold (``UPDATE … WHERE on_hand - reserved - safety_stock >= qty``) is the same rule
    in SQL, and ``tests/integration/test_ledger.py`` checks the two agree. The simulator
    (``sim/``) uses it too.
    """
    return max(on_hand - reserved - safety_stock, 0)


def can_hold(on_hand: int, reserved: int, safety_stock: int, qty: int) -> bool:
    """Whether ``qty`` more units may be held (the ledger's conditional UPDATE, in Python)."""
    return qty <= on_hand - reserved - safety_stock


#: "магазинах Москвы": city names in the genitive case (the demo cities; others are used as is)
CITY_GENITIVE: dict[str, str] = {
    "Москва": "Москвы", "Санкт-Петербург": "Санкт-Петербурга", "Казань": "Казани", "Екатеринбург": "Екатеринбурга",
    "Новосибирск": "Новосибирска", "Нижний Новгород": "Нижнего Новгорода", "Самара": "Самары",
    "Ростов-на-Дону": "Ростова-на-Дону", "Краснодар": "Краснодара", "Уфа": "Уфы", "Челябинск": "Челябинска",
    "Омск": "Омска", "Красноярск": "Красноярска", "Пермь": "Перми", "Воронеж": "Воронежа",
    "Волгоград": "Волгограда", "Тюмень": "Тюмени", "Сочи": "Сочи", "Калининград": "Калининграда",
    "Иркутск": "Иркутска", "Владивосток": "Владивостока", "Алматы": "Алматы", "Астана": "Астаны",
    "Шымкент": "Шымкента", "Караганда": "Караганды", "Подольск": "Подольска",
}


@dataclass(frozen=True)
class LocationStock:
    location_id: str
    name: str
    kind: str
    city: str
    region: str
    available: int
    pickup: bool


@dataclass(frozen=True)
class SkuAvailability:
    sku: str
    available: int
    locations: tuple[LocationStock, ...]
    stores: int  # stores with the SKU that hand out orders
    cities: tuple[str, ...]  # of those stores, sorted
    online: bool  # a warehouse has it
    summary: str


def _prepositional_plural(n: int, one: str, many: str) -> str:
    """"в 1 магазине", "в 21 магазине", "в 2 магазинах", "в 11 магазинах"."""
    return one if n % 10 == 1 and n % 100 != 11 else many


def summary_text(stores: int, cities: Sequence[str], online: bool) -> str:
    if stores == 0:
        return "в наличии на складе интернет-магазина" if online else "нет в наличии"
    where = f"в {stores} {_prepositional_plural(stores, 'магазине', 'магазинах')}"
    if len(cities) == 1:
        where += f" {CITY_GENITIVE.get(cities[0], cities[0])}"
    else:
        where += f" в {len(cities)} {_prepositional_plural(len(cities), 'городе', 'городах')}"
    return f"в наличии {where}" + (" и на складе интернет-магазина" if online else "")


def summarize(sku: str, rows: Sequence[Availability], locations: Mapping[str, LocationInfo]) -> SkuAvailability:
    """``rows``: the ledger's rows (any SKU; only ``sku``'s are used); unknown locations are skipped."""
    listed = []
    for r in sorted((r for r in rows if r.sku == sku and r.available > 0), key=lambda r: (-r.available, r.location_id)):
        loc = locations.get(r.location_id)
        if loc is None:
            continue
        listed.append(LocationStock(location_id=loc.id, name=loc.name, kind=loc.kind, city=loc.city,
                                    region=loc.region, available=r.available, pickup=loc.pickup))
    stores = [l for l in listed if l.kind == "store" and l.pickup]
    cities = tuple(sorted({l.city for l in stores}))
    online = any(l.kind == "warehouse" for l in listed)
    return SkuAvailability(
        sku=sku, available=sum(l.available for l in listed), locations=tuple(listed), stores=len(stores),
        cities=cities, online=online, summary=summary_text(len(stores), cities, online),
    )
