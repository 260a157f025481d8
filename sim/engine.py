"""The fast driver: a deterministic discrete-event simulation of the chain, in process, no Temporal.

One run = one ``Policy`` over ``days`` simulated days (plus two days with no new orders so the
last ones finish). Time is in minutes from Monday 00:00 Moscow time. Everything random comes
from ``random.Random`` streams seeded from ``seed``, one per concern, so the same seed gives the
same numbers and every configuration sees the same customers (common random numbers).

What happens, and which real code decides it:

* **Offline sales** every 5 minutes in each open store (per-store volume, lunch/evening and
  weekend peaks, the same product popularity as online). A sale takes a unit the customer can
  find on the floor, even one an online order holds but the store has not picked yet. A sale is
  sometimes scanned as a sibling SKU (mis-scan); units disappear without a record (shrinkage);
  units get misplaced and turn up again days later (``Behaviour``).
* **The ERP** learns store sales only when the store's POS exchanges with it (hourly per store,
  plus a posting lag), sets on hand when a delivery or a recount is posted, and decrements when
  Orkestr posts an online sale at hand-over.
* **The ledger** (``ledger`` = on hand, ``reserved``) takes the ERP's figures at each import
  (hourly full import; with delta sync every minute) and, with POS events, store sales within
  5 minutes (then the ERP's later figure is taken less the POS sales it has not posted yet).
  Availability is ``contracts.stock.available_units`` with the safety stock of
  ``domain.safety_stock`` (learned nightly from the shortages so far).
* **Online orders** (a day/week curve, the real catalogue, customers in and outside the store
  cities, 15 % click & collect) are sourced by ``domain.sourcing.source`` with the destination of
  ``domain.planning.destination`` and the weights of the policy, then held (``contracts.stock.can_hold``).
  Customers only order what the storefront shows as available.
* **Stores assemble** within their hours and daily capacity after a per-store picking time. A
  line whose units cannot be found is reported short. A shortage (and a store late past the
  escalation ladder, ``domain.shortages.ladder_step``) moves the shipment with
  ``domain.shortages.move_target`` when the policy re-sources automatically; otherwise — and when
  no single location has it all — a person is asked: an operator reaches the customer within
  ``SUBSTITUTION_DEADLINE`` during working hours, else ``SUBSTITUTION_DEFAULT`` applies, and
  ``domain.shortages.shortage_outcome`` says what the answer does to the order.

Only what is needed for the measured numbers is modelled: payment is a delay (5 % never pay),
delivery after hand-over is not modelled, prices and money are not involved.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from contracts.order import Address, Delivery, DeliveryMethod
from domain.planning import destination as order_destination
from domain.planning import source_location
from domain.safety_stock import LearnedSafetyStock, SafetyStockPolicy, ShortageHistory, learn_safety_stock
from domain.shortages import (
    SUBSTITUTION_DEADLINE,
    SUBSTITUTION_DEFAULT,
    ShortageOutcome,
    ladder_step,
    lines_left_after_shortage,
    move_target,
    moved_exclude,
    shortage_outcome,
)
from domain.sourcing import Destination, SourcingLine, SourcingMode, SourcingRequest, haversine_km, source
from domain.availability import available_units, can_hold
from contracts.tasks import TaskAction
from sim.world import OTHER_CITIES, Behaviour, Chain, Policy

__all__ = ["START", "Simulation", "Outcome", "OrderIntent", "run"]

#: minute 0 of every run: a Monday, midnight in Moscow
START = datetime(2026, 3, 2, tzinfo=timezone(timedelta(hours=3)))
MSK_OFFSET = 180
TICK = 5.0  # minutes between offline-sale batches
DRAIN_DAYS = 2
SLA_SHIP, SLA_PICKUP = 120, 30  # settings: ORKESTR_ASSEMBLY_SLA_SHIP_MINUTES / _PICKUP_MINUTES
REPICK_MIN = 10.0
EVOLVE_EVERY = 60.0  # minutes: misplaced units are brought up to date at most this often
WALK_IN_TRIES = 3  # items a walk-in customer looks for before leaving without buying  # a revised task: the store adds the substitute / re-checks what is left

# online orders per hour of the day (Moscow) and per weekday (Monday first), relative
_HOUR = (0.35, 0.2, 0.12, 0.08, 0.08, 0.12, 0.3, 0.6, 0.9, 1.0, 1.1, 1.15, 1.2, 1.2, 1.15, 1.1, 1.1, 1.2,
         1.35, 1.55, 1.75, 1.8, 1.4, 0.8)
_WEEKDAY = (1.1, 1.0, 1.0, 1.0, 0.9, 0.85, 1.15)
# offline sales per local hour (only open hours count) and per weekday
_STORE_HOUR = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.6, 0.8, 1.1, 1.2, 1.0, 0.9, 1.0, 1.2, 1.5, 1.6, 1.3, 0.9, 0.5, 0)
_STORE_WEEKDAY = (0.85, 0.85, 0.9, 0.95, 1.1, 1.35, 1.2)

# event kinds (heap entries are (time, seq, kind, a, b))
E_TICK, E_UPLOAD, E_BOOK, E_IMPORT, E_ORDER, E_PAY, E_EXPIRE, E_ASSEMBLE, E_LADDER, E_MOVE, E_ANSWER, \
    E_HANDOVER, E_REPLENISH, E_NIGHTLY = range(14)


@dataclass(frozen=True)
class OrderIntent:
    """What a customer wants, before the storefront shows what is available."""

    at: float  # minute of the run
    city: int  # index into Simulation.cities
    pickup_store: str | None
    lines: tuple[tuple[str, int], ...]  # (sku, qty) wished for
    u: float  # the customer's own random number (answers, payment)
    order_id: str = ""
    place: tuple[str, str] | None = None  # (region, city) when ``city`` is not known yet (replayed orders)


class Shipment:
    __slots__ = ("order", "n", "li", "lines", "held", "picked", "tried", "gen", "task_at", "sla", "state",
                 "attempts", "transfer", "dist")

    def __init__(self, order: "Order", n: int, li: int, lines: list[list[Any]], transfer: bool, dist: float | None) -> None:
        self.order, self.n, self.li = order, n, li
        self.lines = lines  # [[sku, qty, pos], ...]
        self.held: dict[int, int] = {}  # pair → units held in the ledger
        self.picked: dict[int, int] = {}  # pair → units set aside by the store
        self.tried: list[str] = []
        self.gen = 0  # bumped when the shipment changes: older events about it are ignored
        self.task_at = 0.0
        self.sla = SLA_SHIP
        self.state = "new"  # new | assembling | short | assembled | done | cancelled
        self.attempts = 0
        self.transfer = transfer
        self.dist: float | None = dist  # km to the customer (None: a city with no coordinates)


class Order:
    __slots__ = ("intent", "measured", "dest", "xy", "mode", "shipments", "first_failed", "moved", "person",
                 "substituted", "removed", "cancelled", "store_first", "split", "rejected", "open_shipments", "done",
                 "first_locs", "promise_days")

    def __init__(self, intent: OrderIntent, measured: bool) -> None:
        self.intent, self.measured = intent, measured
        self.shipments: list[Shipment] = []
        self.first_failed = self.moved = self.person = self.substituted = False
        self.removed = 0
        self.cancelled = self.store_first = self.split = self.rejected = self.done = False
        self.open_shipments = 0
        self.first_locs: tuple[str, ...] = ()
        self.promise_days: float | None = None


@dataclass
class Outcome:
    """The measured numbers of one run (orders placed in the measured days)."""

    policy: str
    label: str
    days: int
    warmup_days: int
    orders: int = 0  # placed and paid
    rejected: int = 0  # refused at placement: the ledger had not enough
    store_orders: int = 0  # with at least one shipment first sourced to a store
    not_assemblable: int = 0  # a first-sourced shipment reported short at its first location
    not_assemblable_store: int = 0  # … of the store orders
    delivered_complete: int = 0  # every unit, or an accepted substitute
    partial: int = 0  # delivered without the removed units
    cancelled: int = 0
    split: int = 0
    moved: int = 0
    reached_person: int = 0  # an operator or supervisor task was opened
    substituted: int = 0
    still_open: int = 0
    promised: int = 0  # orders with a promised date (replay with carrier rules)
    promise_days_sum: float = 0.0
    shipments: int = 0
    distance_km_sum: float = 0.0
    tasks_assembled: int = 0
    tasks_in_sla: int = 0
    offline_sales: int = 0
    offline_lost: int = 0  # a walk-in customer could not find the unit
    per_day: list[dict[str, float]] = field(default_factory=list)
    causes: dict[str, int] = field(default_factory=lambda: {"misplaced": 0, "record_wrong": 0, "sold_meanwhile": 0})
    seconds: float = 0.0

    def share(self, n: int, base: int | None = None) -> float:
        base = self.orders if base is None else base
        return n / base if base else 0.0

    def summary(self) -> dict[str, Any]:
        """The numbers a person reads (shares 0–1, km, counts)."""
        return {
            "config": self.policy, "label": self.label, "days": self.days, "warmup_days": self.warmup_days,
            "orders": self.orders, "rejected_at_placement": self.rejected, "store_orders": self.store_orders,
            "not_assemblable_share_of_store_orders": round(self.share(self.not_assemblable_store, self.store_orders), 4),
            "not_assemblable_share": round(self.share(self.not_assemblable), 4),
            "delivered_complete_share": round(self.share(self.delivered_complete), 4),
            "partial_share": round(self.share(self.partial), 4),
            "cancelled_share": round(self.share(self.cancelled), 4),
            "split_share": round(self.share(self.split), 4),
            "moved_share": round(self.share(self.moved), 4),
            "reached_person_share": round(self.share(self.reached_person), 4),
            "substituted_share": round(self.share(self.substituted), 4),
            "store_share": round(self.share(self.store_orders), 4),
            "mean_distance_km": round(self.distance_km_sum / self.shipments, 1) if self.shipments else 0.0,
            "mean_promised_days": round(self.promise_days_sum / self.promised, 2) if self.promised else None,
            "assembly_sla_kept": round(self.tasks_in_sla / self.tasks_assembled, 4) if self.tasks_assembled else 0.0,
            "shortage_causes": dict(self.causes), "still_open": self.still_open, "offline_sales": self.offline_sales, "offline_lost": self.offline_lost,
            "per_day": self.per_day, "seconds": round(self.seconds, 2),
        }


def _lognormal(rng: random.Random, mean: float, sigma: float = 0.6) -> float:
    return rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def _hhmm_min(value: str | None, default: int) -> int:
    if not value:
        return default
    hh, mm = value.split(":")
    return int(hh) * 60 + int(mm)


class Simulation:
    """One run. ``Simulation(chain, behaviour, policy, seed, days).run() -> Outcome``; ``intents``
    replaces the generated demand (``sim.replay`` feeds real orders)."""

    def __init__(self, chain: Chain, behaviour: Behaviour, policy: Policy, *, seed: int = 1, days: int = 30,
                 warmup_days: int = 7, intents: list[OrderIntent] | None = None, start: datetime = START,
                 carrier_rules: list[Any] | None = None) -> None:
        if days < 1 or not 0 <= warmup_days < days:
            raise ValueError("days: must be >= 1, warmup_days between 0 and days - 1")
        self.chain, self.b, self.policy, self.seed = chain, behaviour, policy, seed
        self.days, self.warmup = days, warmup_days
        self.start, self.weekday0 = start, start.weekday()
        self.carrier_rules = carrier_rules  # domain.promise.CarrierRule: promised dates are measured when given
        self.horizon = (days + DRAIN_DAYS) * 1440.0
        self.rng_sales = random.Random(f"sales:{seed}")
        self.rng_store = random.Random(f"stores:{seed}")
        self.rng_ops = random.Random(f"ops:{seed}")
        self.heap: list[tuple[float, int, int, Any, Any]] = []
        self.seq = 0
        self.weights = policy.weights
        self.learned = LearnedSafetyStock()
        self._build_network()
        self._build_stock()
        self.intents = ([replace(i, city=self.city_index(*i.place)) if i.place else i for i in intents]
                        if intents is not None else self._demand())
        self.out = Outcome(policy.key, policy.label, days, warmup_days)
        self.orders: list[Order] = []

    # ------------------------------------------------------------------ the network
    def _build_network(self) -> None:
        ch, b = self.chain, self.b
        self.locs = list(ch.locations)
        self.loc_index = {l.id: i for i, l in enumerate(self.locs)}
        self.src = [source_location(l) for l in self.locs]
        self.is_store = [l.kind == "store" for l in self.locs]
        self.off = [ch.utc_offset_min.get(l.id, MSK_OFFSET) - MSK_OFFSET for l in self.locs]
        self.open_min = [_hhmm_min(l.opens_at, 0) for l in self.locs]
        self.close_min = [max(_hhmm_min(l.closes_at, 1440), _hhmm_min(l.opens_at, 0) + 1) for l in self.locs]
        for i, l in enumerate(self.locs):
            if l.opens_at == l.closes_at:  # open round the clock
                self.open_min[i], self.close_min[i] = 0, 1440
        rs = random.Random(f"chain:{self.seed}")  # per-store traits: the same in every configuration
        ranges = b.store_ranges()
        self.trait: list[dict[str, float]] = []
        for i, l in enumerate(self.locs):
            t = {k: rs.uniform(*v) for k, v in ranges.items()}
            if not self.is_store[i]:
                t.update(offline_units_per_store_day=0.0, record_error_share=0.0, misplaced_share=0.0,
                         receiving_error_share=0.0,
                         shrink_units_per_store_day=0.0, misscan_share=0.0,
                         store_pick_mean_min=b.warehouse_pick_mean_min)
            f = 1.0 / (b.misplaced_found_days * 1440.0)
            pi = t["misplaced_share"]
            t["mis_a"] = pi * f / (1 - pi) if pi < 1 else 0.0  # per minute: a findable unit gets misplaced
            t["mis_f"] = f
            self.trait.append(t)
        # customer cities: the store cities (weighted by their stores) and a few without a store
        cities: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, l in enumerate(self.locs):
            if self.is_store[i]:
                cities[(l.region, l.city)].append(i)
        #: (region, city, lat, lon, pickup stores there); no coordinates for a city with no location
        self.cities: list[tuple[str, str, float | None, float | None, list[int]]] = []
        weights: list[float] = []
        store_total = sum(len(v) for v in cities.values())
        for (region, city), idx in sorted(cities.items()):
            lat = sum(self.locs[i].lat for i in idx) / len(idx)
            lon = sum(self.locs[i].lon for i in idx) / len(idx)
            self.cities.append((region, city, lat, lon, [i for i in idx if self.locs[i].pickup]))
            weights.append((1 - b.other_city_share) * len(idx) / store_total)
        for region, city, lat, lon, _ in OTHER_CITIES:
            self.cities.append((region, city, lat, lon, []))
            weights.append(b.other_city_share / len(OTHER_CITIES))
        self.city_cum = list(_cumulative(weights))
        # the sourcing destination of each city, exactly as the workflow builds it
        self.dest: list[Destination] = []
        for region, city, _, _, _ in self.cities:
            self.dest.append(order_destination(Delivery(method=DeliveryMethod.courier,
                                                        address=Address(region=region, city=city, line="", postcode="")),
                                               self.locs))

    def city_index(self, region: str, city: str) -> int:
        """The customer city ``(region, city)``; a city not known yet is added (coordinates borrowed
        from a location there, as the workflow does; unknown when there is none)."""
        key = (region.strip().upper(), city.strip().casefold())
        for i, (r, c, _, _, _) in enumerate(self.cities):
            if (r.upper(), c.casefold()) == key:
                return i
        dest = order_destination(Delivery(method=DeliveryMethod.courier,
                                          address=Address(region=region, city=city, line="", postcode="")), self.locs)
        self.cities.append((region, city, dest.lat, dest.lon, []))
        self.dest.append(dest)
        return len(self.cities) - 1

    def _build_stock(self) -> None:
        ch, b = self.chain, self.b
        self.pid: dict[tuple[str, int], int] = {}
        self.sku_of: list[str] = []
        self.loc_of: list[int] = []
        self.pairs_of_sku: dict[str, list[int]] = defaultdict(list)
        for (sku, loc_id), qty in sorted(ch.target.items(), key=lambda kv: (self.loc_index.get(kv[0][1], -1), kv[0][0])):
            li = self.loc_index.get(loc_id)
            if li is None or qty <= 0 or sku not in ch.product_of:  # stock of a SKU not in the catalogue
                continue
            p = len(self.sku_of)
            self.pid[(sku, li)] = p
            self.sku_of.append(sku)
            self.loc_of.append(li)
            self.pairs_of_sku[sku].append(p)
        n = len(self.sku_of)
        self.target = [ch.target[(self.sku_of[p], self.locs[self.loc_of[p]].id)] for p in range(n)]
        self.erp = list(self.target)  # everything was just delivered: the record is the planogram …
        self.shelf = list(self.target)  # … and the floor differs where the record is wrong
        self.lost = [0] * n
        self.mis_t = [0.0] * n
        self.ledger = list(self.erp)
        self.reserved = [0] * n
        self.pending = [0] * n
        self.unbooked = [0] * n  # store sales the ERP has not posted yet (for telling causes apart)
        self.binned = [0] * n  # units picked for online orders, not handed over yet
        self.dirty: set[int] = set()
        rs = random.Random(f"floor:{self.seed}")
        for p in range(n):
            t = self.trait[self.loc_of[p]]
            if t["record_error_share"] and rs.random() < t["record_error_share"]:
                if rs.random() < b.record_error_overstated:
                    self.shelf[p] = max(0, self.erp[p] - (1 if rs.random() < 0.7 else 2))
                else:
                    self.shelf[p] += 1
            pi = t["misplaced_share"]
            if pi:
                self.lost[p] = sum(1 for _ in range(self.shelf[p]) if rs.random() < pi)
        self._size_w: dict[str, float] = {}
        # product popularity (Zipf over a seeded order of the catalogue) and size curve
        rp = random.Random(f"popularity:{self.seed}")
        products = list(ch.products)
        rp.shuffle(products)
        self.pop = {pr: 1.0 / (rank + 1) ** b.product_popularity_exponent for rank, pr in enumerate(products)}
        self.products = list(ch.products)
        self.product_cum = list(_cumulative([self.pop[pr] for pr in self.products]))
        self.skus_of_product: dict[str, list[str]] = defaultdict(list)
        for sku in ch.skus:
            self.skus_of_product[ch.product_of[sku]].append(sku)
        # offline choice per store: pairs weighted by popularity × size weight
        self.store_pairs: list[list[int]] = [[] for _ in self.locs]
        for p in range(n):
            self.store_pairs[self.loc_of[p]].append(p)
        self.store_cum: list[list[float]] = []
        for li, pairs in enumerate(self.store_pairs):
            w = [self.pop[ch.product_of[self.sku_of[p]]] * self._size_weight(self.sku_of[p]) for p in pairs]
            self.store_cum.append(list(_cumulative(w)))
        self.siblings: dict[int, list[int]] = {}
        # walk-in demand per TICK by local hour of the week (Monday 00-01 first); 0 while closed
        self.sellers = [li for li in range(len(self.locs))
                        if self.trait[li]["offline_units_per_store_day"] and self.store_pairs[li]]  # a store with stock
        self.rate_how: list[list[float]] = []
        for li in range(len(self.locs)):
            daily = self.trait[li]["offline_units_per_store_day"]
            weight = max(sum(_STORE_HOUR[h] for h in range(24) if self._hour_open(li, h)), 1e-9)
            self.rate_how.append([daily * _STORE_HOUR[h % 24] * _STORE_WEEKDAY[h // 24] / weight * TICK / 60.0
                                  if self._hour_open(li, h % 24) else 0.0 for h in range(168)])
        self.upload_queue: list[list[tuple[int, int, int]]] = [[] for _ in self.locs]

    def _size_weight(self, sku: str) -> float:
        w = self._size_w.get(sku)
        if w is None:
            w = self._size_w[sku] = self._size_weight_of(sku)
        return w

    def _size_weight_of(self, sku: str) -> float:
        sizes = self.chain.sizes_of_product.get(self.chain.product_of[sku], ())
        size = self.chain.size_of.get(sku)
        if not sizes or size not in sizes or len(sizes) == 1:
            return 1.0
        mid = (len(sizes) - 1) / 2
        return 1.0 / (1.0 + abs(sizes.index(size) - mid))

    # ------------------------------------------------------------------ demand
    def _demand(self) -> list[OrderIntent]:
        b = self.b
        rng = random.Random(f"orders:{self.seed}")
        peak = max(_HOUR) * max(_WEEKDAY)
        mean = sum(_HOUR) / 24 * sum(_WEEKDAY) / 7
        lam_max = b.online_orders_per_day / 1440.0 * peak / mean
        out: list[OrderIntent] = []
        t = 0.0
        end = self.days * 1440.0
        line_cum = list(_cumulative(b.lines_per_order))
        size_cum: dict[str, list[float]] = {}
        while True:
            t += rng.expovariate(lam_max)
            if t >= end:
                break
            day, minute = divmod(int(t), 1440)
            if rng.random() * peak > _HOUR[minute // 60] * _WEEKDAY[day % 7]:
                continue
            city = bisect.bisect_right(self.city_cum, rng.random() * self.city_cum[-1])
            city = min(city, len(self.cities) - 1)
            stores = self.cities[city][4]
            pickup = rng.choice(stores) if stores and rng.random() < b.pickup_share else None
            n_lines = bisect.bisect_right(line_cum, rng.random() * line_cum[-1]) + 1
            lines: list[tuple[str, int]] = []
            for _ in range(n_lines):
                pr = self.products[min(bisect.bisect_right(self.product_cum, rng.random() * self.product_cum[-1]),
                                       len(self.products) - 1)]
                skus = self.skus_of_product[pr]
                w = size_cum.get(pr)
                if w is None:
                    w = size_cum[pr] = list(_cumulative([self._size_weight(s) for s in skus]))
                sku = skus[min(bisect.bisect_right(w, rng.random() * w[-1]), len(skus) - 1)]
                if all(s != sku for s, _ in lines):
                    lines.append((sku, 2 if rng.random() < b.two_units_share else 1))
            out.append(OrderIntent(at=t, city=city, pickup_store=self.locs[pickup].id if pickup is not None else None,
                                   lines=tuple(lines), u=rng.random(), order_id=f"SIM{len(out) + 1:06d}"))
        return out

    # ------------------------------------------------------------------ time
    def _push(self, t: float, kind: int, a: Any = None, b: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    def _local(self, li: int, t: float) -> float:
        return t + self.off[li]

    def _open_at(self, li: int, t: float) -> float:
        """The first minute ≥ t at which location ``li`` is open."""
        m = self._local(li, t) % 1440
        o, c = self.open_min[li], self.close_min[li]
        if o <= m < c:
            return t
        return t + (o - m if m < o else 1440 - m + o)

    def _finish(self, li: int, start: float, work: float) -> float:
        """When ``work`` minutes of picking started at ``start`` (open) end, counting open hours only."""
        t = start
        o, c = self.open_min[li], self.close_min[li]
        for _ in range(60):
            m = self._local(li, t) % 1440
            left = c - m
            if work <= left:
                return t + work
            work -= left
            t += left + (1440 - c + o)
        return t + work

    def now(self, t: float) -> datetime:
        return self.start + timedelta(minutes=t)

    # ------------------------------------------------------------------ the floor
    def _evolve(self, p: int, t: float) -> None:
        """Bring pair ``p``'s misplaced units up to time ``t`` (a two-state chain per unit), at most
        once an hour: units get lost and found over days."""
        dt = t - self.mis_t[p]
        if dt < EVOLVE_EVERY:
            return
        self.mis_t[p] = t
        tr = self.trait[self.loc_of[p]]
        a, f = tr["mis_a"], tr["mis_f"]
        if a <= 0 or self.shelf[p] <= 0:
            return
        e = math.exp(-(a + f) * dt)
        pi = a / (a + f)
        go, stay = pi * (1 - e), pi + (1 - pi) * e
        r = self.rng_store.random
        found = self.shelf[p] - self.lost[p]
        self.lost[p] = sum(1 for _ in range(found) if r() < go) + sum(1 for _ in range(self.lost[p]) if r() < stay)

    def findable(self, p: int, t: float) -> int:
        self._evolve(p, t)
        return self.shelf[p] - self.lost[p]

    def _sibling(self, p: int) -> int:
        sib = self.siblings.get(p)
        if sib is None:
            li, prod = self.loc_of[p], self.chain.product_of[self.sku_of[p]]
            sib = [q for s in self.skus_of_product[prod] if (q := self.pid.get((s, li))) is not None and q != p]
            self.siblings[p] = sib
        return self.rng_sales.choice(sib) if sib else p

    def _tick(self, t: float) -> None:
        """Offline sales and shrinkage of the last ``TICK`` minutes in every open store."""
        rng = self.rng_sales
        rand, bisect_right, findable = rng.random, bisect.bisect_right, self.findable
        measured = self.warmup * 1440 <= t < self.days * 1440
        how0 = self.weekday0 * 24
        for li in self.sellers:
            lam = self.rate_how[li][(int(t + self.off[li]) // 60 + how0) % 168]
            if not lam:
                continue
            tr = self.trait[li]
            cum = self.store_cum[li]
            pairs = self.store_pairs[li]
            top, last = cum[-1], len(pairs) - 1
            for _ in range(_poisson(rng, lam)):
                scan_wrong = rand() < tr["misscan_share"]
                for _try in range(WALK_IN_TRIES):  # what the customer wanted is not there: something else
                    p = pairs[min(bisect_right(cum, rand() * top), last)]
                    if findable(p, t) > 0:
                        break
                else:
                    if measured:
                        self.out.offline_lost += 1
                    continue
                self.shelf[p] -= 1
                if measured:
                    self.out.offline_sales += 1
                scanned = self._sibling(p) if scan_wrong else p
                self.upload_queue[li].append((0, scanned, 1))
                self.unbooked[scanned] += 1
                if self.policy.pos_events:
                    self.ledger[scanned] -= 1
                    self.pending[scanned] += 1
            if rng.random() < tr["shrink_units_per_store_day"] * TICK / (self.close_min[li] - self.open_min[li]):
                p = pairs[min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(pairs) - 1)]
                if self.findable(p, t) > 0:
                    self.shelf[p] -= 1

    def _hour_open(self, li: int, h: int) -> bool:
        return self.open_min[li] <= h * 60 < self.close_min[li]

    # ------------------------------------------------------------------ the ERP and the ledger
    def _upload(self, li: int, t: float) -> None:
        batch, self.upload_queue[li] = self.upload_queue[li], []
        if batch:
            self._push(t + self.b.erp_upload_lag_min, E_BOOK, li, batch)

    def _book(self, batch: list[tuple[int, int, int]]) -> None:
        for kind, p, v in batch:
            if kind == 0:  # a sale
                self.erp[p] = max(self.erp[p] - v, 0)
                self.unbooked[p] -= v
                if self.policy.pos_events:
                    self.pending[p] = max(self.pending[p] - v, 0)
            else:  # a recount: the record becomes what the staff found
                self.erp[p] = v
            self.dirty.add(p)

    def _import(self) -> None:
        """The ledger takes the ERP's on hand (less the POS sales the ERP has not posted yet)."""
        for p in self.dirty:
            self.ledger[p] = self.erp[p] - self.pending[p]
        self.dirty.clear()

    def _replenish(self, li: int) -> None:
        for p in self.store_pairs[li]:
            q = self.target[p] - self.erp[p]
            if q > 0:
                self._evolve(p, self._now)
                short_shipped = sum(1 for _ in range(q) if self.rng_store.random() < self.trait[li]["receiving_error_share"])
                self.shelf[p] += q - short_shipped
                self.erp[p] += q
                self.dirty.add(p)

    def safety(self, p: int) -> int:
        li = self.loc_of[p]
        configured = self.locs[li].safety_stock if self.policy.configured_safety else 0
        if self.policy.learned_safety is None:
            return configured
        return self.learned.effective_safety_stock(self.locs[li].id, self.sku_of[p], self.ledger[p], configured)

    def available(self, p: int) -> int:
        return available_units(self.ledger[p], self.reserved[p], self.safety(p))

    # ------------------------------------------------------------------ sourcing
    def _request(self, lines: list[SourcingLine], city: int, pickup: str | None, t: float,
                 exclude: frozenset[str] = frozenset()) -> SourcingRequest:
        """The sourcing request the workflow would build: only locations holding some of the cart
        are listed (the others cannot change the plan; ``tests/unit/test_sim.py`` checks it)."""
        avail: dict[tuple[str, str], int] = {}
        idx: set[int] = set()
        for sku in {ln.sku for ln in lines}:
            for p in self.pairs_of_sku.get(sku, ()):
                a = self.available(p)
                if a > 0:
                    li = self.loc_of[p]
                    avail[(sku, self.locs[li].id)] = a
                    idx.add(li)
        if pickup is not None:
            idx.add(self.loc_index[pickup])
        use_load = self.weights.capacity_km > 0
        locs = [replace(self.src[li], assigned_today=self._assigned(li, t)) if use_load else self.src[li]
                for li in sorted(idx)]
        return SourcingRequest(lines=lines, locations=locs, available=avail, destination=self.dest[city],
                               mode=SourcingMode.PICKUP if pickup else SourcingMode.SHIP, pickup_store_id=pickup,
                               now=self.now(t), exclude=exclude, weights=self.weights)

    def _assigned(self, li: int, t: float) -> int:
        return self.cap.get((li, int(self._local(li, t) // 1440)), 0)

    def _hold(self, sh: Shipment) -> bool:
        """Hold the shipment's lines at its location (all or nothing, like ``Ledger.reserve``)."""
        want: dict[int, int] = defaultdict(int)
        for sku, qty, _ in sh.lines:
            p = self.pid.get((sku, sh.li))
            if p is None:
                return False
            want[p] += qty
        for p, q in want.items():
            if not can_hold(self.ledger[p], self.reserved[p], self.safety(p), q):
                return False
        for p, q in want.items():
            self.reserved[p] += q
            sh.held[p] = sh.held.get(p, 0) + q
        return True

    def _release(self, sh: Shipment, p: int | None = None, qty: int | None = None) -> None:
        for q_p in ([p] if p is not None else list(sh.held)):
            units = sh.held.get(q_p, 0) if qty is None else min(qty, sh.held.get(q_p, 0))
            self.reserved[q_p] -= units
            sh.held[q_p] -= units
            if not sh.held[q_p]:
                del sh.held[q_p]

    def _put_back(self, sh: Shipment) -> None:
        for p, q in sh.picked.items():
            self._evolve(p, self._now)
            self.shelf[p] += q
            self.binned[p] -= q
        sh.picked = {}

    def _distance(self, sh: Shipment) -> float | None:
        o = sh.order
        loc = self.locs[sh.li]
        if o.intent.pickup_store is not None:
            if loc.id == o.intent.pickup_store:
                return 0.0
            ps = self.locs[self.loc_index[o.intent.pickup_store]]
            return haversine_km(loc.lat, loc.lon, ps.lat, ps.lon)
        _, _, lat, lon, _ = self.cities[o.intent.city]
        if lat is None or lon is None:
            return None
        return haversine_km(loc.lat, loc.lon, lat, lon)

    # ------------------------------------------------------------------ orders
    def _place(self, intent: OrderIntent, t: float) -> None:
        measured = self.warmup * 1440 <= t < self.days * 1440
        o = Order(intent, measured)
        rng = random.Random(f"order:{self.seed}:{intent.order_id}")
        lines: list[SourcingLine] = []
        for sku, qty in intent.lines:
            if sum(self.available(p) for p in self.pairs_of_sku.get(sku, ())) < qty:
                # the storefront shows it sold out: the customer takes a neighbouring size, or drops it
                alts = [s for s in self.skus_of_product[self.chain.product_of[sku]]
                        if s != sku and all(s != x.sku for x in lines)
                        and sum(self.available(p) for p in self.pairs_of_sku.get(s, ())) >= qty]
                if not alts or rng.random() < 0.5:
                    continue
                sku = rng.choice(alts)
            if all(sku != x.sku for x in lines):
                lines.append(SourcingLine(pos_id=len(lines) + 1, sku=sku, qty=qty))
        if not lines:
            return
        plan = source(self._request(lines, intent.city, intent.pickup_store, t))
        if plan.unfulfilled:
            if measured:
                self.out.rejected += 1
            return
        for n, ps in enumerate(plan.shipments, start=1):
            li = self.loc_index[ps.location_id]
            sh = Shipment(o, n, li, [[l.sku, l.qty, l.pos_id] for l in ps.lines], ps.transfer_to is not None, 0.0)
            sh.sla = SLA_PICKUP if intent.pickup_store is not None else SLA_SHIP
            if not self._hold(sh):  # cannot happen: the plan used the same figures
                raise AssertionError(f"hold refused for a fresh plan at {ps.location_id}")
            sh.dist = self._distance(sh)
            o.shipments.append(sh)
        o.first_locs = tuple(s.location_id for s in plan.shipments)
        if self.carrier_rules is not None and intent.pickup_store is None:
            o.promise_days = self._promise_days(plan.shipments, intent.city, t)
        o.store_first = any(self.is_store[s.li] for s in o.shipments)
        o.split = len(o.shipments) > 1
        o.open_shipments = len(o.shipments)
        self.orders.append(o)
        if intent.u < self.b.unpaid_share:
            self._push(t + self.b.payment_window_min, E_EXPIRE, o)
        else:
            delay = min(_lognormal(rng, self.b.payment_median_min * 1.2), self.b.payment_window_min - 0.5)
            self._push(t + delay, E_PAY, o)

    def _promise_days(self, shipments: Any, city: int, t: float) -> float | None:
        """Calendar days from the order to the last promised day of the best delivery option
        (``domain.delivery.delivery_options`` with the carrier rules), or None when none serves."""
        from domain.delivery import delivery_options, region_tz

        region = self.cities[city][0]
        now = self.now(t)
        opts = delivery_options(shipments, {l.id: l for l in self.locs}, self.carrier_rules or [], region=region,
                                now=now, assembly_minutes=SLA_SHIP)
        if not opts:
            return None
        return float((opts[0].date_to - now.astimezone(region_tz(region)).date()).days)

    def _expire(self, o: Order) -> None:
        for sh in o.shipments:
            self._release(sh)
            sh.state = "cancelled"
        o.shipments, o.done, o.measured = [], True, False  # never paid: not an order of the comparison

    def _paid(self, o: Order, t: float) -> None:
        for sh in o.shipments:
            self._give_task(sh, t)

    def _give_task(self, sh: Shipment, t: float) -> None:
        """The POS gets an assembly task: when will the store have picked it?"""
        li = sh.li
        sh.gen += 1
        sh.task_at = t
        sh.state = "assembling"
        sh.attempts += 1
        sla = self.locs[li].assembly_sla_minutes or sh.sla
        rng = self.rng_store
        start = self._open_at(li, t)
        day = int(self._local(li, start) // 1440)
        cap = self.locs[li].daily_capacity
        while cap is not None and self.cap.get((li, day), 0) >= cap:  # the day is full: the next one
            start = self._open_at(li, start + (1440 - self._local(li, start) % 1440))
            day = int(self._local(li, start) // 1440)
        self.cap[(li, day)] = self.cap.get((li, day), 0) + 1
        done = self._finish(li, start, _lognormal(rng, self.trait[li]["store_pick_mean_min"]))
        self._push(done, E_ASSEMBLE, sh, sh.gen)
        step = ladder_step(sla).total_seconds() / 60
        self._push(t + sla + step, E_LADDER, sh, (sh.gen, sla, step))

    def _history(self, li: int, t: float, lines: int, short_pairs: list[int]) -> None:
        day = int(t // 1440)
        self.hist_lines[(day, li)] += lines
        self.hist_short[(day, li)] += len(short_pairs)
        for p in short_pairs:
            self.last_short[(self.locs[li].id, self.sku_of[p])] = t

    def _assemble(self, sh: Shipment, t: float) -> None:
        """The store picks: everything found → assembled; a line not found → a shortage report."""
        o = sh.order
        short: list[tuple[int, str, int]] = []
        need: dict[int, int] = defaultdict(int)
        for sku, qty, _ in sh.lines:
            need[self.pid[(sku, sh.li)]] += qty
        picked_now: dict[int, int] = {}
        for p, q in need.items():
            q -= sh.picked.get(p, 0)
            if q <= 0:
                continue
            got = min(self.findable(p, t), q)
            if got:
                self.shelf[p] -= got
                self.binned[p] += got
                picked_now[p] = got
            if got < q:
                short.append((p, self.sku_of[p], q - got))
                if o.measured:
                    self.out.causes[self._cause(p, q - got)] += 1
        for p, q in picked_now.items():
            sh.picked[p] = sh.picked.get(p, 0) + q
        self._history(sh.li, t, len(need), [p for p, _, _ in short])
        if not short:
            sh.state = "assembled"
            if o.measured:
                self.out.tasks_assembled += 1
                self.out.tasks_in_sla += t - sh.task_at <= (self.locs[sh.li].assembly_sla_minutes or sh.sla)
            self._push(t + self.b.handover_after_min, E_HANDOVER, sh, sh.gen)
            return
        if sh.attempts == 1 and not sh.tried:
            o.first_failed = True
        for p, _, _ in short:
            if self.rng_store.random() < self.b.spot_count_after_shortage:
                self.upload_queue[sh.li].append((1, p, self.findable(p, t)))
        sh.state = "short"
        sh.gen += 1
        _, sku, missing = short[0]
        if self.policy.auto_resource and self._move(sh, t):
            return
        self._ask_operator(sh, t, sku, missing)

    def _cause(self, p: int, missing: int) -> str:
        """Why units of pair ``p`` were not found: on the floor but misplaced; a record that says more
        than there is (shrinkage, mis-scans, an old error); or sold while the ledger still offered them."""
        if self.shelf[p] - self.lost[p] + missing <= self.shelf[p]:
            return "misplaced"
        if self.erp[p] - self.unbooked[p] - self.binned[p] > self.shelf[p]:
            return "record_wrong"
        return "sold_meanwhile"

    def _move(self, sh: Shipment, t: float) -> bool:
        """``domain.shortages.move_target``: the whole shipment to one other location with everything."""
        o = sh.order
        if o.intent.pickup_store is not None:
            return False  # click & collect: a person decides (workflows/escalation.py)
        loc_id = self.locs[sh.li].id
        lines = [SourcingLine(pos_id=pos, sku=sku, qty=qty) for sku, qty, pos in sh.lines]
        target = move_target(self._request(lines, o.intent.city, None, t, exclude=moved_exclude(loc_id, sh.tried)))
        if target is None:
            return False
        new = Shipment(o, sh.n, self.loc_index[target.location_id], [list(l) for l in sh.lines], False, 0.0)
        if not self._hold(new):
            return False
        self._release(sh)
        self._put_back(sh)
        sh.gen += 1
        sh.tried.append(loc_id)
        sh.li, sh.held, sh.picked = new.li, new.held, {}
        sh.dist = self._distance(sh)
        o.moved = True
        self._give_task(sh, t)
        return True

    def _ask_operator(self, sh: Shipment, t: float, sku: str, missing: int) -> None:
        sh.order.person = True
        deadline = SUBSTITUTION_DEADLINE.total_seconds() / 60
        msk_hour = int((t % 1440) // 60)
        lo, hi = self.b.operator_hours_msk
        answer = deadline
        if lo <= msk_hour < hi:
            answer = min(_lognormal(self.rng_ops, self.b.operator_answer_median_min * 1.2), deadline)
        self._push(t + answer, E_ANSWER, sh, (sh.gen, sku, missing, answer < deadline))

    def _answer(self, sh: Shipment, t: float, sku: str, missing: int, answered: bool) -> None:
        """The operator's answer (or the default) to the substitution task, applied like the order workflow."""
        o = sh.order
        rng = self.rng_ops
        action, substitute = SUBSTITUTION_DEFAULT, None
        if answered:
            substitute = self._substitute_for(sh, sku, missing)
            if substitute is not None and rng.random() < self.b.substitute_accepted:
                action = TaskAction.substitute
            elif rng.random() < self.b.remove_rather_than_cancel:
                action = TaskAction.remove
            else:
                action = TaskAction.cancel
        line = next(l for l in sh.lines if l[0] == sku)
        kept = lines_left_after_shortage([_L(l[0], l[1]) for l in sh.lines], sku, missing)
        others = [s for s in o.shipments if s is not sh and s.state not in ("cancelled",)]
        outcome = shortage_outcome(action, kept=kept, other_shipments=others)
        if outcome == ShortageOutcome.cancel_order:
            self._cancel_order(o)
            return
        if outcome == ShortageOutcome.drop_shipment:
            o.removed += line[1]
            self._close(sh, cancelled=True)
            return
        # revise: the short units leave the shipment (their hold is released); a substitute is held here
        p_short = self.pid[(sku, sh.li)]
        self._release(sh, p_short, missing)
        line[1] -= missing
        sh.lines = [l for l in sh.lines if l[1] > 0]
        if action == TaskAction.substitute and substitute is not None:
            new_line = [substitute, missing, max(l[2] for l in sh.lines + [line]) + 1]
            p_sub = self.pid[(substitute, sh.li)]
            if can_hold(self.ledger[p_sub], self.reserved[p_sub], self.safety(p_sub), missing):
                self.reserved[p_sub] += missing
                sh.held[p_sub] = sh.held.get(p_sub, 0) + missing
                sh.lines.append(new_line)
                o.substituted = True
            else:
                o.removed += missing
        else:
            o.removed += missing
        picked_short = sh.picked.get(p_short, 0)
        if picked_short > line[1]:  # set aside more than the line now needs: back on the shelf
            self.shelf[p_short] += picked_short - line[1]
            sh.picked[p_short] = line[1]
        sh.gen += 1
        sh.state = "assembling"
        self._push(t + REPICK_MIN, E_ASSEMBLE, sh, sh.gen)

    def _substitute_for(self, sh: Shipment, sku: str, missing: int) -> str | None:
        """What an operator offers: the same product in another colour of the size, else the next size."""
        ch = self.chain
        prod, size = ch.product_of[sku], ch.size_of.get(sku)
        in_order = {l[0] for s in sh.order.shipments for l in s.lines}
        cands = [s for s in self.skus_of_product[prod] if s != sku and s not in in_order]
        cands.sort(key=lambda s: (ch.size_of.get(s) != size, s))
        for s in cands:
            p = self.pid.get((s, sh.li))
            if p is not None and self.available(p) >= missing:
                return s
        return None

    def _ladder(self, sh: Shipment, t: float, gen: int, sla: float, step: float) -> None:
        """SLA + one step: a supervisor task; one more step: the move (or an operator: wait)."""
        if gen != sh.gen or sh.state != "assembling":
            return
        sh.order.person = True
        self._push(t + step, E_MOVE, sh, gen)

    def _late_move(self, sh: Shipment, t: float, gen: int) -> None:
        if gen != sh.gen or sh.state != "assembling":
            return
        if self.policy.auto_resource and self._move(sh, t):
            if sh.order.measured:
                self.out.tasks_assembled += 1  # the late task counts as an SLA breach
        # else: "cancel or wait" — nobody cancels, the store assembles when it does

    def _handover(self, sh: Shipment) -> None:
        """The courier takes the parcel: the hold becomes a sale in the ledger and in the ERP."""
        for p, q in sh.picked.items():
            self.binned[p] -= q
        for p, q in sh.held.items():
            self.reserved[p] -= q
            self.ledger[p] -= q
            self.erp[p] = max(self.erp[p] - q, 0)
            self.dirty.add(p)
        sh.held, sh.picked = {}, {}
        self._close(sh, cancelled=False)

    def _close(self, sh: Shipment, *, cancelled: bool) -> None:
        if cancelled:
            self._release(sh)
            self._put_back(sh)
        sh.state = "cancelled" if cancelled else "done"
        sh.gen += 1
        o = sh.order
        o.open_shipments -= 1
        if o.open_shipments == 0:
            self._finish_order(o)

    def _cancel_order(self, o: Order) -> None:
        o.cancelled = True
        for sh in o.shipments:
            if sh.state not in ("done", "cancelled"):
                self._release(sh)
                self._put_back(sh)
                sh.state = "cancelled"
                sh.gen += 1
                o.open_shipments -= 1
        self._finish_order(o)

    def _finish_order(self, o: Order) -> None:
        if o.done:
            return
        o.done = True
        if not o.measured:
            return
        out = self.out
        out.orders += 1
        out.store_orders += o.store_first
        out.not_assemblable += o.first_failed
        out.not_assemblable_store += o.first_failed and o.store_first
        out.split += o.split
        out.moved += o.moved
        out.reached_person += o.person
        out.substituted += o.substituted
        if o.cancelled or all(s.state == "cancelled" for s in o.shipments):
            out.cancelled += 1
        elif o.removed:
            out.partial += 1
        else:
            out.delivered_complete += 1
        for sh in o.shipments:
            if sh.state == "done" and sh.dist is not None:
                out.shipments += 1
                out.distance_km_sum += sh.dist
        if o.promise_days is not None:
            out.promised += 1
            out.promise_days_sum += o.promise_days
        day = int(o.intent.at // 1440)
        while len(out.per_day) <= day:
            out.per_day.append({"day": len(out.per_day) + 1, "orders": 0, "store_orders": 0, "not_assemblable": 0})
        d = out.per_day[day]
        d["orders"] += 1
        d["store_orders"] += o.store_first
        d["not_assemblable"] += o.first_failed and o.store_first

    def _nightly(self, t: float) -> None:
        """03:00 Moscow: the learned safety stock (and the reliability data) from the history so far."""
        pol = self.policy.learned_safety
        if pol is None and not self.weights.reliability_km:
            return
        days = pol.history_days if pol else 28
        memory = pol.pair_memory_days if pol else 14
        today = int(t // 1440)
        lines: dict[str, int] = defaultdict(int)
        short: dict[str, int] = defaultdict(int)
        for (day, li), n in self.hist_lines.items():
            if today - days <= day < today:
                lines[self.locs[li].id] += n
        for (day, li), n in self.hist_short.items():
            if today - days <= day < today:
                short[self.locs[li].id] += n
        recent = frozenset(k for k, when in self.last_short.items() if when >= t - memory * 1440)
        learned = learn_safety_stock(ShortageHistory(lines=dict(lines), short=dict(short), recent_short=recent),
                                     pol or _DEFAULT_POLICY)
        if pol is not None:
            self.learned = learned
        if self.weights.reliability_km:
            self.weights = replace(self.weights, shortage_rate=dict(learned.miss_rate))

    # ------------------------------------------------------------------ the run
    def run(self) -> Outcome:
        import time as _time

        t0 = _time.perf_counter()
        self.cap: dict[tuple[int, int], int] = {}
        self.hist_lines: dict[tuple[int, int], int] = defaultdict(int)
        self.hist_short: dict[tuple[int, int], int] = defaultdict(int)
        self.last_short: dict[tuple[str, str], float] = {}
        self._now = 0.0
        b, pol = self.b, self.policy
        for intent in self.intents:
            self._push(intent.at, E_ORDER, intent)
        self._push(TICK, E_TICK)
        every = min(pol.full_import_every_min, pol.delta_every_min or math.inf)
        self._push(every, E_IMPORT, every)
        for li in range(len(self.locs)):
            if self.is_store[li]:
                self._push((li * 7) % b.erp_upload_every_min + 0.5, E_UPLOAD, li)
            # deliveries: 07:00 local on the location's weekday
            first = (li % 3) * 1440 + 7 * 60 - self.off[li]
            self._push(first if first > 0 else first + b.replenish_every_days * 1440, E_REPLENISH, li)
        self._push(3 * 60, E_NIGHTLY)
        heap = self.heap
        while heap:
            t, _, kind, a, x = heapq.heappop(heap)
            if t > self.horizon:
                break
            self._now = t
            if kind == E_TICK:
                self._tick(t)
                self._push(t + TICK, E_TICK)
            elif kind == E_ORDER:
                self._place(a, t)
            elif kind == E_ASSEMBLE:
                if x == a.gen and a.state == "assembling":
                    self._assemble(a, t)
            elif kind == E_UPLOAD:
                self._upload(a, t)
                self._push(t + b.erp_upload_every_min, E_UPLOAD, a)
            elif kind == E_BOOK:
                self._book(x)
            elif kind == E_IMPORT:
                self._import()
                self._push(t + a, E_IMPORT, a)
            elif kind == E_PAY:
                self._paid(a, t)
            elif kind == E_EXPIRE:
                self._expire(a)
            elif kind == E_HANDOVER:
                if x == a.gen and a.state == "assembled":
                    self._handover(a)
            elif kind == E_LADDER:
                self._ladder(a, t, *x)
            elif kind == E_MOVE:
                self._late_move(a, t, x)
            elif kind == E_ANSWER:
                gen, sku, missing, answered = x
                if gen == a.gen and a.state == "short":
                    self._answer(a, t, sku, missing, answered)
            elif kind == E_REPLENISH:
                self._replenish(a)
                self._push(t + b.replenish_every_days * 1440, E_REPLENISH, a)
            elif kind == E_NIGHTLY:
                self._nightly(t)
                self._push(t + 1440, E_NIGHTLY)
        self.out.still_open = sum(1 for o in self.orders if o.measured and not o.done)
        self.out.seconds = _time.perf_counter() - t0
        return self.out


class _L:
    __slots__ = ("sku", "qty")

    def __init__(self, sku: str, qty: int) -> None:
        self.sku, self.qty = sku, qty


_DEFAULT_POLICY = SafetyStockPolicy()


def _cumulative(weights: Any) -> Any:
    total = 0.0
    for w in weights:
        total += w
        yield total


def run(chain: Chain, behaviour: Behaviour, policy: Policy, *, seed: int = 1, days: int = 30,
        warmup_days: int = 7, intents: list[OrderIntent] | None = None, **kw: Any) -> Outcome:
    """One configuration, one run (see ``Simulation``)."""
    return Simulation(chain, behaviour, policy, seed=seed, days=days, warmup_days=warmup_days, intents=intents,
                      **kw).run()
