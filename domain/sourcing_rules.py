"""The sourcing rule set: the weights ``domain.sourcing`` ranks locations by and the learned
safety-stock policy, as one versioned TOML document (pure: parse, render, compare).

The file (``rules/active.toml`` in force, drafts anywhere; ``adapters.rules_store`` keeps the
history and activates a draft)::

    # Orkestr sourcing rules
    version = 3                      # set when activated; a draft has none
    note = "reliability weight after the March simulation"

    [weights]
    distance = 1.0                   # cost per km
    split_penalty_km = "never"       # "never" (fewest shipments always) or km a 2nd shipment must save
    reliability_km = 0.0             # km-equivalent of a location that fails every assembly
    capacity_km = 0.0                # km-equivalent of a location whose day is fully booked

    [safety_stock]
    learned = false                  # true: keep units back per location × SKU (domain.safety_stock)
    target_miss = 0.05
    prior_lines = 20
    max_units = 3
    pair_memory_days = 14
    history_days = 28

Every key is optional (missing = today's behaviour); an unknown key or a bad value is a
``ValueError`` naming it (``weights.distance: must be >= 0``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from typing import Any

from domain.safety_stock import SafetyStockPolicy
from domain.sourcing import SourcingWeights

__all__ = ["SourcingRules", "parse_rules", "render_rules", "diff_rules"]


@dataclass(frozen=True)
class SourcingRules:
    weights: SourcingWeights = field(default_factory=SourcingWeights)
    safety: SafetyStockPolicy | None = None  # None: no learned safety stock (today)
    version: int | None = None
    note: str = ""

    @property
    def needs_history(self) -> bool:
        """Whether applying the rules needs the shortage history (reliability or learned safety)."""
        return self.safety is not None or self.weights.reliability_km > 0


_WEIGHT_KEYS = ("distance", "split_penalty_km", "reliability_km", "capacity_km")
_SAFETY_KEYS = tuple(f.name for f in fields(SafetyStockPolicy))


def _number(section: str, key: str, value: Any, *, integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ValueError(f"{section}.{key}: must be {'an integer' if integer else 'a number'}, got {value!r}")
    return value


def parse_rules(text: str) -> SourcingRules:
    """TOML text → ``SourcingRules``; ``ValueError`` naming the field on anything malformed."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"rules: not valid TOML: {exc}") from exc
    unknown = set(doc) - {"version", "note", "weights", "safety_stock"}
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown key")
    version = doc.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise ValueError("version: must be a positive integer")
    note = doc.get("note", "")
    if not isinstance(note, str):
        raise ValueError("note: must be a string")

    w = doc.get("weights", {})
    if not isinstance(w, dict):
        raise ValueError("weights: must be a table")
    for key in set(w) - set(_WEIGHT_KEYS):
        raise ValueError(f"weights.{key}: unknown key")
    kw: dict[str, Any] = {}
    for key in ("distance", "reliability_km", "capacity_km"):
        if key in w:
            kw[key] = float(_number("weights", key, w[key]))
            if kw[key] < 0:
                raise ValueError(f"weights.{key}: must be >= 0")
    if "split_penalty_km" in w:
        v = w["split_penalty_km"]
        if v != "never":
            v = float(_number("weights", "split_penalty_km", v))
            if v < 0:
                raise ValueError("weights.split_penalty_km: must be >= 0 or \"never\"")
            kw["split_penalty_km"] = v
    weights = SourcingWeights(**kw)

    safety = None
    s = doc.get("safety_stock", {})
    if not isinstance(s, dict):
        raise ValueError("safety_stock: must be a table")
    for key in set(s) - set(_SAFETY_KEYS) - {"learned"}:
        raise ValueError(f"safety_stock.{key}: unknown key")
    learned = s.get("learned", False)
    if not isinstance(learned, bool):
        raise ValueError("safety_stock.learned: must be true or false")
    if learned:
        skw: dict[str, Any] = {}
        for key in _SAFETY_KEYS:
            if key in s:
                integer = key in ("max_units", "pair_memory_days", "history_days")
                skw[key] = _number("safety_stock", key, s[key], integer=integer)
        safety = SafetyStockPolicy(**skw)  # its own checks name the field
    return SourcingRules(weights=weights, safety=safety, version=version, note=note)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render_rules(rules: SourcingRules) -> str:
    """``SourcingRules`` → the TOML document (``parse_rules(render_rules(r)) == r``)."""
    w = rules.weights
    out = ["# Orkestr sourcing rules (see domain/sourcing_rules.py)"]
    if rules.version is not None:
        out.append(f"version = {rules.version}")
    out.append(f"note = {_toml(rules.note)}")
    out += ["", "[weights]", f"distance = {_toml(float(w.distance))}",
            f"split_penalty_km = {_toml('never' if w.split_penalty_km is None else float(w.split_penalty_km))}",
            f"reliability_km = {_toml(float(w.reliability_km))}", f"capacity_km = {_toml(float(w.capacity_km))}",
            "", "[safety_stock]", f"learned = {_toml(rules.safety is not None)}"]
    policy = rules.safety or SafetyStockPolicy()
    for key in _SAFETY_KEYS:
        value = getattr(policy, key)
        out.append(f"{key} = {_toml(float(value) if key in ('target_miss', 'prior_lines') else value)}")
    return "\n".join(out) + "\n"


def _flat(rules: SourcingRules) -> dict[str, Any]:
    w = rules.weights
    flat: dict[str, Any] = {f"weights.{k}": getattr(w, k) for k in _WEIGHT_KEYS}
    flat["weights.split_penalty_km"] = "never" if w.split_penalty_km is None else w.split_penalty_km
    flat["safety_stock.learned"] = rules.safety is not None
    if rules.safety is not None:
        flat.update({f"safety_stock.{k}": getattr(rules.safety, k) for k in _SAFETY_KEYS})
    return flat


def diff_rules(old: SourcingRules, new: SourcingRules) -> list[tuple[str, Any, Any]]:
    """The settings that differ, as (field, old, new), in a stable order (version and note ignored)."""
    a, b = _flat(old), _flat(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def without_version(rules: SourcingRules) -> SourcingRules:
    return replace(rules, version=None)
