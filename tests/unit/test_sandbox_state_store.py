"""The sandbox's state file (sandbox.state.StateStore): one JSON document per kept attribute, written only
when its bytes changed, and a file of the earlier one-row-per-system layout still read (then replaced)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import insert, select

from sandbox.state import StateStore, parts, snapshots


def rows(store: StateStore) -> dict[tuple[str, str], tuple[str, float]]:
    with store.engine.connect() as c:
        return {(r.system, r.name): (r.state, r.saved_at) for r in c.execute(select(parts))}


def test_only_the_attributes_that_changed_are_written_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    store = StateStore(path)
    assert store.save("cdek", {"orders": b'{"A":{"status":"CREATED"}}', "next_number": b"7"}) is True
    first = rows(store)
    assert store.save("cdek", {"orders": b'{"A":{"status":"CREATED"}}', "next_number": b"7"}) is False
    assert store.save("cdek", {"orders": b'{"A":{"status":"DELIVERED"}}', "next_number": b"7"}) is True
    second = rows(store)
    assert second[("cdek", "next_number")] == first[("cdek", "next_number")]  # not rewritten
    assert second[("cdek", "orders")][0] == '{"A":{"status":"DELIVERED"}}'
    store.close()

    again = StateStore(path)
    assert again.load("cdek") == {"orders": {"A": {"status": "DELIVERED"}}, "next_number": 7}
    assert again.load("post") is None
    assert again.save("cdek", {"orders": b'{"A":{"status":"DELIVERED"}}', "next_number": b"7"}) is False


def test_a_file_of_the_earlier_layout_is_read_and_replaced_at_the_first_save(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    old = StateStore(path)
    with old.engine.begin() as c:
        c.execute(insert(snapshots).values(system="pos", state=json.dumps({"tasks": {"T1": {"n": 1}}, "notifications": {}}),
                                           saved_at=0.0))
    old.close()

    store = StateStore(path)
    assert store.load("pos") == {"tasks": {"T1": {"n": 1}}, "notifications": {}}
    # an unchanged save of a legacy system still writes every part: the old row goes
    assert store.save("pos", {"tasks": b'{"T1":{"n":1}}', "notifications": b"{}"}) is True
    with store.engine.connect() as c:
        assert c.execute(select(snapshots)).first() is None
    store.close()
    assert StateStore(path).load("pos") == {"tasks": {"T1": {"n": 1}}, "notifications": {}}
