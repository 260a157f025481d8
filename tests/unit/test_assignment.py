"""Operator task assignment: rules by kind, amount, channel, region; round-robin in a group."""

from __future__ import annotations

from domain.assignment import GROUPS, TaskContext, assign, choose_group, next_in_group, round_robin


def test_rules_in_priority_order() -> None:
    assert choose_group(TaskContext(kind="assembly_late", amount=10_000_000))[0] == "supervisors"
    assert choose_group(TaskContext(kind="substitution", amount=5_000_000, region="RU-MOW"))[0] == "vip"
    assert choose_group(TaskContext(kind="substitution", amount=4_999_999, channel="marketplace",
                                    region="RU-MOW"))[0] == "marketplace"
    assert choose_group(TaskContext(kind="substitution", amount=100, region="RU-MOS"))[0] == "moscow"
    assert choose_group(TaskContext(kind="substitution", amount=100, region="RU-SPE")) == ("default", "no rule matched")


def test_round_robin_within_the_group_and_reassignment_moves_on() -> None:
    ctx = TaskContext(kind="substitution", region="RU-MOW")
    members = GROUPS["moscow"]
    picks = [assign(ctx, turn).assignee for turn in range(2 * len(members))]
    assert picks == list(members) * 2
    assert round_robin((), 3) is None
    assert next_in_group(members, members[0]) == members[1]
    assert next_in_group(members, members[-1]) == members[0]
    assert next_in_group(members, "someone-else") == members[0]
    assert next_in_group((), "x") is None
