"""Helpers for end-to-end tests: fresh SKUs with known stock, unique customers, driving the sandbox."""

from __future__ import annotations

import itertools
import random
from typing import Any

_SKUS: list[str] = []
_counter = itertools.count()
_phones = itertools.count(random.Random().randrange(10_000, 90_000) * 1000)


def next_phone() -> str:
    return f"+7916{next(_phones) % 10_000_000:07d}"


async def fresh_sku(stack: Any, stock: dict[str, int]) -> str:
    """A SKU no other test in this session uses, with exactly ``stock`` (location -> units) and
    nothing anywhere else, set in the ERP and synced into the ledger."""
    if not _SKUS:  # the catalog Orkestr imported from the ERP at start
        r = await stack.api.get("/v1/products", params={"limit": 200})
        _SKUS.extend(s["sku"] for p in r.json()["items"] for s in p["skus"])
    sku = _SKUS[next(_counter) % len(_SKUS)]
    r = await stack.sandbox.get("/sandbox/erp/stock", params={"sku": sku})
    r.raise_for_status()
    items = [{"sku": sku, "location_id": row["location_id"], "quantity": 0} for row in r.json()["items"]
             if row["location_id"] not in stock]
    items += [{"sku": sku, "location_id": loc, "quantity": q} for loc, q in stock.items()]
    r = await stack.sandbox.post("/sandbox/erp/stock", json={"items": items})
    r.raise_for_status()
    await stack.sync("delta")
    return sku


def order_body(sku: str, qty: int = 1, *, phone: str | None = None, bonus: int = 0,
               city: str = "Москва", region: str = "RU-MOW", **extra: Any) -> dict[str, Any]:
    return {
        "channel": "web",
        "customer": {"phone": phone or next_phone(), "name": "Анна Петрова", "email": "anna@example.ru"},
        "lines": [{"sku": sku, "qty": qty}],
        "delivery": {"method": "courier", "address": {"region": region, "city": city,
                                                      "line": "ул. Тверская, д. 1, кв. 5", "postcode": "125009"}},
        "payment": {"method": "card"},
        "bonus_to_spend": bonus,
        **extra,
    }


async def ledger_row(stack: Any, sku: str, location_id: str) -> tuple[int, int]:
    from sqlalchemy import text

    async with stack.engine.connect() as conn:
        row = (await conn.execute(text("SELECT on_hand, reserved FROM stock WHERE sku = :s AND location_id = :l"),
                                  {"s": sku, "l": location_id})).first()
    return (row.on_hand, row.reserved) if row else (0, 0)


async def md_order_of(stack: Any, order_id: str) -> str:
    r = await stack.api.get(f"/v1/orders/{order_id}")
    r.raise_for_status()
    md = r.json()["payment"]["md_order"]
    assert md, "the order has no payment registered"
    return md


async def pay(stack: Any, order_id: str, outcome: str = "approve") -> None:
    md = await md_order_of(stack, order_id)
    r = await stack.sandbox.post(f"/sandbox/acquiring/orders/{md}/pay", json={"outcome": outcome})
    r.raise_for_status()


async def task_for(stack: Any, location_id: str, order_id: str, kind: str = "assemble") -> dict[str, Any]:
    import asyncio

    for _ in range(300):
        for t in await stack.pos_tasks(location_id):
            if t["order_id"] == order_id and t["kind"] == kind:
                return t
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind} task for {order_id} at {location_id}")


async def courier_order(stack: Any, order_id: str) -> dict[str, Any]:
    import asyncio

    for _ in range(300):
        r = await stack.sandbox.get("/sandbox/courier/orders")
        r.raise_for_status()
        data = r.json()
        orders = data["orders"] if isinstance(data, dict) else data
        for o in orders:
            if str(o.get("number", "")).startswith(f"fulfillment-{order_id}-"):
                return o
        await asyncio.sleep(0.1)
    raise AssertionError(f"no courier order for {order_id}")
