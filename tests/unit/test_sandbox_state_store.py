"""The sandbox's state file (sandbox.state.StateStore): a dict kept entry by entry and a list element by
element, only what changed written (an append to a long list writes the new element alone), entries
that went deleted, everything read back in its order, and a file of the earlier one-row-per-system
layout still read (then replaced)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import insert, select

from sandbox.state import Persisted, StateStore, records, snapshots


@dataclass
class Parcel:
    number: str
    status: str
    history: list[str] = field(default_factory=list)


class Sim(Persisted):
    persisted: ClassVar[dict[str, Any]] = {"parcels": dict[str, Parcel], "by_id": dict[int, str],
                                           "log": list[str], "counter": int}

    def __init__(self) -> None:
        self.parcels: dict[str, Parcel] = {}
        self.by_id: dict[int, str] = {}
        self.log: list[str] = []
        self.counter = 0


def on_disk(store: StateStore) -> dict[tuple[str, str], tuple[str, float]]:
    with store.engine.connect() as c:
        return {(r.name, r.key): (r.state, r.saved_at) for r in c.execute(select(records))}


def test_only_changed_entries_are_written_and_everything_reads_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    store = StateStore(path)
    sim = Sim()
    for n in ("B", "A", "C"):  # insertion order, not sorted
        sim.parcels[n] = Parcel(n, "CREATED")
    sim.by_id = {7: "B", 12: "A"}
    sim.log = [f"event {i}" for i in range(500)]
    sim.counter = 3
    assert store.save("cdek", sim) is True
    first = on_disk(store)
    assert len(first) == 3 + 2 + 500 + 1
    assert store.save("cdek", sim) is False  # nothing changed: nothing written

    sim.parcels["A"].status = "DELIVERED"  # changed in place, as the simulators do
    sim.parcels["A"].history.append("handed over")
    sim.log.append("event 500")
    del sim.parcels["C"]
    assert store.save("cdek", sim) is True
    second = on_disk(store)
    changed = {k for k in second if k not in first or second[k] != first[k]}
    assert changed == {("parcels", 'k:"A"'), ("log", "i:500")}
    assert ("parcels", 'k:"C"') not in second
    store.close()

    again = Sim()
    again.restore(StateStore(path).load("cdek") or {})
    assert list(again.parcels) == ["B", "A"]
    assert again.parcels["A"] == Parcel("A", "DELIVERED", ["handed over"])
    assert again.by_id == {7: "B", 12: "A"}  # int keys come back as ints
    assert again.log == [f"event {i}" for i in range(501)] and again.counter == 3


def test_a_list_changed_in_the_middle_or_shortened_is_written_as_it_is(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "sandbox.db")
    sim = Sim()
    sim.log = ["a", "b", "c", "d"]
    store.save("notify", sim)
    sim.log[1] = "B"
    store.save("notify", sim)
    sim.log = sim.log[:2]
    store.save("notify", sim)
    assert store.load("notify")["log"] == ["a", "B"]  # type: ignore[index]
    again = StateStore(tmp_path / "sandbox.db")
    assert again.load("notify")["log"] == ["a", "B"]  # type: ignore[index]


def test_a_file_of_the_earlier_layout_is_read_and_replaced_at_the_first_save(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    old = StateStore(path)
    legacy = {"parcels": {"P1": {"number": "P1", "status": "CREATED", "history": []}}, "by_id": {"5": "P1"},
              "log": ["x"], "counter": 9}
    with old.engine.begin() as c:
        c.execute(insert(snapshots).values(system="cdek", state=json.dumps(legacy), saved_at=0.0))
    old.close()

    store = StateStore(path)
    sim = Sim()
    sim.restore(store.load("cdek") or {})
    assert sim.parcels == {"P1": Parcel("P1", "CREATED")} and sim.by_id == {5: "P1"} and sim.counter == 9
    assert store.save("cdek", sim) is True  # unchanged, but written as records: the old row goes
    with store.engine.connect() as c:
        assert c.execute(select(snapshots)).first() is None
    store.close()
    again = Sim()
    again.restore(StateStore(path).load("cdek") or {})
    assert again.parcels == sim.parcels and again.log == ["x"] and again.counter == 9
