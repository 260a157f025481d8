"""Pickup rules (pure, safe in workflows): the hold window, the reminder, the promised ready
date of a click & collect order, and what a partial pickup means for the bill and the ledger.

No clock: ``now`` is always an argument (``workflow.now()``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from contracts.order import LineRequest, OrderLine, line_portion
from domain.planning import REGION_UTC_OFFSET_MIN
from domain.sourcing import haversine_km
from contracts.stock import Allocation, LocationInfo

#: the customer is reminded this long before the hold ends (holds of a day or less: no reminder)
REMIND_BEFORE = timedelta(days=1)


def hold_window(*, pickup_window_days: int, hold_minutes: float | None = None) -> timedelta:
    """How long the goods wait on the shelf: the store's window, or a shorter hold asked for."""
    window = timedelta(days=max(pickup_window_days, 1))
    if hold_minutes is not None and hold_minutes > 0:
        return min(window, timedelta(minutes=hold_minutes))
    return window


def reminder_at(ready_at: datetime, until: datetime) -> datetime | None:
    """The day before the hold ends; None when the hold is a day or shorter."""
    if until - ready_at <= REMIND_BEFORE:
        return None
    return until - REMIND_BEFORE


def transfer_days(src: LocationInfo, dst: LocationInfo) -> int:
    """Calendar days a transfer between two locations takes (same city 1, same region 2,
    up to 1500 km 3, farther 5): the network's inter-store courier schedule."""
    if src.city.casefold() == dst.city.casefold():
        return 1
    if src.region == dst.region:
        return 2
    return 3 if haversine_km(src.lat, src.lon, dst.lat, dst.lon) <= 1500 else 5


def ready_by(now: datetime, *, set_aside_minutes: int, transfers_from: list[LocationInfo],
             store: LocationInfo) -> datetime:
    """When a click & collect order is promised ready at ``store``: the set-aside time, after
    the slowest transfer arrives when some items travel from other locations."""
    days = max((transfer_days(src, store) for src in transfers_from), default=0)
    return now + timedelta(days=days, minutes=set_aside_minutes)


def local_text(at: datetime, region: str) -> str:
    """``25.11.2026 21:00`` in the store's wall-clock time (Russia keeps no summer time)."""
    offset = REGION_UTC_OFFSET_MIN.get(region)
    if offset is not None:
        at = at.astimezone(timezone(timedelta(minutes=offset)))
    return at.strftime("%d.%m.%Y %H:%M")


def taken_by_sku(taken: list[LineRequest]) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in taken:
        out[line.sku] = out.get(line.sku, 0) + line.qty
    return out


def taken_portions(lines: list[OrderLine], taken: list[LineRequest]) -> list[OrderLine]:
    """The lines the customer took, in order position order, with discount and bonus scaled to
    the quantity taken (a line not taken at all is left out). Never more than was reserved."""
    left = taken_by_sku(taken)
    out = []
    for line in sorted(lines, key=lambda l: l.pos_id):
        qty = min(line.qty, left.get(line.sku, 0))
        if qty <= 0:
            continue
        left[line.sku] -= qty
        out.append(line_portion(line, qty))
    return out


def settle_plan(held: list[Allocation], taken: list[LineRequest]) -> list[tuple[str, int]]:
    """(key, units to consume) for every held key: what was taken of a SKU comes off its
    keys in key order; the rest of each key is released. Units taken beyond what the ledger
    holds here (goods transferred in from another location) are not in this store's ledger."""
    left = taken_by_sku(taken)
    out = []
    for a in sorted(held, key=lambda a: a.key):
        take = min(a.qty, left.get(a.sku, 0))
        left[a.sku] = left.get(a.sku, 0) - take
        out.append((a.key, take))
    return out
