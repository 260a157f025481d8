"""Benchmarks, dependency-free: ``python -m bench`` runs all, ``python -m bench sourcing`` one.

To add a benchmark, write a function taking no arguments that returns a ``Result`` and
register it in ``BENCHMARKS`` (name → function). Timings use ``time.perf_counter``; inputs
come from a fixed seed so runs are comparable.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta, timezone
from typing import Callable


@dataclass(frozen=True)
class Result:
    name: str
    runs: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    note: str = ""


def timings(name: str, fn: Callable[[], object], runs: int, note: str = "", warmup: Callable[[], object] | None = None) -> Result:
    """Call ``fn`` ``runs`` times; percentiles of the wall time of one call. ``warmup`` (if
    given) is called a few times first so imports and caches are not timed."""
    for _ in range(5 if warmup else 0):
        warmup()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    return Result(name, runs, statistics.median(samples), p99, samples[-1], note)


# --- sourcing -------------------------------------------------------------------------------------

_CITIES = [
    ("Москва", "Москва", 55.75, 37.62),
    ("Подольск", "Московская область", 55.43, 37.54),
    ("Санкт-Петербург", "Санкт-Петербург", 59.94, 30.31),
    ("Казань", "Татарстан", 55.79, 49.12),
    ("Екатеринбург", "Свердловская область", 56.84, 60.61),
    ("Новосибирск", "Новосибирская область", 55.03, 82.92),
]


def sourcing(runs: int = 500, seed: int = 20250305) -> Result:
    """``models.sourcing.source`` on random 10-line carts over 100 locations (10 warehouses,
    90 stores in 6 cities; each SKU of the cart stocked at ~30 % of the locations)."""
    from models.sourcing import Destination, LocationKind, SourceLocation, SourcingLine, SourcingRequest, source

    rnd = random.Random(seed)
    locations = []
    for i in range(100):
        city, region, lat, lon = _CITIES[i % len(_CITIES)]
        locations.append(
            SourceLocation(
                id=f"L{i:03d}",
                name=f"Location {i}",
                kind=LocationKind.WAREHOUSE if i % 10 == 0 else LocationKind.STORE,
                city=city,
                region=region,
                lat=lat + rnd.uniform(-0.3, 0.3),
                lon=lon + rnd.uniform(-0.3, 0.3),
                ship_from_store=rnd.random() < 0.8,
                pickup=True,
                opens_at=dtime(10),
                closes_at=dtime(22),
                daily_capacity=60,
                assigned_today=rnd.randint(0, 60),
            )
        )
    skus = [f"SKU-{j:04d}" for j in range(2000)]
    now = datetime(2025, 3, 5, 12, tzinfo=timezone(timedelta(hours=3)))
    requests = []
    for _ in range(runs):
        cart = [SourcingLine(p, sku, rnd.randint(1, 2)) for p, sku in enumerate(rnd.sample(skus, 10), start=1)]
        available = {(ln.sku, loc.id): rnd.randint(0, 4) for ln in cart for loc in locations if rnd.random() < 0.3}
        city, region, lat, lon = rnd.choice(_CITIES)
        requests.append(SourcingRequest(cart, locations, available, Destination(region, city, lat, lon), "ship", now=now))

    it = iter(requests)
    result = timings("sourcing", lambda: source(next(it)), runs, warmup=lambda: source(requests[0]))
    shipments = [len(source(r).shipments) for r in requests[:100]]
    return Result(
        result.name, result.runs, result.p50_ms, result.p99_ms, result.max_ms,
        note=f"10 lines × 100 locations; shipments/plan (first 100) mean {statistics.mean(shipments):.2f}",
    )


BENCHMARKS: dict[str, Callable[[], Result]] = {
    "sourcing": sourcing,
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.stderr.write(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}\n")
        return 2
    rows = [BENCHMARKS[n]() for n in names]
    header = f"{'benchmark':<16} {'runs':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}  note"
    out = [header, "-" * len(header)]
    for r in rows:
        out.append(f"{r.name:<16} {r.runs:>6} {r.p50_ms:>9.3f} {r.p99_ms:>9.3f} {r.max_ms:>9.3f}  {r.note}")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
