"""The sourcing rule set on disk: ``<dir>/active.toml`` in force, ``<dir>/history/`` every version.

A draft is any TOML file (``domain.sourcing_rules``). ``activate`` validates it, gives it the next
version, writes it to ``history/NNNN.toml`` (never rewritten) with who activated it, when and why,
then replaces ``active.toml`` atomically (write a temporary file, ``os.replace``), so a worker
reading at that moment sees the old or the new file, never half of one. The worker reads
``active.toml`` through ``RulesStore.active()``, which re-reads only when the file changed
(its mtime and size), so an activation applies to the next order without a restart.

With several worker machines the directory must be shared (or the same commit deployed to
each); ``orkestr rules show`` prints the version each one has.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from domain.sourcing_rules import SourcingRules, parse_rules, render_rules

__all__ = ["RulesStore", "RuleVersion"]


@dataclass(frozen=True)
class RuleVersion:
    version: int
    path: Path
    activated_at: str
    by: str
    note: str


class RulesStore:
    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self._cache: tuple[tuple[int, int], SourcingRules] | None = None

    @property
    def active_path(self) -> Path:
        return self.dir / "active.toml"

    @property
    def history_dir(self) -> Path:
        return self.dir / "history"

    def active(self) -> SourcingRules:
        """The rules in force (today's defaults when nothing was ever activated). Cached by mtime."""
        try:
            st = self.active_path.stat()
        except FileNotFoundError:
            return SourcingRules()
        stamp = (st.st_mtime_ns, st.st_size)
        if self._cache is None or self._cache[0] != stamp:
            self._cache = (stamp, parse_rules(self.active_path.read_text(encoding="utf-8")))
        return self._cache[1]

    def history(self) -> list[RuleVersion]:
        out = []
        for path in sorted(self.history_dir.glob("[0-9][0-9][0-9][0-9].toml")):
            meta = _meta(path.read_text(encoding="utf-8"))
            out.append(RuleVersion(version=int(path.stem), path=path, activated_at=meta.get("activated_at", ""),
                                   by=meta.get("activated_by", ""), note=parse_rules(path.read_text(encoding="utf-8")).note))
        return out

    def version(self, n: int) -> SourcingRules:
        path = self.history_dir / f"{n:04d}.toml"
        if not path.exists():
            raise FileNotFoundError(f"rules: no version {n} in {self.history_dir}")
        return parse_rules(path.read_text(encoding="utf-8"))

    def activate(self, draft_text: str, *, by: str, note: str | None = None, now: datetime | None = None) -> int:
        """Make ``draft_text`` the rules in force; returns its version. ValueError if it does not parse
        or ``by`` is empty."""
        if not by.strip():
            raise ValueError("by: who activates the rules is required")
        rules = parse_rules(draft_text)
        self.history_dir.mkdir(parents=True, exist_ok=True)
        versions = [v.version for v in self.history()]
        version = (max(versions) if versions else 0) + 1
        rules = replace(rules, version=version, note=note if note is not None else rules.note)
        when = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
        text = (f"# activated_at = {when}\n# activated_by = {by.strip()}\n" + render_rules(rules))
        target = self.history_dir / f"{version:04d}.toml"
        with open(target, "x", encoding="utf-8") as fh:  # "x": two activations never share a number
            fh.write(text)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".active-", suffix=".toml")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, self.active_path)
        return version


def _meta(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("# ") and " = " in line:
            key, _, value = line[2:].partition(" = ")
            out[key.strip()] = value.strip()
    return out
