"""Sourcing: where each order line ships from. A pure function, safe inside workflows.

``source(request) -> SourcingPlan`` decides, for an order's lines, which locations assemble
and hand over what, and says why in sentences a support person understands; the workflow
copies ``plan.reasons`` into the order timeline ("MSK-014: has all 3 lines, same city (2.1 km)").

No I/O, no clock (``now`` is an input: pass ``workflow.now()``), no randomness, no
dependence on set or dict-hash order: the same request always gives the same plan.

The rules, in priority order
----------------------------
1. **Eligibility** (``mode="ship"``): warehouses, and stores with ``ship_from_store``; a
   location must have assembly capacity left today (``daily_capacity`` counts assembly
   tasks, i.e. shipments, not units: eligible while ``assigned_today < daily_capacity``;
   ``None`` = unlimited); locations in ``request.exclude`` are skipped. A location outside
   its opening hours at ``now`` stays eligible but ranks after every open one.
2. **Never exceed available**: a location gives at most ``available[(sku, location_id)]``
   units of a SKU over all the lines it takes (negative stock counts as zero).
3. **Fewest shipments**: one location with everything beats two, two beat three.
   Lines are grouped by SKU for this search (two lines of the same SKU go together).
   One- and two-location plans are found *exactly* (every location and every pair of
   distinct coverage patterns is tried); if no pair covers the order, a greedy set cover
   picks, each time, the location that covers the most of what is left. Greedy is within
   a factor H(n) = 1 + 1/2 + … + 1/n of the optimum for n SKUs (≈ 2.93 for 10), and since
   the exact search has already ruled out 1 and 2 shipments, it is optimal whenever the
   optimum is 3 and greedy finds 3.
4. **Nearest**: among plans with as many shipments, prefer open locations, then the
   customer's city, then the customer's region, then the shortest haversine distance
   between the location and the destination (a warehouse and a store at a tie: the
   nearest wins; no preference by kind), then the location id. A multi-location plan is
   compared by the sums of those criteria over its locations (fewer closed, fewer
   out-of-region, shorter total distance), then by its sorted ids.
5. **Split a line only as a last resort**: a SKU no single eligible location has in full
   is taken line by line — whole from one location if one has the line's quantity
   (locations already in the plan first, so no extra shipment), otherwise split across
   locations in rank order. What no eligible location has is returned as ``unfulfilled``
   (with the missing quantity) for the workflow to decide (wait, substitute, cancel).

**Weights** (``SourcingRequest.weights``, a ``SourcingWeights``; the rule set in force comes from
``rules/active.toml``, see ``domain.sourcing_rules``). Inside rule 4 a location's *cost* replaces
the bare distance: ``distance × km + reliability_km × shortage rate + capacity_km × load``
(load = ``assigned_today / daily_capacity``; the shortage rate per location is data measured
from history). ``split_penalty_km`` relaxes rule 3: a two-location plan replaces the best
one-location plan when neither of its locations is closed while the single one is open, neither
is in a farther tier (city / region / elsewhere) than the single one, and its summed cost plus
the penalty is lower. The defaults (``SourcingWeights()``: km weight 1, no reliability or
capacity cost, ``split_penalty_km=None`` = fewest shipments always) are exactly the rules above.

``mode="pickup"`` (click & collect at ``pickup_store_id``): the pickup store takes
whatever it has on its shelf (its ship-from-store flag, capacity and hours do not apply —
the customer comes there anyway); what it lacks is sourced by the rules above from the
other locations, with distances measured to the pickup store, as *transfer* shipments
(``transfer_to=pickup_store_id``).

Time convention: ``opens_at`` / ``closes_at`` are naive wall-clock times of the location.
``now`` should be timezone-aware; it is converted to the location's local time with
``SourceLocation.utc_offset_minutes`` when that is set (Russia and Kazakhstan keep no
summer time, so a fixed offset is exact), otherwise the wall clock of ``now`` itself is
used. ``now=None`` treats every location as open. Hours with ``opens_at > closes_at`` run
past midnight; ``opens_at == closes_at`` or either ``None`` means open round the clock.

The ``available`` mapping has tuple keys, which JSON cannot carry: build the request
inside the workflow (``available_from_rows`` helps) rather than passing it to an activity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Iterable, Mapping, Sequence

__all__ = [
    "LocationKind",
    "SourcingMode",
    "SourcingLine",
    "SourceLocation",
    "Destination",
    "SourcingRequest",
    "SourcingWeights",
    "DEFAULT_WEIGHTS",
    "PlannedShipment",
    "SourcingPlan",
    "source",
    "haversine_km",
    "is_open",
    "available_from_rows",
]

EARTH_RADIUS_KM = 6371.0088


class LocationKind(StrEnum):
    STORE = "store"
    WAREHOUSE = "warehouse"


class SourcingMode(StrEnum):
    SHIP = "ship"
    PICKUP = "pickup"


@dataclass(frozen=True)
class SourcingLine:
    """One order line to source: ``qty`` units of ``sku`` (``pos_id`` is the order position)."""

    pos_id: int
    sku: str
    qty: int


@dataclass(frozen=True)
class SourceLocation:
    """A store or warehouse that could assemble and hand over goods."""

    id: str
    name: str
    kind: LocationKind  # "store" | "warehouse" (a plain string works too)
    city: str
    region: str
    lat: float
    lon: float
    ship_from_store: bool
    pickup: bool
    opens_at: time | None
    closes_at: time | None
    daily_capacity: int | None  # assembly tasks per day; None = unlimited
    assigned_today: int = 0
    utc_offset_minutes: int | None = None  # local time = UTC + this; None = use now's own clock


@dataclass(frozen=True)
class Destination:
    """Where the goods go: the customer's address (ship) — coordinates may be unknown."""

    region: str
    city: str
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class SourcingWeights:
    """How locations are weighed against each other (see "Weights" in the module docstring).

    ``distance``: cost per km (≥ 0); ``reliability_km``: km-equivalent of a location whose every
    assembly fails (× its ``shortage_rate``, 0–1); ``capacity_km``: km-equivalent of a location
    whose day is fully booked (× ``assigned_today / daily_capacity``); ``split_penalty_km``:
    None = fewest shipments always, else the km a second shipment must save to be chosen;
    ``shortage_rate``: location id → measured share of its assembly lines reported short."""

    distance: float = 1.0
    reliability_km: float = 0.0
    capacity_km: float = 0.0
    split_penalty_km: float | None = None
    shortage_rate: dict[str, float] = field(default_factory=dict)

    def cost(self, loc: "SourceLocation", dist: float | None) -> float:
        """The location's cost in km-equivalents (the bare distance with the default weights)."""
        c = self.distance * dist if dist is not None else 0.0
        if self.reliability_km:
            c += self.reliability_km * self.shortage_rate.get(loc.id, 0.0)
        if self.capacity_km and loc.daily_capacity:
            c += self.capacity_km * min(loc.assigned_today / loc.daily_capacity, 1.0)
        return c


DEFAULT_WEIGHTS = SourcingWeights()


@dataclass(frozen=True)
class SourcingRequest:
    lines: Sequence[SourcingLine]
    locations: Sequence[SourceLocation]
    available: Mapping[tuple[str, str], int]  # (sku, location_id) -> units available now
    destination: Destination
    mode: SourcingMode = SourcingMode.SHIP  # "ship" | "pickup"
    pickup_store_id: str | None = None
    now: datetime | None = None
    exclude: frozenset[str] = frozenset()
    weights: SourcingWeights = DEFAULT_WEIGHTS


@dataclass(frozen=True)
class PlannedShipment:
    """What one location assembles. ``lines`` may carry a part of an order line (split)."""

    location_id: str
    lines: tuple[SourcingLine, ...]
    reason: str
    distance_km: float | None  # to the destination (or to the pickup store); None = unknown
    transfer_to: str | None = None  # pickup mode: goods travel to this store, not the customer


@dataclass(frozen=True)
class SourcingPlan:
    shipments: tuple[PlannedShipment, ...]
    unfulfilled: tuple[SourcingLine, ...]  # what no eligible location has, with the missing qty
    reasons: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.unfulfilled


# --------------------------------------------------------------------------------------------
# small pure helpers


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres (mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _local_wall_time(loc: SourceLocation, now: datetime) -> time:
    if loc.utc_offset_minutes is not None and now.tzinfo is not None:
        now = now.astimezone(timezone(timedelta(minutes=loc.utc_offset_minutes)))
    return now.time()


def is_open(loc: SourceLocation, now: datetime | None) -> bool:
    """Whether ``loc`` is within its opening hours at ``now`` (see the module's time convention)."""
    if now is None or loc.opens_at is None or loc.closes_at is None:
        return True
    o, c = loc.opens_at, loc.closes_at
    if o.tzinfo is not None or c.tzinfo is not None:
        o, c = o.replace(tzinfo=None), c.replace(tzinfo=None)
    if o == c:
        return True
    t = _local_wall_time(loc, now)
    if o < c:
        return o <= t < c
    return t >= o or t < c  # open past midnight


def available_from_rows(rows: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str], int]:
    """``[(sku, location_id, units), ...]`` (JSON-friendly) → the ``available`` mapping; sums repeats."""
    out: dict[tuple[str, str], int] = {}
    for sku, loc_id, units in rows:
        out[(sku, loc_id)] = out.get((sku, loc_id), 0) + units
    return out


def _norm(s: str) -> str:
    return " ".join(s.split()).casefold().replace("ё", "е")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------------------------
# ranking


class _Cand:
    """A location ranked for one request (internal; never leaves this module)."""

    __slots__ = ("loc", "closed", "tier", "dist", "key")

    def __init__(self, loc: SourceLocation, closed: bool, tier: int, dist: float | None, cost: float) -> None:
        self.loc = loc
        self.closed = closed
        self.tier = tier  # 0 same city, 1 same region, 2 elsewhere
        self.dist = dist
        #: cost: the distance with the default weights
        self.key: tuple[int, int, float, str] = (int(closed), tier, cost, loc.id)

    def where(self, as_what: str = "") -> str:
        """"same city (2.1 km)", "same region as the pickup store, Podolsk (35.0 km)", …"""
        as_ = f" as {as_what}" if as_what else ""
        if self.tier == 0:
            place = f"same city{as_}"
        elif self.tier == 1:
            place = f"same region{as_}, {self.loc.city}"
        else:
            place = f"other region, {self.loc.city} ({self.loc.region})"
        if self.dist is not None:
            place = f"{place} ({self.dist:.1f} km)"
        if self.closed:
            opens = self.loc.opens_at.strftime("%H:%M") if self.loc.opens_at else "?"
            place = f"{place}; closed now, opens {opens}"
        return place


def _candidate(loc: SourceLocation, dest: Destination, dest_norm: tuple[str, str], now: datetime | None,
               weights: SourcingWeights = DEFAULT_WEIGHTS) -> _Cand:
    region_n, city_n = dest_norm
    if _norm(loc.region) == region_n:
        tier = 0 if _norm(loc.city) == city_n else 1
    else:
        tier = 2
    dist = None
    if dest.lat is not None and dest.lon is not None:
        dist = round(haversine_km(loc.lat, loc.lon, dest.lat, dest.lon), 3)
    return _Cand(loc, not is_open(loc, now), tier, dist, weights.cost(loc, dist))


def _ineligible_why(loc: SourceLocation, exclude: frozenset[str]) -> str | None:
    if loc.id in exclude:
        return "excluded by request"
    if loc.kind != LocationKind.WAREHOUSE and not loc.ship_from_store:
        return "does not ship from store"
    if loc.daily_capacity is not None and loc.assigned_today >= loc.daily_capacity:
        return f"no assembly capacity left today ({loc.assigned_today}/{loc.daily_capacity})"
    return None


PairCost = tuple[int, int, float, tuple[str, str]]


def _pair_cost(a: _Cand, b: _Cand) -> PairCost:
    """Cost of a two-location plan: fewer closed, fewer out-of-city/region, shorter total
    distance, then the sorted ids (monotone in each location's ``key``)."""
    ids = (a.loc.id, b.loc.id) if a.loc.id <= b.loc.id else (b.loc.id, a.loc.id)
    return (a.key[0] + b.key[0], a.tier + b.tier, round(a.key[2] + b.key[2], 3), ids)


# --------------------------------------------------------------------------------------------
# the search


@dataclass
class _Alloc:
    """Mutable scratch state of one sourcing run (never leaves this module)."""

    stock: dict[tuple[str, str], int]
    by_loc: dict[str, list[SourcingLine]] = field(default_factory=dict)
    unfulfilled: list[SourcingLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def take(self, loc_id: str, line: SourcingLine, qty: int) -> None:
        self.stock[(line.sku, loc_id)] -= qty
        part = line if qty == line.qty else SourcingLine(line.pos_id, line.sku, qty)
        self.by_loc.setdefault(loc_id, []).append(part)


def _best_pair(cands: Sequence[_Cand], masks: Sequence[int], coverable: int) -> tuple[PairCost, _Cand, _Cand] | None:
    """The best two-location plan covering ``coverable``. Only the best location of each distinct
    coverage pattern can be in the best pair (same mask, better key => better plan), so at most
    min(#locations, 2**#skus) patterns are paired."""
    best_by_mask: dict[int, _Cand] = {}
    for c, m in zip(cands, masks):
        if m and (m not in best_by_mask or c.key < best_by_mask[m].key):
            best_by_mask[m] = c
    pats = sorted(best_by_mask.items(), key=lambda kv: kv[1].key)
    best_pair: tuple[PairCost, _Cand, _Cand] | None = None
    for i, (mi, ci) in enumerate(pats):
        need = coverable & ~mi
        for mj, cj in pats[i + 1 :]:
            if mj & need == need:
                cost = _pair_cost(ci, cj)
                if best_pair is None or cost < best_pair[0]:
                    best_pair = (cost, ci, cj)
    return best_pair


def _split_beats(single: _Cand, pair: tuple[PairCost, _Cand, _Cand], penalty: float) -> bool:
    """``split_penalty_km``: the pair replaces the single location (see the module docstring)."""
    _, a, b = pair
    return (a.key[0] + b.key[0] <= single.key[0] and max(a.tier, b.tier) <= single.tier
            and a.key[2] + b.key[2] + penalty < single.key[2])


def _allocate(lines: Sequence[SourcingLine], cands: Sequence[_Cand], alloc: _Alloc,
              weights: SourcingWeights = DEFAULT_WEIGHTS) -> str:
    """Allocate ``lines`` over ranked eligible ``cands`` into ``alloc``; returns a summary sentence."""
    if not lines:
        return ""
    # group by SKU, in order of first appearance
    groups: dict[str, list[SourcingLine]] = {}
    for ln in lines:
        groups.setdefault(ln.sku, []).append(ln)
    skus = list(groups)
    demand = [sum(ln.qty for ln in groups[s]) for s in skus]
    nbits = len(skus)

    # coverage mask of every candidate: bit g if it has the whole demand of SKU group g
    masks: list[int] = []
    for c in cands:
        m = 0
        for g, sku in enumerate(skus):
            if alloc.stock.get((sku, c.loc.id), 0) >= demand[g]:
                m |= 1 << g
        masks.append(m)
    coverable = 0
    for m in masks:
        coverable |= m

    chosen: list[_Cand] = []
    summary = ""
    if coverable:
        full = coverable == (1 << nbits) - 1
        what = f"all {_plural(len(lines), 'line')}" if full else "every line that can be shipped whole"
        singles = [c for c, m in zip(cands, masks) if m & coverable == coverable]
        pair = None
        if singles and weights.split_penalty_km is not None:
            single = min(singles, key=lambda c: c.key)
            pair = _best_pair(cands, masks, coverable)
            if pair is not None and not _split_beats(single, pair, weights.split_penalty_km):
                pair = None
        if pair is not None:
            chosen = [pair[1], pair[2]]
            summary = (f"two locations nearer than the one with {what} (split allowed when it saves "
                       f"more than {weights.split_penalty_km:g} km)")
        elif singles:
            chosen = [min(singles, key=lambda c: c.key)]
            if full:
                what_all = "the line" if len(lines) == 1 else f"all {len(lines)} lines"
                summary = f"one location has {what_all}: {chosen[0].loc.id}"
            else:
                summary = f"one location has every line that can be shipped whole: {chosen[0].loc.id}"
        else:
            best_pair = _best_pair(cands, masks, coverable)  # exact pairs
            if best_pair is not None:
                chosen = [best_pair[1], best_pair[2]]
                summary = (
                    f"no single location has {what}; 2 shipments is the fewest possible"
                )
            else:
                # Greedy set cover (bound: H(#skus) times the optimum, see module docstring).
                left = coverable
                while left:
                    best_i, best_k = -1, None
                    for i, (c, m) in enumerate(zip(cands, masks)):
                        gain = (m & left).bit_count()
                        if gain and (best_k is None or (-gain, c.key) < best_k):
                            best_i, best_k = i, (-gain, c.key)
                    chosen.append(cands[best_i])
                    left &= ~masks[best_i]
                # drop a location made redundant by later picks (worst first)
                mask_of = {c.loc.id: m for c, m in zip(cands, masks)}
                for c in sorted(chosen, key=lambda c: c.key, reverse=True):
                    rest = [o for o in chosen if o is not c]
                    union = 0
                    for o in rest:
                        union |= mask_of[o.loc.id]
                    if union & coverable == coverable:
                        chosen = rest
                summary = (
                    f"no two locations have {what} between them; "
                    f"{len(chosen)} shipments, chosen greedily (at least 3 are needed)"
                )
        chosen.sort(key=lambda c: c.key)

    # allocate each covered SKU group whole, to the best-ranked chosen location that has it
    mask_by_id = {c.loc.id: m for c, m in zip(cands, masks)}
    for g, sku in enumerate(skus):
        if not coverable >> g & 1:
            continue
        c = next(c for c in chosen if mask_by_id[c.loc.id] >> g & 1)
        for ln in groups[sku]:
            alloc.take(c.loc.id, ln, ln.qty)

    # last resort: SKUs nobody has in full — line by line, whole if possible, else split
    if coverable != (1 << nbits) - 1:
        for g, sku in enumerate(skus):
            if coverable >> g & 1:
                continue
            for ln in groups[sku]:
                # locations already shipping something first (no extra shipment), then by rank
                order = sorted(cands, key=lambda c: (c.loc.id not in alloc.by_loc, c.key))
                whole = next((c for c in order if alloc.stock.get((sku, c.loc.id), 0) >= ln.qty), None)
                if whole is not None:
                    alloc.take(whole.loc.id, ln, ln.qty)
                    continue
                need = ln.qty
                parts: list[str] = []
                for c in order:
                    have = alloc.stock.get((sku, c.loc.id), 0)
                    if have <= 0:
                        continue
                    q = min(have, need)
                    alloc.take(c.loc.id, ln, q)
                    parts.append(f"{c.loc.id} ({q})")
                    need -= q
                    if need == 0:
                        break
                if need and parts:
                    alloc.notes.append(
                        f"pos {ln.pos_id} ({sku}): only {ln.qty - need} of {ln.qty} available, "
                        f"from {', '.join(parts)}; {need} missing"
                    )
                elif need:
                    alloc.notes.append(
                        f"pos {ln.pos_id} ({sku}): none of {ln.qty} available at any eligible location"
                    )
                elif len(parts) > 1:
                    alloc.notes.append(
                        f"pos {ln.pos_id} ({sku}): no location has all {ln.qty} units; "
                        f"split across {', '.join(parts)}"
                    )
                if need:
                    alloc.unfulfilled.append(SourcingLine(ln.pos_id, sku, need))
    return summary


def _validate(req: SourcingRequest) -> dict[str, SourceLocation]:
    seen_pos: set[int] = set()
    for ln in req.lines:
        if ln.qty <= 0:
            raise ValueError(f"sourcing: line pos {ln.pos_id} has qty {ln.qty}, must be > 0")
        if ln.pos_id in seen_pos:
            raise ValueError(f"sourcing: duplicate pos_id {ln.pos_id}")
        seen_pos.add(ln.pos_id)
    by_id: dict[str, SourceLocation] = {}
    for loc in req.locations:
        if loc.id in by_id:
            raise ValueError(f"sourcing: duplicate location id {loc.id}")
        by_id[loc.id] = loc
    return by_id


def _line_list(lines: Sequence[SourcingLine], total_lines: Mapping[int, int]) -> str:
    """"has all 3 lines" / "2 of 3 lines (pos 1, 3 ×1 of 2)" — a part of a split line shows its qty."""
    whole = all(ln.qty == total_lines[ln.pos_id] for ln in lines)
    n = len(total_lines)
    if whole and len(lines) == n:
        return "has the line" if n == 1 else f"has all {n} lines"
    pos = ", ".join(
        str(ln.pos_id) if ln.qty == total_lines[ln.pos_id] else f"{ln.pos_id} ×{ln.qty} of {total_lines[ln.pos_id]}"
        for ln in lines
    )
    return f"{len(lines)} of {_plural(n, 'line')} (pos {pos})"


def _has_all(available: Mapping[tuple[str, str], int], loc_id: str, demand: Mapping[str, int]) -> bool:
    return all(available.get((sku, loc_id), 0) >= q for sku, q in demand.items())


def source(request: SourcingRequest) -> SourcingPlan:
    """Decide where each line ships from; see the module docstring for the rules.

    Raises ``ValueError`` for a malformed request: a line with ``qty <= 0``, duplicate
    ``pos_id`` or location ids, or (pickup mode) a missing/unknown ``pickup_store_id`` or a
    pickup store that does not offer pickup.
    """
    req = request
    by_id = _validate(req)
    lines = list(req.lines)
    n_lines = len(lines)
    alloc = _Alloc(stock={k: max(0, int(v)) for k, v in req.available.items()})
    reasons: list[str] = []

    mode = SourcingMode(req.mode)
    pickup_loc: SourceLocation | None = None
    dest = req.destination
    to_source = lines
    if mode == SourcingMode.PICKUP:
        if req.pickup_store_id is None or req.pickup_store_id not in by_id:
            raise ValueError(f"sourcing: pickup store {req.pickup_store_id!r} is not among the locations")
        pickup_loc = by_id[req.pickup_store_id]
        if not pickup_loc.pickup:
            raise ValueError(f"sourcing: {pickup_loc.id} does not offer pickup")
        dest = Destination(pickup_loc.region, pickup_loc.city, pickup_loc.lat, pickup_loc.lon)
        to_source = []
        if pickup_loc.id in req.exclude:
            to_source = lines
            reasons.append(f"pickup at {pickup_loc.id}: its own stock is excluded, everything comes by transfer")
        else:
            for ln in lines:
                have = alloc.stock.get((ln.sku, pickup_loc.id), 0)
                q = min(have, ln.qty)
                if q:
                    alloc.take(pickup_loc.id, ln, q)
                if q < ln.qty:
                    to_source.append(SourcingLine(ln.pos_id, ln.sku, ln.qty - q))
            on_hand = alloc.by_loc.get(pickup_loc.id, [])
            if not to_source:
                reasons.append(f"pickup at {pickup_loc.id}: has {'the line' if n_lines == 1 else f'all {n_lines} lines'} on hand")
            elif not on_hand:
                reasons.append(f"pickup at {pickup_loc.id}: has none of the lines on hand; everything comes by transfer")
            else:
                reasons.append(
                    f"pickup at {pickup_loc.id}: has {len(on_hand)} of {_plural(n_lines, 'line')} on hand; "
                    f"the rest comes by transfer"
                )

    # rank the eligible locations for what is left to source
    dest_norm = (_norm(dest.region), _norm(dest.city))
    cands: list[_Cand] = []
    ineligible: list[tuple[_Cand, str]] = []
    for loc in req.locations:
        if pickup_loc is not None and loc.id == pickup_loc.id:
            continue
        why = _ineligible_why(loc, req.exclude)
        cand = _candidate(loc, dest, dest_norm, req.now, req.weights)
        if why is None:
            cands.append(cand)
        else:
            ineligible.append((cand, why))
    cands.sort(key=lambda c: c.key)
    ineligible.sort(key=lambda cw: cw[0].key)
    cand_by_id = {c.loc.id: c for c in cands}

    summary = _allocate(to_source, cands, alloc, req.weights)
    if summary:
        reasons.append(summary if pickup_loc is None else f"transfers: {summary}")

    # assemble shipments: pickup store first, then by rank
    shipments: list[PlannedShipment] = []
    order_index = {ln.pos_id: i for i, ln in enumerate(lines)}
    qty_of = {ln.pos_id: ln.qty for ln in lines}
    if pickup_loc is not None and pickup_loc.id in alloc.by_loc:
        own = tuple(sorted(alloc.by_loc[pickup_loc.id], key=lambda ln: order_index[ln.pos_id]))
        shipments.append(
            PlannedShipment(
                location_id=pickup_loc.id,
                lines=own,
                reason=f"{pickup_loc.id}: pickup store, {_line_list(own, qty_of)} on hand",
                distance_km=0.0,
            )
        )
    for c in cands:
        got = alloc.by_loc.get(c.loc.id)
        if not got:
            continue
        sl = tuple(sorted(got, key=lambda ln: order_index[ln.pos_id]))
        if pickup_loc is None:
            reason = f"{c.loc.id}: {_line_list(sl, qty_of)}, {c.where()}"
        else:
            reason = f"{c.loc.id}: transfer to {pickup_loc.id}, {_line_list(sl, qty_of)}, {c.where('the pickup store')}"
        shipments.append(
            PlannedShipment(
                location_id=c.loc.id,
                lines=sl,
                reason=reason,
                distance_km=c.dist,
                transfer_to=pickup_loc.id if pickup_loc is not None else None,
            )
        )
    reasons.extend(s.reason for s in shipments)
    reasons.extend(alloc.notes)

    # locations a support person would ask about: they had everything left to source but
    # could not be used (at most 3, nearest first)
    demand: dict[str, int] = {}
    for ln in to_source:
        demand[ln.sku] = demand.get(ln.sku, 0) + ln.qty
    sourced = [cand_by_id[s.location_id] for s in shipments if s.location_id in cand_by_id]
    single_best = sourced[0].key if len(sourced) == 1 and not alloc.unfulfilled else None
    told = 0
    for cand, why in ineligible:
        if told == 3 or not demand:
            break
        if not _has_all(req.available, cand.loc.id, demand):
            continue
        if single_best is None or cand.key < single_best:
            reasons.append(f"{cand.loc.id} has everything but {why}")
            told += 1

    unfulfilled = tuple(sorted(alloc.unfulfilled, key=lambda ln: order_index[ln.pos_id]))
    return SourcingPlan(shipments=tuple(shipments), unfulfilled=unfulfilled, reasons=tuple(reasons))
