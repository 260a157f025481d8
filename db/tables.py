"""PostgreSQL tables (SQLModel ``table=True``). They never cross into workflows.

What Temporal does not hold lives here: the catalog and stock ledger imported from
the ERP, reservations held by workflows, the order projection for listing and
search, operator tasks, idempotency keys.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, DateTime, Index, String, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, **kw))


class Location(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    name: str
    kind: str = Field(max_length=16)  # store | warehouse
    city: str
    region: str = Field(index=True, max_length=16)
    lat: float
    lon: float
    ship_from_store: bool = True
    pickup: bool = True
    opens_at: str | None = Field(default=None, max_length=5)  # "10:00" local time
    closes_at: str | None = Field(default=None, max_length=5)
    daily_capacity: int | None = None
    safety_stock: int = 0
    pickup_window_days: int = 3
    assembly_sla_minutes: int | None = None
    updated_at: datetime = _ts()


class Product(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    brand: str = Field(index=True)
    name: str
    category: str = ""
    #: under mandatory Честный ЗНАК marking: each unit sold needs its code (ERP flag)
    marked: bool = False


class Sku(SQLModel, table=True):
    sku: str = Field(primary_key=True, max_length=64)
    product_id: str = Field(index=True, max_length=64)
    size: str = ""
    color: str = ""
    barcode: str = ""
    price: int = 0  # retail price, kopecks
    sale_price: int | None = None  # kopecks, when the ERP's "Sale" price type applies
    currency: str = "RUB"


class Stock(SQLModel, table=True):
    """On hand (from the ERP) and reserved (held by workflows) per SKU and location."""

    sku: str = Field(primary_key=True, max_length=64)
    location_id: str = Field(primary_key=True, max_length=32, index=True)
    on_hand: int = 0
    reserved: int = 0
    updated_at: datetime = _ts()


class Reservation(SQLModel, table=True):
    """One row per held line: ``key`` = workflow id + line (+ attempt). Status held → released | consumed."""

    key: str = Field(primary_key=True, max_length=200)
    owner: str = Field(index=True, max_length=120)  # the workflow id holding it
    sku: str = Field(max_length=64)
    location_id: str = Field(max_length=32)
    qty: int
    status: str = Field(default="held", max_length=16)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class OrderRow(SQLModel, table=True):
    """The order projection: listing, search, and `GET /v1/orders/{id}` after the workflow closes."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_status_updated", "status", "updated_at"),)

    order_id: str = Field(primary_key=True, max_length=40)
    status: str = Field(max_length=24)
    channel: str = Field(max_length=16)
    phone: str = Field(index=True, max_length=32)
    phone_hash: str = Field(index=True, max_length=64)
    customer_name: str = ""
    store_id: str | None = Field(default=None, max_length=32, index=True)
    total: int = 0
    currency: str = "RUB"
    version: int = 0
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class IdempotencyKey(SQLModel, table=True):
    """Stripe semantics: the first request's response is stored and replayed for the same key."""

    __tablename__ = "idempotency_key"

    key: str = Field(primary_key=True, max_length=255)
    scope: str = Field(primary_key=True, max_length=64)
    request_hash: str = Field(max_length=64)
    state: str = Field(default="in_flight", max_length=16)  # in_flight | done
    status_code: int | None = None
    body: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    created_at: datetime = _ts()
    locked_until: datetime = _ts()


class SyncState(SQLModel, table=True):
    """Cursors of the ERP sync (stock version seen, last full import)."""

    __tablename__ = "sync_state"

    name: str = Field(primary_key=True, max_length=64)
    version: int = 0
    updated_at: datetime = _ts(server_default=text("now()"))


class CarrierRuleRow(SQLModel, table=True):
    """One per-region delivery rule (couriers.md, "Per-region rules"): which carrier serves a
    destination region, how (courier | pickup_point | post), for what price and in how many days,
    with the latest hand-over time at the sending location; optionally only from some locations.
    Read as ``domain.promise.CarrierRule`` by ``adapters.delivery.DeliveryRepo``."""

    __tablename__ = "carrier_rule"

    id: int | None = Field(default=None, primary_key=True)
    region: str = Field(index=True, max_length=16)  # destination, ISO 3166-2
    carrier: str = Field(max_length=16)  # cdek | post
    method: str = Field(max_length=16)  # courier | pickup_point | post
    price: int  # kopecks
    currency: str = Field(default="RUB", max_length=3)
    days_min: int
    days_max: int
    cutoff: str = Field(max_length=5)  # "HH:MM" local time of the sending location
    from_location_ids: list[str] | None = Field(default=None, sa_column=Column(ARRAY(String(32)), nullable=True))
    active: bool = True
    updated_at: datetime = _ts(server_default=text("now()"))


class TaskRow(SQLModel, table=True):
    """An operator task (one human step of a workflow). Written by activities; claimed by the API;
    completed by the workflow's ``complete_task`` Update. Status open → claimed → done | expired."""

    __tablename__ = "task"
    __table_args__ = (Index("ix_task_status_assignee", "status", "assignee"),)

    id: str = Field(primary_key=True, max_length=200)
    kind: str = Field(max_length=32, index=True)
    order_id: str = Field(max_length=40, index=True)
    workflow_id: str = Field(max_length=120)
    location_id: str | None = Field(default=None, max_length=32)
    title: str = ""
    assignee: str | None = Field(default=None, max_length=64)
    grp: str = Field(default="default", max_length=64)
    priority: int = 50
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    status: str = Field(default="open", max_length=16)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ReturnRow(SQLModel, table=True):
    """A return: the projection ``GET /v1/returns/{id}`` reads, and what each return holds
    against its order's lines (``snapshot``), checked under a lock on the order's row.
    ``refund`` is written once, when the refund is computed (``adapters.returns_repo``)."""

    __tablename__ = "returns"

    return_id: str = Field(primary_key=True, max_length=40)
    order_id: str = Field(index=True, max_length=40)
    status: str = Field(max_length=24)
    method: str = Field(max_length=24)
    location_id: str = Field(max_length=32)
    version: int = 0
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    refund: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Restock(SQLModel, table=True):
    """Goods put back on hand (a return accepted at a location), one row per key: a repeat changes nothing."""

    key: str = Field(primary_key=True, max_length=200)
    sku: str = Field(max_length=64)
    location_id: str = Field(max_length=32)
    qty: int
    created_at: datetime = _ts()


class ReservationRow(SQLModel, table=True):
    """The store-reservation projection (click & reserve, the at-store stage of click & collect):
    `GET /v1/reservations/{id}` after the workflow closes. Not the ledger's ``reservation`` rows."""

    __tablename__ = "reservations"

    reservation_id: str = Field(primary_key=True, max_length=40)
    status: str = Field(max_length=24)
    channel: str = Field(max_length=16)
    store_id: str = Field(index=True, max_length=32)
    phone: str = Field(index=True, max_length=32)
    order_id: str | None = Field(default=None, max_length=40, index=True)
    amount: int = 0
    currency: str = "RUB"
    version: int = 0
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
