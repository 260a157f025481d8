"""domain.availability: what the storefront says about a SKU's stock across the network."""

from __future__ import annotations

from domain.availability import summarize, summary_text
from contracts.stock import Availability, LocationInfo


def loc(id_: str, city: str, kind: str = "store", pickup: bool = True) -> LocationInfo:
    return LocationInfo(id=id_, name=f"{city} {id_}", kind=kind, city=city, region="RU-XX", lat=0, lon=0, pickup=pickup)


LOCS = {l.id: l for l in (
    loc("MSK-001", "Москва"), loc("MSK-002", "Москва"), loc("MSK-003", "Москва"), loc("SPB-001", "Санкт-Петербург"),
    loc("WH-ONLINE", "Подольск", kind="warehouse", pickup=False), loc("MSK-009", "Москва", pickup=False),
)}


def row(sku: str, loc_id: str, available: int) -> Availability:
    return Availability(sku=sku, location_id=loc_id, on_hand=available + 1, reserved=1, safety_stock=0,
                        available=available)


def test_three_moscow_stores() -> None:
    rows = [row("A", "MSK-001", 2), row("A", "MSK-002", 1), row("A", "MSK-003", 5), row("A", "SPB-001", 0),
            row("B", "SPB-001", 9)]
    a = summarize("A", rows, LOCS)
    assert a.summary == "в наличии в 3 магазинах Москвы"
    assert a.available == 8 and a.stores == 3 and a.cities == ("Москва",) and not a.online
    assert [l.location_id for l in a.locations] == ["MSK-003", "MSK-001", "MSK-002"]  # most first, no zeros


def test_stores_in_several_cities_and_the_warehouse() -> None:
    rows = [row("A", "MSK-001", 1), row("A", "SPB-001", 1), row("A", "WH-ONLINE", 30)]
    a = summarize("A", rows, LOCS)
    assert a.summary == "в наличии в 2 магазинах в 2 городах и на складе интернет-магазина"
    assert a.available == 32 and a.online


def test_warehouse_only_nothing_and_stores_that_do_not_hand_out() -> None:
    assert summarize("A", [row("A", "WH-ONLINE", 3)], LOCS).summary == "в наличии на складе интернет-магазина"
    assert summarize("A", [row("A", "MSK-001", 0)], LOCS).summary == "нет в наличии"
    assert summarize("Z", [], LOCS).available == 0
    no_pickup = summarize("A", [row("A", "MSK-009", 4)], LOCS)
    assert no_pickup.stores == 0 and no_pickup.available == 4 and no_pickup.summary == "нет в наличии"
    assert summarize("A", [row("A", "GONE-1", 4)], LOCS).available == 0  # unknown location skipped


def test_russian_plural_forms() -> None:
    assert summary_text(1, ["Москва"], False) == "в наличии в 1 магазине Москвы"
    assert summary_text(21, ["Казань"], False) == "в наличии в 21 магазине Казани"
    assert summary_text(11, ["Москва"], False) == "в наличии в 11 магазинах Москвы"
    assert summary_text(4, ["Алматы"], True) == "в наличии в 4 магазинах Алматы и на складе интернет-магазина"
    assert summary_text(5, ["Урюпинск"], False) == "в наличии в 5 магазинах Урюпинск"  # no genitive known: as is
