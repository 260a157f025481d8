"""Demo data: deterministic, realistic sizes and a stock spread like a real chain."""

from __future__ import annotations

import re
import time

import pytest

from sandbox.demo_data import WAREHOUSE_ID, DemoData, ean13, generate


@pytest.fixture(scope="module")
def full() -> DemoData:
    return generate(42, 2000)


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = generate(7, 300), generate(7, 300), generate(8, 300)
    assert a.products == b.products and a.locations == b.locations and a.prices == b.prices and a.stock == b.stock
    assert a.products != c.products or a.stock != c.stock


def test_full_set_is_generated_quickly() -> None:
    started = time.perf_counter()
    generate(123, 2000)
    assert time.perf_counter() - started < 2.0


def test_full_set_sizes(full: DemoData) -> None:
    assert 18 <= len(full.brands) <= 22
    assert len(full.products) == 2000
    assert 8_000 <= len(full.skus) <= 12_000
    stores = full.stores
    assert 90 <= len(stores) <= 110
    assert 22 <= len({s.city for s in stores}) <= 28
    assert {s.region[:2] for s in stores} == {"RU", "KZ"}
    assert {"Москва", "Санкт-Петербург", "Казань", "Алматы", "Астана"} <= {s.city for s in stores}


def test_ids_are_unique_and_url_safe(full: DemoData) -> None:
    skus = [s.sku for s in full.skus]
    assert len(set(skus)) == len(skus)
    assert all(re.fullmatch(r"P\d{6}-[A-Z0-9]+-[A-Z]{3}", s) for s in skus)
    barcodes = [s.barcode for s in full.skus]
    assert len(set(barcodes)) == len(barcodes)
    assert all(len(b) == 13 and ean13(b[:12]) == b for b in barcodes)
    ids = [loc.id for loc in full.locations]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Z]{3}-\d{3}", i) for i in ids if i != WAREHOUSE_ID)


def test_locations(full: DemoData) -> None:
    wh = full.location_index[WAREHOUSE_ID]
    assert wh.kind == "warehouse" and not wh.pickup and wh.ship_from_store
    stores = full.stores
    assert all(s.pickup for s in stores)
    shipping = sum(s.ship_from_store for s in stores)
    assert len(stores) // 2 < shipping < len(stores)  # most, not all
    assert all(s.safety_stock in (0, 1) and s.daily_capacity > 0 and s.pickup_window_days >= 3 for s in stores)
    assert sum(s.pickup_window_days == 3 for s in stores) > len(stores) // 2
    moscow = [s for s in stores if s.region == "RU-MOW"]
    assert moscow and all(55.4 < s.lat < 56.1 and 37.2 < s.lon < 38.0 for s in moscow)
    almaty = [s for s in stores if s.region == "KZ-ALA"]
    assert almaty and all(s.currency == "KZT" and 42.9 < s.lat < 43.5 for s in almaty)
    assert all(re.fullmatch(r"\d\d:\d\d", s.opens_at) and s.opens_at < s.closes_at for s in stores)


def test_every_sku_has_a_retail_price_and_some_have_a_sale_price(full: DemoData) -> None:
    retail = {(p.sku, p.currency): p.amount for p in full.prices if p.price_type == "Retail"}
    sale = {(p.sku, p.currency): p.amount for p in full.prices if p.price_type == "Sale"}
    for s in full.skus:
        assert (s.sku, "RUB") in retail and (s.sku, "KZT") in retail
    # shelf prices are whole roubles ending in 90 (2 990,00 ₽), within a fashion range
    assert all(a % 100 == 0 and (a // 100) % 100 == 90 for (_, cur), a in retail.items() if cur == "RUB")
    assert all(390_00 <= a <= 20_000_00 for (_, cur), a in retail.items() if cur == "RUB")
    sale_products = {k[0].split("-")[0] for k in sale}
    assert 0.10 < len(sale_products) / len(full.products) < 0.20
    assert all(a < retail[k] for k, a in sale.items())


def test_stock_spread(full: DemoData) -> None:
    skus = full.skus
    in_wh = sum(1 for s in skus if full.stock.get((s.sku, WAREHOUSE_ID), 0) > 0)
    assert in_wh / len(skus) > 0.8  # the warehouse has most items
    stores = full.stores
    store_pairs = len(stores) * len(skus)
    stocked = sum(1 for (sku, loc), q in full.stock.items() if loc != WAREHOUSE_ID and q > 0)
    assert stocked / store_pairs < 0.3  # many zeros in stores
    assert all(any(loc == s.id for (_, loc) in full.stock) for s in stores[:10])  # yet stores have goods
    assert all(q >= 0 for q in full.stock.values())


def test_small_catalog() -> None:
    a, b = generate(42, 2000, small=True), generate(42, 2000, small=True)
    assert a.products == b.products and a.stock == b.stock
    assert len(a.brands) <= 5 and len(a.products) == 30
    assert len(a.locations) == 8 and len({s.city for s in a.stores}) == 3
    assert a.locations[0].id == WAREHOUSE_ID
    assert any(not s.ship_from_store for s in a.stores)
    assert {s.currency for s in a.stores} == {"RUB", "KZT"}
    # dense enough that every store has something to sell
    for s in a.stores:
        assert sum(1 for (_, loc), q in a.stock.items() if loc == s.id and q > 0) >= 10


def test_every_demo_location_can_hand_parcels_to_both_carriers() -> None:
    """A location whose city the carriers do not know could never ship: orders from it would park."""
    from adapters.post import DEMO_DISPATCH_OFFICES
    from sandbox.cdek import find_city

    data = generate(seed=42, products=50, small=False)
    cities = {loc.city for loc in data.locations}
    assert {c for c in cities if find_city(c) is None} == set()
    assert {c for c in cities if c.lower() not in DEMO_DISPATCH_OFFICES} == set()
