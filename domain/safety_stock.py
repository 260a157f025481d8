"""Safety stock per location × SKU, learned from the shortage history (pure).

Stores that often cannot find what the ledger says they have keep more back from online sale.
The rule, with ``SafetyStockPolicy`` holding its numbers:

1. **A location's miss rate.** Over the history window (``history_days``), ``lines`` assembly
   lines were given to the location and ``short`` of them were reported short. Its estimate is
   pulled towards the chain's rate ``p0 = Σ short / Σ lines`` by ``prior_lines`` pseudo-lines
   (a Beta prior, so a store with 3 lines and 1 shortage is not judged on those 3 alone)::

       q = (short + prior_lines · p0) / (lines + prior_lines)

2. **Units kept back at the location.** Treat each recorded unit as missing with probability
   ``q``. Offering a SKU only when at least ``k + 1`` units are on record makes "every recorded
   unit is missing" happen with probability at most ``q^(k+1)``; ``k`` is the smallest number
   with ``q^(k+1) ≤ target_miss``, at most ``max_units``::

       q = 0.30, target 0.05 → k = 2 (0.3³ = 0.027);   q = 0.10 → k = 1 (0.1² = 0.01);
       q = 0.04 → k = 0

   Independence is optimistic (a wrong record is often wrong by all its units), so the real
   miss rate stays above the target; the simulator (``sim/``) measures by how much.
3. **A SKU reported short at a location** within the last ``pair_memory_days`` is not offered
   there at all (everything on record is kept back) until that memory passes: its record is
   known to be wrong and the next count or delivery has to put it right.

The learned figure and the location's configured ``safety_stock`` do not add up: the larger
applies (``effective_safety_stock``). The ledger's availability rule then takes it
(``contracts.stock.available_units``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping

__all__ = ["SafetyStockPolicy", "ShortageHistory", "LearnedSafetyStock", "learn_safety_stock", "units_to_keep",
           "history_from_timelines"]


@dataclass(frozen=True)
class SafetyStockPolicy:
    """The learned rule's numbers (see the module docstring); ``rules/active.toml`` ``[safety_stock]``."""

    target_miss: float = 0.05
    prior_lines: float = 20.0
    max_units: int = 3
    pair_memory_days: int = 14
    history_days: int = 28

    def __post_init__(self) -> None:
        if not 0 < self.target_miss < 1:
            raise ValueError("safety_stock.target_miss: must be between 0 and 1")
        if self.prior_lines < 0:
            raise ValueError("safety_stock.prior_lines: must be >= 0")
        if self.max_units < 0:
            raise ValueError("safety_stock.max_units: must be >= 0")
        if self.pair_memory_days < 0 or self.history_days < 1:
            raise ValueError("safety_stock.history_days: must be >= 1 (pair_memory_days >= 0)")


@dataclass(frozen=True)
class ShortageHistory:
    """Assembly outcomes over the window: lines given to each location and lines reported short
    there; ``recent_short``: (location, SKU) pairs reported short within ``pair_memory_days``."""

    lines: Mapping[str, int]
    short: Mapping[str, int]
    recent_short: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class LearnedSafetyStock:
    """The rule's answer: units kept back per location, the pairs not offered, the estimates."""

    per_location: Mapping[str, int] = field(default_factory=dict)
    blocked: frozenset[tuple[str, str]] = frozenset()
    miss_rate: Mapping[str, float] = field(default_factory=dict)

    def units(self, location_id: str, sku: str, on_hand: int) -> int:
        """Units of ``sku`` kept back at ``location_id`` whose record shows ``on_hand``."""
        if (location_id, sku) in self.blocked:
            return max(on_hand, 0)
        return self.per_location.get(location_id, 0)

    def effective_safety_stock(self, location_id: str, sku: str, on_hand: int, configured: int) -> int:
        """The larger of the location's configured safety stock and the learned one."""
        return max(configured, self.units(location_id, sku, on_hand))


def units_to_keep(q: float, policy: SafetyStockPolicy) -> int:
    """The smallest k with q^(k+1) ≤ target_miss, at most ``max_units`` (rule 2)."""
    if q <= policy.target_miss:
        return 0
    if q >= 1:
        return policy.max_units
    k = math.ceil(math.log(policy.target_miss) / math.log(q) - 1e-12) - 1
    return min(max(k, 0), policy.max_units)


def learn_safety_stock(history: ShortageHistory, policy: SafetyStockPolicy) -> LearnedSafetyStock:
    """Apply rules 1–3 to ``history``. Locations with no lines get the chain's rate."""
    total_lines = sum(history.lines.values())
    total_short = sum(history.short.values())
    p0 = total_short / total_lines if total_lines else 0.0
    rates: dict[str, float] = {}
    keep: dict[str, int] = {}
    for loc in sorted(set(history.lines) | set(history.short)):
        n, s = history.lines.get(loc, 0), min(history.short.get(loc, 0), history.lines.get(loc, 0))
        denom = n + policy.prior_lines
        q = (s + policy.prior_lines * p0) / denom if denom else p0
        rates[loc] = q
        k = units_to_keep(q, policy)
        if k:
            keep[loc] = k
    return LearnedSafetyStock(per_location=keep, blocked=frozenset(history.recent_short), miss_rate=rates)


def history_from_timelines(orders: Iterable[tuple[Mapping[str, int], Iterable[tuple[datetime, str, Mapping[str, Any]]]]],
                           *, memory_since: datetime) -> ShortageHistory:
    """The history from the order projection's timelines. Each order is ``(lines per shipment id,
    [(at, kind, data), …] in time order)`` with the entries the order workflow writes:
    ``sourced`` (``shipment_id``, ``location_id``): the shipment's lines go to that location;
    ``shipment_assembling`` with ``location_id`` (a move): its lines go to the new location;
    ``shipment_assembling`` with ``shortage_sku``: one line reported short where it is now."""
    lines: dict[str, int] = {}
    short: dict[str, int] = {}
    recent: set[tuple[str, str]] = set()
    for n_lines, events in orders:
        where: dict[str, str] = {}
        for at, kind, data in events:
            sid = str(data.get("shipment_id", ""))
            if kind == "sourced" or (kind == "shipment_assembling" and data.get("location_id")):
                loc = str(data.get("location_id", ""))
                if loc and sid:
                    where[sid] = loc
                    lines[loc] = lines.get(loc, 0) + n_lines.get(sid, 1)
            elif kind == "shipment_assembling" and data.get("shortage_sku") and sid in where:
                loc = where[sid]
                short[loc] = short.get(loc, 0) + 1
                if at >= memory_since:
                    recent.add((loc, str(data["shortage_sku"])))
    return ShortageHistory(lines=lines, short=short, recent_short=frozenset(recent))
