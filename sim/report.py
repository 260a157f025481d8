"""Running the configurations side by side, and what a person reads: a table, JSON, a chart."""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

from sim.engine import Outcome, run
from sim.world import Behaviour, Policy, chain_from_demo

__all__ = ["run_configurations", "table", "write_json", "draw_chart", "SEED_BEFORE", "SEED_AFTER"]

#: the seed case: orders stores could not assemble, before and after accurate stock everywhere
SEED_BEFORE, SEED_AFTER = 0.43, 0.26

COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("not_assemblable_share_of_store_orders", "not assemblable (store orders)", "pct"),
    ("not_assemblable_share", "… of all orders", "pct"),
    ("delivered_complete_share", "delivered complete", "pct"),
    ("partial_share", "partial", "pct"),
    ("cancelled_share", "cancelled", "pct"),
    ("split_share", "split", "pct"),
    ("mean_distance_km", "mean km", "km"),
    ("assembly_sla_kept", "SLA kept", "pct"),
    ("reached_person_share", "reached a person", "pct"),
    ("store_share", "from stores", "pct"),
)


def _one(args: tuple[Policy, Behaviour, int, int, int, tuple[int, int, bool]]) -> Outcome:
    policy, behaviour, seed, days, warmup, demo = args
    return run(chain_from_demo(*demo), behaviour, policy, seed=seed, days=days, warmup_days=warmup)


def run_configurations(policies: Sequence[Policy], *, behaviour: Behaviour | None = None, seed: int = 1,
                       days: int = 30, warmup_days: int = 7, workers: int | None = None,
                       demo: tuple[int, int, bool] = (42, 2000, False)) -> list[Outcome]:
    """Each policy on the demo chain, ``workers`` processes at a time (default: the CPUs, at most 2)."""
    behaviour = behaviour or Behaviour()
    jobs = [(p, behaviour, seed, days, warmup_days, demo) for p in policies]
    workers = workers or min(2, os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        return [_one(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_one, jobs))


def _fmt(value: float, kind: str) -> str:
    return f"{value * 100:.1f} %" if kind == "pct" else f"{value:,.0f}"


def table(outcomes: Sequence[Outcome]) -> str:
    """A plain-text table, one row per configuration."""
    rows = [o.summary() for o in outcomes]
    head = ["config", "orders"] + [title for _, title, _ in COLUMNS]
    body = [[f"({r['config']}) {r['label']}", f"{r['orders']:,}"] + [_fmt(r[k], kind) for k, _, kind in COLUMNS]
            for r in rows]
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), "  ".join("-" * w for w in widths)] + [line(b) for b in body])


def markdown_table(outcomes: Sequence[Outcome]) -> str:
    """The same table in Markdown (for the README)."""
    rows = [o.summary() for o in outcomes]
    head = ["config", "orders"] + [title for _, title, _ in COLUMNS]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join([f"({r['config']}) {r['label']}", f"{r['orders']:,}"]
                                     + [_fmt(r[k], kind) for k, _, kind in COLUMNS]) + " |")
    return "\n".join(out)


def write_json(outcomes: Sequence[Outcome], path: Path, *, seed: int, behaviour: Behaviour) -> None:
    doc: dict[str, Any] = {
        "seed": seed, "behaviour": asdict(behaviour),
        "reference": {"seed_case_before": SEED_BEFORE, "seed_case_after": SEED_AFTER},
        "configurations": [o.summary() for o in outcomes],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def draw_chart(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Bars per configuration: not assemblable as first sourced (store orders) and cancelled, with
    the seed case's 43 % and 26 % as reference lines. ``rows``: ``Outcome.summary()`` of each
    configuration (or the ``configurations`` of the JSON). Needs matplotlib (``pip install -e '.[sim]'``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - the extra is not installed
        raise RuntimeError("the chart needs matplotlib: pip install -e '.[sim]' (make simulate does)") from exc
    labels = [f"({r['config']})" for r in rows]
    first = [r["not_assemblable_share_of_store_orders"] * 100 for r in rows]
    first_all = [r["not_assemblable_share"] * 100 for r in rows]
    cancelled = [r["cancelled_share"] * 100 for r in rows]
    fig, ax = plt.subplots(figsize=(9.5, 5.2), dpi=110)
    xs = range(len(rows))
    w = 0.27
    b1 = ax.bar([x - w for x in xs], first, w, label="not assemblable as first sourced, of the orders given to stores",
                color="#c0504d")
    b2 = ax.bar(list(xs), first_all, w, label="… of all orders", color="#e6a09e")
    b3 = ax.bar([x + w for x in xs], cancelled, w, label="cancelled, of all orders", color="#4f81bd")
    for bars in (b1, b2, b3):
        for bar in bars:
            ax.annotate(f"{bar.get_height():.1f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    right = ax.get_yaxis_transform()  # x in axes fraction, y in data
    for y, text, style in ((SEED_BEFORE * 100, "seed case\nbefore: 43 %", "--"), (SEED_AFTER * 100, "seed case\nafter: 26 %", ":"),
                           (5.0, "goal: 5 %", "-.")):
        ax.axhline(y, color="#7f7f7f" if style != "-." else "#9bbb59", linestyle=style, linewidth=1)
        ax.text(1.01, y, text, transform=right, ha="left", va="center", fontsize=8)
    ax.set_xticks(list(xs), labels)
    ax.set_ylabel("% of orders")
    ax.set_ylim(0, max(50.0, max(first + cancelled) + 5))
    days = rows[0]["days"] - rows[0]["warmup_days"] if rows else 0
    ax.set_title(f"Orkestr chain simulator: {days} measured days, demo chain (100 stores + WH-ONLINE)",
                 fontsize=10, pad=34)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    names = "\n".join(f"({r['config']}) {r['label']}" for r in rows)
    fig.text(0.01, 0.01, names, fontsize=6.5, va="bottom")
    fig.subplots_adjust(bottom=0.27, right=0.86)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
