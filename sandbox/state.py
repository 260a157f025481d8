"""The sandbox's memory across restarts, and callbacks that survive them.

Real gateways keep their orders and keep calling back after they restart; so does the sandbox.
Two parts, both in one SQLite file (``SandboxConfig.state_path``, by default
``{settings.data_dir}/sandbox.db``; ``make clean`` removes it):

* :class:`StateStore` — the simulated systems' state as records (table ``records``). Each simulator
  lists the attributes it keeps in ``persisted`` (name → type); :class:`Persisted` turns them into
  JSON and back with pydantic's ``TypeAdapter`` (dataclasses, enums, datetimes, nested lists), so a
  restored order is the same Python object graph the simulator built. A ``dict`` attribute (orders
  by id, tasks, customers...) is kept entry by entry and a ``list`` (the ERP's movements, the SMS
  log) element by element; anything else (counters) in one record. The app saves a system after
  every request to it that may change something (any method but GET/HEAD/OPTIONS), before the
  answer goes out (what a client saw acknowledged is on disk), and every :data:`FLUSH_EVERY_S` the
  systems that background work marked changed (``Background.touch``: auto mode, timeouts, callback
  outcomes). A save serialises each entry in pydantic's core (``dump_json``), compares it with what
  was last written and writes only the entries that differ (a list only appended to is seen from
  its whole JSON at once): 130 CDEK orders cost about 2 ms to check and one order's few KB to write.
  It was one JSON document per system, built through ``dump_python`` + ``json.dumps`` + a hash and
  rewritten whole on every changing request (30 ms and 400 KB for those 130 orders): over half the
  sandbox's CPU per order, growing with every order it kept (``make bench e2e --profile``). A file
  of that layout (table ``snapshots``) is read, and replaced by records at the system's first save.
* :class:`Outbox` — callbacks and webhooks (bank callbacks, CDEK webhooks, POS events) as rows
  (table ``outbox``) written *before* the first attempt. A worker per ordering key (a bank
  order, a CDEK order, a store task) sends them one at a time in the order they were queued,
  retrying a failed one (connection error or HTTP 5xx) with capped exponential backoff and
  jitter, bounded both in attempts and in time (:class:`RetryPolicy`). After a restart every
  row still pending is resumed, so a callback queued before a crash is still delivered. A crash
  between a successful send and its row's update sends it again: delivery is at least once,
  and the receivers are idempotent (Orkestr's callbacks are), which makes it once in effect.
  4xx answers are final (the receiver refused the message; a retry would get the same).

Storage: SQLAlchemy Core over the standard library's ``sqlite3`` (SQLAlchemy is already one of
Orkestr's dependencies; WAL journal, synchronous writes of a few rows, no server). Without a
path the same code runs on an in-memory database, so tests stay fast and still exercise the
JSON round trip.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, get_args, get_origin

import httpx
import structlog
from pydantic import TypeAdapter
from sqlalchemy import (Column, Float, Integer, MetaData, String, Table, Text, UniqueConstraint, bindparam, create_engine,
                        delete, event, insert, select, update)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import StaticPool

log = structlog.get_logger("sandbox.state")

#: background changes (auto mode, timers) reach the disk within this many seconds
FLUSH_EVERY_S = 0.5

_meta = MetaData()
#: the earlier layout, one JSON document per system: read, and removed at the system's first save
snapshots = Table(
    "snapshots",
    _meta,
    Column("system", String, primary_key=True),
    Column("state", Text, nullable=False),
    Column("saved_at", Float, nullable=False),
)
#: one row per kept attribute (``key`` empty), or per entry of a dict (``key`` "k:" + the key as JSON) or
#: element of a list (``key`` "i:" + its index)
records = Table(
    "records",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("system", String, nullable=False),
    Column("name", String, nullable=False),
    Column("key", String, nullable=False),
    Column("state", Text, nullable=False),
    Column("saved_at", Float, nullable=False),
    UniqueConstraint("system", "name", "key"),
)
WHOLE, ENTRY, ITEM = "", "k:", "i:"
outbox = Table(
    "outbox",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("system", String, nullable=False),
    #: deliveries with one key go out one at a time, in id order
    Column("key", String, nullable=False, index=True),
    #: the simulator's handle on its own record of this delivery (JSON)
    Column("ref", Text, nullable=False),
    Column("method", String, nullable=False),
    Column("url", Text, nullable=False),
    #: {"json"|"params"|"headers": ...} (JSON)
    Column("request", Text, nullable=False),
    Column("state", String, nullable=False, index=True),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", Float, nullable=False),
    Column("deadline", Float, nullable=False),
    Column("http_status", Integer),
    Column("created_at", Float, nullable=False),
)


class StateStore:
    """Records and outbox rows in one SQLite database (``path`` None: in memory)."""

    def __init__(self, path: str | Path | None) -> None:
        if path is None:
            self.engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

            @event.listens_for(self.engine, "connect")
            def _wal(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute("PRAGMA journal_mode=WAL")
                dbapi_conn.execute("PRAGMA synchronous=NORMAL")

        self.path = path
        _meta.create_all(self.engine)
        #: (system, attribute, key) → the JSON last written or read: a save writes only what differs
        self._written: dict[tuple[str, str, str], bytes] = {}
        #: (system, attribute) → the keys of its records on disk
        self._keys: dict[tuple[str, str], set[str]] = {}
        #: (system, list attribute) → its whole JSON and length when last saved (an append is seen at once)
        self._lists: dict[tuple[str, str], tuple[bytes, int]] = {}
        #: systems read from the earlier one-row layout: their first save writes every record
        self._legacy: set[str] = set()

    def load(self, system: str) -> dict[str, Any] | None:
        """``{attribute: JSON value}`` of ``system`` as last saved (a dict in its insertion order, a
        list in its order); None when nothing was."""
        with self.engine.connect() as c:
            rows = c.execute(select(records.c.name, records.c.key, records.c.state)
                             .where(records.c.system == system).order_by(records.c.id)).all()
            if not rows:
                old = c.execute(select(snapshots.c.state).where(snapshots.c.system == system)).first()
                if old is None:
                    return None
                self._legacy.add(system)
                legacy: dict[str, Any] = json.loads(old[0])
                return legacy
        out: dict[str, Any] = {}
        lists: dict[str, dict[int, Any]] = {}
        for name, key, text in rows:
            self._written[(system, name, key)] = text.encode()
            self._keys.setdefault((system, name), set()).add(key)
            if key == WHOLE:
                out[name] = json.loads(text)
            elif key.startswith(ITEM):
                lists.setdefault(name, {})[int(key[len(ITEM):])] = json.loads(text)
            else:
                raw = json.loads(key[len(ENTRY):])
                out.setdefault(name, {})[raw if isinstance(raw, (str, int, float, bool)) else key[len(ENTRY):]] = \
                    json.loads(text)
        for name, items in lists.items():
            out[name] = [items[i] for i in sorted(items)]
        return out

    def save(self, system: str, sim: "Persisted") -> bool:
        """Write the records of ``sim``'s kept attributes that differ from what was last written, and
        delete those of entries it no longer has; True if anything was written."""
        upserts: list[tuple[str, str, bytes]] = []
        deletes: list[tuple[str, str]] = []
        lists: dict[tuple[str, str], tuple[bytes, int]] = {}
        for name, tp in sim.persisted.items():
            value = getattr(sim, name)
            kind, adapters = Persisted._shape(tp)
            if kind == "dict" and isinstance(value, dict):
                key_ad, item_ad = adapters
                current = [(ENTRY + key_ad.dump_json(k).decode(), item_ad.dump_json(v)) for k, v in value.items()]
            elif kind == "list" and isinstance(value, list):
                whole_ad, item_ad = adapters
                whole = whole_ad.dump_json(value)
                before = self._lists.get((system, name))
                if before is not None and before[0] == whole:
                    continue
                lists[(system, name)] = (whole, len(value))
                # only appended to: the JSON of the earlier elements is unchanged, dump the new ones
                appended = before is not None and 0 < before[1] < len(value) and whole.startswith(before[0][:-1] + b",")
                first = before[1] if appended and before is not None else 0
                current = [(f"{ITEM}{i}", item_ad.dump_json(value[i])) for i in range(first, len(value))]
                old = self._keys.get((system, name), set())
                deletes += [(name, k) for k in old if k.startswith(ITEM) and int(k[len(ITEM):]) >= len(value)]
                upserts += [(name, k, data) for k, data in current if self._written.get((system, name, k)) != data]
                continue
            else:
                current = [(WHOLE, Persisted._adapter(tp).dump_json(value))]
            upserts += [(name, k, data) for k, data in current if self._written.get((system, name, k)) != data]
            seen = {k for k, _ in current}
            deletes += [(name, k) for k in self._keys.get((system, name), set()) if k not in seen]
        if not upserts and not deletes and system not in self._legacy:
            self._lists.update(lists)
            return False
        now = time.time()
        with self.engine.begin() as c:
            if upserts:
                stmt = sqlite_insert(records)
                stmt = stmt.on_conflict_do_update(index_elements=[records.c.system, records.c.name, records.c.key],
                                                  set_={"state": stmt.excluded.state, "saved_at": stmt.excluded.saved_at})
                c.execute(stmt, [{"system": system, "name": name, "key": key, "state": data.decode(), "saved_at": now}
                                 for name, key, data in upserts])
            if deletes:
                c.execute(delete(records).where(records.c.system == system, records.c.name == bindparam("n"),
                                                records.c.key == bindparam("k")),
                          [{"n": name, "k": key} for name, key in deletes])
            if system in self._legacy:
                c.execute(delete(snapshots).where(snapshots.c.system == system))
        self._legacy.discard(system)
        for name, key, data in upserts:
            self._written[(system, name, key)] = data
            self._keys.setdefault((system, name), set()).add(key)
        for name, key in deletes:
            self._written.pop((system, name, key), None)
            self._keys.get((system, name), set()).discard(key)
        self._lists.update(lists)
        return True

    def close(self) -> None:
        self.engine.dispose()


class Persisted:
    """Mixin for a simulator: ``persisted`` names the attributes kept across restarts and their
    types; :meth:`restored` rebuilds what is derived from them (indexes) and resumes timers. A
    ``dict[K, V]`` or ``list[V]`` attribute is kept record by record, anything else in one piece."""

    persisted: ClassVar[dict[str, Any]] = {}
    _adapters: ClassVar[dict[Any, TypeAdapter[Any]]] = {}

    @classmethod
    def _adapter(cls, tp: Any) -> TypeAdapter[Any]:
        key = repr(tp)
        if key not in Persisted._adapters:
            Persisted._adapters[key] = TypeAdapter(tp)
        return Persisted._adapters[key]

    @classmethod
    def _shape(cls, tp: Any) -> tuple[str, tuple[TypeAdapter[Any], ...]]:
        """How an attribute of type ``tp`` is kept: ("dict", (key, value adapters)), ("list", (list,
        element adapters)) or ("whole", (adapter,))."""
        origin, args = get_origin(tp), get_args(tp)
        if origin is dict and len(args) == 2:
            return "dict", (cls._adapter(args[0]), cls._adapter(args[1]))
        if origin is list and len(args) == 1:
            return "list", (cls._adapter(tp), cls._adapter(args[0]))
        return "whole", (cls._adapter(tp),)

    def restore(self, state: dict[str, Any]) -> None:
        for name, tp in self.persisted.items():
            if name in state:
                setattr(self, name, self._adapter(tp).validate_python(state[name]))
        self.restored()

    def restored(self) -> None:
        """Called after :meth:`restore`: rebuild indexes. Default: nothing."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed callback is retried: after ``first_delay_s``, doubling up to ``max_delay_s``
    (±25 % jitter), at most ``max_attempts`` sends, none after ``window_s`` from queueing.
    The real gateways do not publish their schedules (``shared/reference/acquiring.md``); these
    defaults keep a dev stack's callbacks coming for an hour."""

    first_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_attempts: int = 40
    window_s: float = 3600.0
    timeout_s: float = 10.0

    def delay(self, attempts: int) -> float:
        base = min(self.max_delay_s, self.first_delay_s * 2.0 ** max(0, attempts - 1))
        return float(base * (0.75 + random.random() / 2))


#: a simulator's hook for the outcome of one delivery: (ref, state, http_status)
DoneHook = Callable[[Any, str, int | None], None]


class Outbox:
    """Persisted callbacks with retries; see the module docstring."""

    def __init__(self, store: StateStore, policy: RetryPolicy) -> None:
        self.store = store
        self.policy = policy
        self._hooks: dict[str, DoneHook] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._http: httpx.AsyncClient | None = None
        self._closed = False

    def on_done(self, system: str, hook: DoneHook) -> None:
        self._hooks[system] = hook

    def send(
        self,
        system: str,
        key: str,
        ref: Any,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        attempts_done: int = 0,
    ) -> int:
        """Queue a delivery (written before any attempt) and start its key's worker.
        ``attempts_done``: attempts the caller already made itself."""
        now = time.time()
        request = {"json": json_body, "params": params, "headers": headers}
        with self.store.engine.begin() as c:
            inserted = c.execute(
                insert(outbox).values(
                    system=system,
                    key=f"{system}:{key}",
                    ref=json.dumps(ref),
                    method=method,
                    url=url,
                    request=json.dumps(request, ensure_ascii=False),
                    state="pending",
                    attempts=attempts_done,
                    next_at=now + (self.policy.delay(attempts_done) if attempts_done else 0),
                    deadline=now + self.policy.window_s,
                    created_at=now,
                )
            ).inserted_primary_key
        assert inserted is not None  # an INSERT of one row always has its key
        self._kick(f"{system}:{key}")
        return int(inserted[0])

    def resume(self) -> int:
        """Start a worker for every key with pending rows (after a restart); their count."""
        with self.store.engine.connect() as c:
            keys = [r[0] for r in c.execute(select(outbox.c.key).where(outbox.c.state == "pending").distinct())]
        for key in keys:
            self._kick(key)
        if keys:
            log.info("sandbox.outbox_resumed", keys=len(keys))
        return len(keys)

    def pending(self) -> list[dict[str, Any]]:
        with self.store.engine.connect() as c:
            rows = c.execute(select(outbox).where(outbox.c.state == "pending").order_by(outbox.c.id)).mappings().all()
        return [dict(r) for r in rows]

    def _kick(self, key: str) -> None:
        if self._closed:
            return
        worker = self._workers.get(key)
        if worker is not None and not worker.done():
            self._wake.setdefault(key, asyncio.Event()).set()
            return
        self._wake[key] = asyncio.Event()
        self._workers[key] = asyncio.get_running_loop().create_task(self._work(key))

    async def _work(self, key: str) -> None:
        while not self._closed:
            with self.store.engine.connect() as c:
                row = (
                    c.execute(select(outbox).where(outbox.c.key == key, outbox.c.state == "pending").order_by(outbox.c.id).limit(1))
                    .mappings()
                    .first()
                )
            if row is None:
                self._workers.pop(key, None)
                return
            wait = row["next_at"] - time.time()
            if wait > 0:
                wake = self._wake.setdefault(key, asyncio.Event())
                wake.clear()
                try:
                    await asyncio.wait_for(wake.wait(), timeout=wait)
                except TimeoutError:
                    pass
                continue
            await self._attempt(dict(row))

    async def _attempt(self, row: dict[str, Any]) -> None:
        request = json.loads(row["request"])
        status: int | None = None
        try:
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=self.policy.timeout_s)
            kwargs = {k: v for k, v in (("json", request["json"]), ("params", request["params"]), ("headers", request["headers"])) if v is not None}
            resp = await self._http.request(row["method"], row["url"], **kwargs)
            status = resp.status_code
        except httpx.HTTPError as exc:
            log.warning("sandbox.callback_error", system=row["system"], url=row["url"], error=str(exc) or type(exc).__name__, attempt=row["attempts"] + 1)
        attempts = row["attempts"] + 1
        now = time.time()
        if status is not None and status < 500:
            state = "delivered" if status < 300 else "refused"
            values: dict[str, Any] = {"state": state, "attempts": attempts, "http_status": status}
        elif attempts >= self.policy.max_attempts or now >= row["deadline"]:
            state = "failed"
            values = {"state": state, "attempts": attempts, "http_status": status}
            log.error("sandbox.callback_gave_up", system=row["system"], url=row["url"], attempts=attempts)
        else:
            state = "pending"
            values = {"attempts": attempts, "http_status": status, "next_at": now + self.policy.delay(attempts)}
            if status is not None:
                log.warning("sandbox.callback_failed", system=row["system"], url=row["url"], status=status, attempt=attempts)
        with self.store.engine.begin() as c:
            c.execute(update(outbox).where(outbox.c.id == row["id"]).values(**values))
        hook = self._hooks.get(row["system"])
        if hook is not None:
            try:
                hook(json.loads(row["ref"]), state, status)
            except Exception:  # a record that is gone must not stop the outbox
                log.exception("sandbox.callback_hook_failed", system=row["system"])

    async def close(self) -> None:
        self._closed = True
        for w in list(self._workers.values()):
            w.cancel()
        await asyncio.gather(*self._workers.values(), return_exceptions=True)
        self._workers.clear()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
