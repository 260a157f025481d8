"""What-if: real orders from the order projection through a draft rule set and the rules in force.

``orkestr simulate --replay-orders 2026-11-01..2026-12-01 --rules draft.toml`` reads, from
PostgreSQL (``ORKESTR_DATABASE_URL``): the locations and today's stock (the ledger), the catalogue,
the per-region carrier rules and the orders created in ``[FROM, TO)`` (the ``orders`` projection:
lines, delivery method, address or pickup store, time). The orders are the demand; the world
around them (store sales, wrong records, staff, operators) is the simulator's calibrated
``Behaviour``; Orkestr runs with the ERP sync of the settings, automatic re-sourcing (the
workflow's default) and, once with the rules in force (``rules/active.toml``), once with the
draft. Both runs share the seed, so the difference is the rules'. Printed and written to
``<out>/replay.json``: orders, split rate, mean distance, mean promised days, not assemblable as
first sourced, delivered complete, cancelled — in force, draft, change.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from domain.planning import REGION_UTC_OFFSET_MIN
from domain.sourcing_rules import SourcingRules, parse_rules
from sim.engine import Outcome, OrderIntent, Simulation
from sim.world import Behaviour, Chain, Policy

__all__ = ["ReplayData", "parse_period", "load_replay", "run_replay", "replay_command", "comparison_table"]

MSK = timezone(timedelta(hours=3))
_PERIOD = re.compile(r"^\s*(\S+)\s*\.\.\s*(\S+)\s*$")


def _when(text: str, field: str) -> datetime:
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), MSK)
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{field}: {text!r} is not a date (2026-11-01) or a date-time") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=MSK)


def parse_period(text: str) -> tuple[datetime, datetime]:
    """``FROM..TO`` (dates are Moscow midnights; TO excluded) → aware datetimes; ValueError naming it."""
    m = _PERIOD.match(text or "")
    if not m:
        raise ValueError(f"--replay-orders: expected FROM..TO (e.g. 2026-11-01..2026-12-01), got {text!r}")
    start, end = _when(m.group(1), "--replay-orders FROM"), _when(m.group(2), "--replay-orders TO")
    if end <= start:
        raise ValueError("--replay-orders: TO must be after FROM")
    return start, end


@dataclass
class ReplayData:
    chain: Chain
    intents: list[OrderIntent]
    carrier_rules: list[Any]
    start: datetime  # Moscow midnight on or before FROM: minute 0 of the run
    days: int
    skipped: int  # orders with a SKU the catalogue no longer has


async def load_replay(engine: Any, start: datetime, end: datetime) -> ReplayData:
    """Everything the replay needs from PostgreSQL (read only)."""
    from sqlalchemy import text

    from adapters.delivery import DeliveryRepo
    from adapters.ledger import Ledger
    from adapters.orders_repo import snapshot_from_json

    ledger = Ledger(engine)
    locations = tuple(await ledger.locations())
    async with engine.connect() as conn:
        skus = (await conn.execute(text("SELECT sku, product_id, size, color FROM sku ORDER BY product_id, sku"))).all()
        stock = (await conn.execute(text("SELECT sku, location_id, on_hand FROM stock WHERE on_hand > 0"))).all()
        orders = (await conn.execute(text(
            "SELECT snapshot FROM orders WHERE created_at >= :a AND created_at < :b ORDER BY created_at, order_id"),
            {"a": start, "b": end})).all()
    carrier_rules = await DeliveryRepo(engine).rules()
    catalogue = {r.sku for r in skus}
    products: list[str] = []
    sizes: dict[str, list[str]] = {}
    for r in skus:
        if r.product_id not in sizes:
            products.append(r.product_id)
            sizes[r.product_id] = []
        if r.size not in sizes[r.product_id]:
            sizes[r.product_id].append(r.size)
    chain = Chain(
        locations=locations,
        utc_offset_min={l.id: REGION_UTC_OFFSET_MIN.get(l.region, 180) for l in locations},
        skus=tuple(r.sku for r in skus), product_of={r.sku: r.product_id for r in skus},
        size_of={r.sku: r.size for r in skus}, color_of={r.sku: r.color for r in skus},
        products=tuple(products), sizes_of_product={k: tuple(v) for k, v in sizes.items()},
        target={(r.sku, r.location_id): r.on_hand for r in stock if r.sku in catalogue},
    )
    run_start = datetime.combine(start.astimezone(MSK).date(), time(), MSK)
    known = set(chain.product_of)
    intents: list[OrderIntent] = []
    skipped = 0
    for n, row in enumerate(orders):
        snap = snapshot_from_json(row.snapshot)
        lines = tuple((l.sku, l.qty) for l in snap.lines if l.qty > 0)
        if not lines or any(sku not in known for sku, _ in lines):
            skipped += 1
            continue
        d = snap.delivery
        pickup = d.store_id if d.method.value == "pickup" and d.store_id else None
        if pickup is not None:
            loc = next((l for l in locations if l.id == pickup), None)
            if loc is None:
                skipped += 1
                continue
            place = (loc.region, loc.city)
        elif d.address is not None:
            place = (d.address.region, d.address.city)
        else:
            skipped += 1
            continue
        at = (snap.created_at - run_start).total_seconds() / 60
        paid = (snap.payment.held > 0 or snap.payment.captured > 0
                or snap.status.value not in ("pending", "awaiting_payment", "cancelled", "rejected"))
        intents.append(OrderIntent(at=at, city=-1, pickup_store=pickup, lines=lines,
                                   u=0.99 if paid else 0.0,  # 0: never paid, as it happened
                                   order_id=snap.order_id, place=place))
    days = max(1, math.ceil((end - run_start).total_seconds() / 86400))
    return ReplayData(chain=chain, intents=intents, carrier_rules=carrier_rules, start=run_start, days=days,
                      skipped=skipped)


def _policy(key: str, label: str, rules: SourcingRules, *, delta_every_min: float, full_every_min: float) -> Policy:
    return Policy(key, label, full_import_every_min=full_every_min, delta_every_min=delta_every_min,
                  auto_resource=True, weights=rules.weights, learned_safety=rules.safety, configured_safety=True)


def run_replay(data: ReplayData, active: SourcingRules, draft: SourcingRules, *, seed: int = 1,
               behaviour: Behaviour | None = None, delta_every_min: float = 1.0,
               full_every_min: float = 60.0) -> tuple[Outcome, Outcome]:
    """The same orders and world through the rules in force and the draft."""
    behaviour = behaviour or Behaviour()
    outs = []
    for key, label, rules in (("active", f"in force (version {active.version or 'defaults'})", active),
                              ("draft", "draft", draft)):
        policy = _policy(key, label, rules, delta_every_min=delta_every_min, full_every_min=full_every_min)
        sim = Simulation(data.chain, behaviour, policy, seed=seed, days=data.days, warmup_days=0,
                         intents=[i for i in data.intents if i.at >= 0], start=data.start,
                         carrier_rules=data.carrier_rules)
        outs.append(sim.run())
    return outs[0], outs[1]


_ROWS = (
    ("orders", "orders", "n"), ("split_share", "split shipments", "pct"), ("mean_distance_km", "mean distance, km", "km"),
    ("mean_promised_days", "mean promised days", "days"),
    ("not_assemblable_share", "not assemblable as first sourced", "pct"),
    ("delivered_complete_share", "delivered complete", "pct"), ("cancelled_share", "cancelled", "pct"),
    ("reached_person_share", "reached a person", "pct"),
)


def comparison_table(active: Outcome, draft: Outcome) -> tuple[str, list[dict[str, Any]]]:
    a, d = active.summary(), draft.summary()
    rows, data = [], []
    for key, title, kind in _ROWS:
        va, vd = a.get(key), d.get(key)

        def fmt(v: Any) -> str:
            if v is None:
                return "–"
            return f"{v * 100:.1f} %" if kind == "pct" else (f"{v:,.0f}" if kind in ("n", "km") else f"{v:.2f}")

        change = "–" if va is None or vd is None else (
            f"{(vd - va) * 100:+.1f} pp" if kind == "pct" else f"{vd - va:+,.2f}")
        rows.append((title, fmt(va), fmt(vd), change))
        data.append({"metric": key, "in_force": va, "draft": vd})
    head = ("", a["label"], "draft", "change")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines), data


def replay_command(period: str, rules_path: Path | None, *, rules_dir: str | None, seed: int, out: Path) -> int:
    """The ``orkestr simulate --replay-orders`` body; returns the exit code (2: bad input)."""
    import sys

    from adapters.db import make_engine
    from adapters.rules_store import RulesStore
    from settings import get_settings

    def fail(message: str) -> int:
        sys.stderr.write(f"error: {message}\n")
        return 2

    try:
        start, end = parse_period(period)
    except ValueError as exc:
        return fail(str(exc))
    if rules_path is None:
        return fail("--rules: a draft rule set (TOML) is required with --replay-orders")
    try:
        draft = parse_rules(Path(rules_path).read_text(encoding="utf-8"))
    except OSError as exc:
        return fail(f"--rules: cannot read {rules_path}: {exc.strerror}")
    except ValueError as exc:
        return fail(f"--rules: {rules_path}: {exc}")
    settings = get_settings()
    if not settings.database_url:
        return fail("ORKESTR_DATABASE_URL is not set: the replay reads the order projection")
    active = RulesStore(rules_dir or settings.rules_dir).active()

    async def load() -> ReplayData:
        engine = make_engine(settings.database_url, pool_size=2)
        try:
            return await load_replay(engine, start, end)
        finally:
            await engine.dispose()

    data = asyncio.run(load())
    if not data.intents:
        return fail(f"--replay-orders: no orders created in [{start.isoformat()}, {end.isoformat()})")
    a, d = run_replay(data, active, draft, seed=seed,
                      delta_every_min=max(settings.erp_sync_delta_every_seconds / 60, 1 / 60),
                      full_every_min=settings.erp_sync_full_every_minutes)
    text, rows = comparison_table(a, d)
    print(f"{len(data.intents)} orders from {start.date()} to {end.date()} ({data.skipped} skipped: "
          f"a SKU no longer in the catalogue or no address), {data.days} days, seed {seed}")
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay.json").write_text(json.dumps({
        "from": start.isoformat(), "to": end.isoformat(), "orders": len(data.intents), "skipped": data.skipped,
        "seed": seed, "in_force": a.summary(), "draft": d.summary(), "comparison": rows,
    }, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out / 'replay.json'}")
    return 0
