"""Who gets an operator task: rules by kind, channel, order amount and region, then round-robin
within the chosen operator group (as the source CRM does). Pure: no I/O, no clock.

The rules are configured in code (``RULES``, ``GROUPS``); the first rule that matches wins,
otherwise the ``default`` group. The turn counter of a group is kept by the caller (the task
repository counts the tasks it has assigned in the group under a lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence


@dataclass(frozen=True)
class AssignmentRule:
    group: str
    kinds: frozenset[str] = frozenset()  # empty: any
    channels: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    min_amount: int | None = None  # kopecks, inclusive
    max_amount: int | None = None  # kopecks, exclusive
    note: str = ""

    def matches(self, ctx: "TaskContext") -> bool:
        return ((not self.kinds or ctx.kind in self.kinds)
                and (not self.channels or ctx.channel in self.channels)
                and (not self.regions or ctx.region in self.regions)
                and (self.min_amount is None or ctx.amount >= self.min_amount)
                and (self.max_amount is None or ctx.amount < self.max_amount))


@dataclass(frozen=True)
class TaskContext:
    kind: str
    channel: str = ""
    amount: int = 0
    region: str = ""


@dataclass(frozen=True)
class Assignment:
    group: str
    assignee: str | None
    reason: str


DEFAULT_GROUP = "default"

#: operator groups (logins); an empty group leaves the task unassigned in the shared queue
GROUPS: dict[str, tuple[str, ...]] = {
    "supervisors": ("sup-ivanova", "sup-petrov"),
    "vip": ("op-vip-smirnova",),
    "marketplace": ("op-mp-kuznetsov", "op-mp-popova"),
    "moscow": ("op-msk-volkova", "op-msk-sokolov", "op-msk-lebedeva"),
    DEFAULT_GROUP: ("op-orlova", "op-morozov"),
}

RULES: tuple[AssignmentRule, ...] = (
    AssignmentRule("supervisors", kinds=frozenset({"assembly_late", "resource_failed"}),
                   note="escalations go to store supervisors"),
    AssignmentRule("vip", min_amount=5_000_000, note="orders of 50 000 ₽ and more"),
    AssignmentRule("marketplace", channels=frozenset({"marketplace"}), note="marketplace orders"),
    AssignmentRule("moscow", regions=frozenset({"RU-MOW", "RU-MOS"}), note="Moscow and the region"),
)


def choose_group(ctx: TaskContext, rules: Sequence[AssignmentRule] = RULES) -> tuple[str, str]:
    """(group, why): the first matching rule, else the default group."""
    for rule in rules:
        if rule.matches(ctx):
            return rule.group, rule.note or f"rule for {rule.group}"
    return DEFAULT_GROUP, "no rule matched"


def round_robin(members: Sequence[str], turn: int) -> str | None:
    return members[turn % len(members)] if members else None


def next_in_group(members: Sequence[str], current: str | None) -> str | None:
    """Reassignment on timeout: the next operator after ``current`` (someone else when possible)."""
    if not members:
        return None
    if current is None or current not in members:
        return members[0]
    return members[(list(members).index(current) + 1) % len(members)]


def assign(ctx: TaskContext, turn: int, *, rules: Sequence[AssignmentRule] = RULES,
           groups: Mapping[str, Sequence[str]] = GROUPS) -> Assignment:
    group, why = choose_group(ctx, rules)
    return Assignment(group=group, assignee=round_robin(groups.get(group, ()), turn), reason=why)
