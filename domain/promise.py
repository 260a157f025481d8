"""The delivery promise: dates the customer is told, computed from where the goods are,
assembly time, the carrier's days for the route and cut-off times (couriers.md, "Per-region
rules"). Pure and deterministic: ``now`` is always an argument (``workflow.now()`` in a
workflow), never read from the clock.

Time-zone convention
--------------------
* Every ``datetime`` passed in must be timezone-aware (``ValueError`` otherwise).
* Opening hours (``opens_at`` / ``closes_at``) and the carrier's ``cutoff`` are naive
  wall-clock times *of the location the goods leave from*. ``ready_time`` reads them in the
  zone of its ``now`` argument, and ``promise_window`` in the zone of ``ready_at`` — so the
  caller passes those datetimes already converted to the location's zone
  (``now.astimezone(location_tz)``); results come back in that same zone.
* Promised dates are calendar dates in that location zone; ``is_late`` compares against
  the calendar date of ``delivered_at`` in its own zone (pass it in the customer's zone if
  that is what "on time" should mean). Russia and Kazakhstan keep no summer time, so
  wall-clock arithmetic on aware datetimes is exact.
* Carrier days are calendar days counted from the hand-over date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Iterable

__all__ = [
    "DeliveryMethod",
    "CarrierRule",
    "DeliveryQuote",
    "ready_time",
    "handover_date",
    "promise_window",
    "is_late",
    "rules_for",
    "quote",
]


class DeliveryMethod(StrEnum):
    COURIER = "courier"
    PICKUP_POINT = "pickup_point"
    POST = "post"


@dataclass(frozen=True)
class CarrierRule:
    """One per-region delivery rule: who carries, how, at what price and in how many days.

    ``cutoff`` is the latest local time at the sending location for goods to leave the same
    day. ``from_location_ids`` limits the rule to some sending locations (``None`` = any).
    ``price`` is in minor units of ``currency``.
    """

    carrier: str
    method: DeliveryMethod  # "courier" | "pickup_point" | "post"
    region: str
    price: int
    days_min: int
    days_max: int
    cutoff: time
    from_location_ids: frozenset[str] | None = None
    currency: str = "RUB"

    @classmethod
    def parse(cls, *, carrier: str, method: str, region: str, price: int, days_min: int, days_max: int, cutoff: str,
              from_location_ids: list[str] | None = None, currency: str = "RUB") -> CarrierRule:
        """A rule from plain values (``cutoff`` as ``"HH:MM"``), as stored or as crossing into a workflow."""
        hh, mm = cutoff.split(":")
        return cls(carrier=carrier, method=DeliveryMethod(method), region=region, price=price, days_min=days_min,
                   days_max=days_max, cutoff=time(int(hh), int(mm)),
                   from_location_ids=frozenset(from_location_ids) if from_location_ids else None, currency=currency)

    def __post_init__(self) -> None:
        if self.price < 0:
            raise ValueError(f"CarrierRule {self.carrier}: price must be >= 0")
        if not 0 <= self.days_min <= self.days_max:
            raise ValueError(f"CarrierRule {self.carrier}: need 0 <= days_min <= days_max")


@dataclass(frozen=True)
class DeliveryQuote:
    """What the customer is offered: a rule and its promised date window."""

    carrier: str
    method: DeliveryMethod
    price: int
    currency: str
    date_from: date
    date_to: date


def _aware(name: str, dt: datetime) -> None:
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"{name} must be timezone-aware, got {dt!r}")


def _open_intervals(day: date, opens_at: time, closes_at: time, tz: tzinfo | None) -> list[tuple[datetime, datetime]]:
    """Opening intervals that start on ``day`` (one, possibly running past midnight)."""
    start = datetime.combine(day, opens_at.replace(tzinfo=None), tzinfo=tz)
    end_day = day if opens_at < closes_at else day + timedelta(days=1)
    end = datetime.combine(end_day, closes_at.replace(tzinfo=None), tzinfo=tz)
    return [(start, end)]


def ready_time(*, now: datetime, assembly_minutes: int, opens_at: time | None, closes_at: time | None) -> datetime:
    """When assembly started at ``now`` can finish, given the location's opening hours.

    Assembly only runs while the location is open: a location closed now starts when it
    next opens, and work left at closing continues at the next opening. Hours with
    ``opens_at > closes_at`` run past midnight; ``opens_at == closes_at`` or either ``None``
    means open round the clock. ``assembly_minutes == 0`` at a closed location gives the
    next opening (somebody has to be there to hand the goods over). The result is in the
    zone of ``now`` (see the module's time-zone convention).
    """
    _aware("now", now)
    if assembly_minutes < 0:
        raise ValueError("assembly_minutes must be >= 0")
    if opens_at is None or closes_at is None or opens_at.replace(tzinfo=None) == closes_at.replace(tzinfo=None):
        return now + timedelta(minutes=assembly_minutes)
    o, c = opens_at.replace(tzinfo=None), closes_at.replace(tzinfo=None)
    tz = now.tzinfo
    left = timedelta(minutes=assembly_minutes)
    cursor = now
    day = now.date() - timedelta(days=1)  # yesterday's interval may run past midnight into today
    # each loop step consumes one opening interval: bounded by the days the work needs
    open_per_day = _open_intervals(day, o, c, tz)[0]
    per_day = open_per_day[1] - open_per_day[0]
    max_steps = 3 + int(left / per_day) + 1
    for _ in range(max_steps):
        for start, end in _open_intervals(day, o, c, tz):
            if end <= cursor:
                continue
            begin = max(start, cursor)
            if left <= end - begin:
                return begin + left
            left -= end - begin
            cursor = end
        day += timedelta(days=1)
    raise AssertionError("ready_time: loop bound exceeded")  # pragma: no cover - arithmetic invariant


def handover_date(*, now: datetime, ready_at: datetime, cutoff: time) -> date:
    """The day the carrier takes the goods: the day they are ready if ready at or before
    ``cutoff`` (local wall clock of ``ready_at``), otherwise the next day. Goods cannot be
    ready before ``now``."""
    _aware("now", now)
    _aware("ready_at", ready_at)
    ready = max(ready_at, now).astimezone(ready_at.tzinfo)
    if ready.time() <= cutoff.replace(tzinfo=None):
        return ready.date()
    return ready.date() + timedelta(days=1)


def promise_window(*, now: datetime, ready_at: datetime, rule: CarrierRule) -> tuple[date, date]:
    """Promised delivery dates ``(from, to)``: hand-over date (see ``handover_date``) plus
    ``rule.days_min`` and ``rule.days_max`` calendar days."""
    handover = handover_date(now=now, ready_at=ready_at, cutoff=rule.cutoff)
    return handover + timedelta(days=rule.days_min), handover + timedelta(days=rule.days_max)


def is_late(promised_to: date, delivered_at: datetime) -> bool:
    """Delivered after the last promised day (calendar date of ``delivered_at`` in its own zone)."""
    _aware("delivered_at", delivered_at)
    return delivered_at.date() > promised_to


def rules_for(rules: Iterable[CarrierRule], *, region: str, location_id: str) -> list[CarrierRule]:
    """The rules that apply to a route: the destination region matches (case-insensitive)
    and the rule is not limited to other sending locations. Input order is kept."""
    want = region.strip().casefold()
    return [
        r
        for r in rules
        if r.region.strip().casefold() == want and (r.from_location_ids is None or location_id in r.from_location_ids)
    ]


def quote(
    rules: Iterable[CarrierRule], *, now: datetime, ready_at: datetime, region: str, location_id: str
) -> list[DeliveryQuote]:
    """Every applicable option with its window, best first: earliest latest date, then earliest
    first date, then cheapest, then carrier and method names (deterministic)."""
    out = []
    for r in rules_for(rules, region=region, location_id=location_id):
        d_from, d_to = promise_window(now=now, ready_at=ready_at, rule=r)
        out.append(DeliveryQuote(r.carrier, DeliveryMethod(r.method), r.price, r.currency, d_from, d_to))
    out.sort(key=lambda q: (q.date_to, q.date_from, q.price, q.carrier, str(q.method)))
    return out
