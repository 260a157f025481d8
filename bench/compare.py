"""``python -m bench compare A.json B.json``: what changed between two runs of ``python -m bench e2e``.

Every number the two files share (``full.cpu_s_per_order.worker``, ``ratios.throughput``...) with its value
in A, in B, the difference and the change in per cent; the configurations first, so a difference in
the set-up is seen before the figures.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

#: what is not a figure to compare
SKIP = ("pids.", "mix.plan.", "git.", "host.")


def numbers(data: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """``(dotted.key, value)`` of every number (not a bool) in ``data``, in document order."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from numbers(v, f"{prefix}{k}.")
    elif isinstance(data, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in data):
        for i, v in enumerate(data):
            yield f"{prefix}{i}", float(v)
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield prefix.rstrip("."), float(data)


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    na, nb = dict(numbers(a)), dict(numbers(b))
    keys = [k for k in na if k in nb and not k.startswith(SKIP)]
    w = max((len(k) for k in keys), default=10)
    lines = [f"A: {a.get('started_at')} {a.get('git', {}).get('commit')}   B: {b.get('started_at')} "
             f"{b.get('git', {}).get('commit')}",
             f"{'figure':<{w}}  {'A':>12}  {'B':>12}  {'B - A':>12}  {'change':>8}"]
    for k in sorted(keys, key=lambda k: (not k.startswith("config."), keys.index(k))):
        x, y = na[k], nb[k]
        pct = f"{(y - x) / x * 100:+.1f}%" if x else ""
        lines.append(f"{k:<{w}}  {x:>12.4g}  {y:>12.4g}  {y - x:>+12.4g}  {pct:>8}")
    only = sorted(k for k in set(na) ^ set(nb) if not k.startswith(SKIP))
    if only:
        lines.append("in one file only: " + ", ".join(only))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python -m bench compare A.json B.json\n")
        return 2
    try:
        a, b = (json.loads(Path(p).read_text(encoding="utf-8")) for p in argv)
    except (OSError, ValueError) as err:
        sys.stderr.write(f"cannot read {err}\n")
        return 2
    print(compare(a, b))
    return 0
