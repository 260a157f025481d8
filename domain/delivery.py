"""Delivery options for a cart: the per-region carrier rules applied to a sourcing plan (pure).

``delivery_options(shipments, locations, rules, region=..., now=..., assembly_minutes=...)``
answers "how can this cart reach this address, for how much, and when": for each
shipment of the plan (one location each) the goods are ready when that location has
assembled them (``domain.promise.ready_time``: opening hours, assembly time, in the
location's own time zone), handed to the carrier on the day of readiness or the next day
after the rule's cut-off, and delivered within the rule's days (``promise_window``).

An *option* is a (carrier, method) pair. It is offered only when a rule of that pair serves
every shipment's route (destination region, sending location); per shipment the best rule of
the pair is taken (earliest last day, then earliest first day, then cheapest). The promised
window of the option is the latest over its shipments (the customer has everything by then);
its price is the highest rule price over the shipments: the customer pays delivery once per
order, whatever the number of shipments (as ``domain.planning.delivery_price`` does).

Lateness (``shipment_late``) is judged on the calendar in the customer's region.
No I/O, no clock: ``now`` is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping, Sequence

from domain.planning import REGION_UTC_OFFSET_MIN
from domain.promise import CarrierRule, DeliveryMethod, is_late, promise_window, ready_time, rules_for
from domain.sourcing import PlannedShipment
from contracts.stock import LocationInfo

__all__ = ["ShipmentPromise", "DeliveryOption", "delivery_options", "region_tz", "shipment_late", "hhmm"]

#: the zone used when a region has no known offset (Moscow time)
DEFAULT_OFFSET_MIN = 180


@dataclass(frozen=True)
class ShipmentPromise:
    """One shipment under one option: when it is ready, by which rule, and its window."""

    location_id: str
    ready_at: datetime  # in the sending location's zone
    cutoff: time
    date_from: date
    date_to: date


@dataclass(frozen=True)
class DeliveryOption:
    carrier: str
    method: DeliveryMethod
    price: int  # minor units, for the whole order
    currency: str
    date_from: date
    date_to: date
    shipments: tuple[ShipmentPromise, ...]

    @property
    def option_id(self) -> str:
        return f"{self.carrier}:{self.method.value}"


def region_tz(region: str) -> timezone:
    """The fixed UTC offset of a region (Russia and Kazakhstan keep no summer time)."""
    return timezone(timedelta(minutes=REGION_UTC_OFFSET_MIN.get(region.strip().upper(), DEFAULT_OFFSET_MIN)))


def hhmm(value: str | None) -> time | None:
    """``"HH:MM"`` → ``time`` (``None`` or empty → ``None``); ValueError if malformed."""
    if not value:
        return None
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


def delivery_options(
    shipments: Sequence[PlannedShipment],
    locations: Mapping[str, LocationInfo],
    rules: Sequence[CarrierRule],
    *,
    region: str,
    now: datetime,
    assembly_minutes: int,
) -> list[DeliveryOption]:
    """Every (carrier, method) that serves every shipment, best first (earliest last day, then
    earliest first day, then cheapest, then names). Empty when there is no shipment or no rule
    serves one of them. ``now`` must be timezone-aware; ``assembly_minutes`` applies where the
    location has no assembly SLA of its own."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not shipments:
        return []
    per_shipment: list[dict[tuple[str, str], tuple[ShipmentPromise, int, str]]] = []
    for shipment in shipments:
        loc = locations[shipment.location_id]
        local_now = now.astimezone(region_tz(loc.region))
        ready = ready_time(now=local_now, assembly_minutes=loc.assembly_sla_minutes or assembly_minutes,
                           opens_at=hhmm(loc.opens_at), closes_at=hhmm(loc.closes_at))
        best: dict[tuple[str, str], tuple[ShipmentPromise, int, str]] = {}
        for rule in rules_for(rules, region=region, location_id=loc.id):
            d_from, d_to = promise_window(now=local_now, ready_at=ready, rule=rule)
            key = (rule.carrier, DeliveryMethod(rule.method).value)
            held = best.get(key)
            # the same order as domain.promise.quote: earliest last day, first day, then cheapest
            if held is None or (d_to, d_from, rule.price) < (held[0].date_to, held[0].date_from, held[1]):
                best[key] = (ShipmentPromise(loc.id, ready, rule.cutoff, d_from, d_to), rule.price, rule.currency)
        per_shipment.append(best)
    common = set(per_shipment[0])
    for best in per_shipment[1:]:
        common &= set(best)
    options = []
    for carrier, method in sorted(common):
        parts = [best[(carrier, method)] for best in per_shipment]
        options.append(DeliveryOption(
            carrier=carrier, method=DeliveryMethod(method), price=max(p for _, p, _ in parts), currency=parts[0][2],
            date_from=max(s.date_from for s, _, _ in parts), date_to=max(s.date_to for s, _, _ in parts),
            shipments=tuple(s for s, _, _ in parts),
        ))
    options.sort(key=lambda o: (o.date_to, o.date_from, o.price, o.carrier, o.method.value))
    return options


def shipment_late(promised_to: str | date | None, delivered_at: datetime, region: str | None) -> bool | None:
    """Whether a delivery missed the promise, on the calendar of the customer's region; ``None``
    when nothing was promised. A naive ``delivered_at`` is taken as UTC (carriers report UTC)."""
    if promised_to is None:
        return None
    if delivered_at.utcoffset() is None:
        delivered_at = delivered_at.replace(tzinfo=timezone.utc)
    last = date.fromisoformat(promised_to) if isinstance(promised_to, str) else promised_to
    return is_late(last, delivered_at.astimezone(region_tz(region)) if region else delivered_at)
