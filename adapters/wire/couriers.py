"""Carrier-neutral shipment shapes and status mapping (pure: no I/O, safe inside workflows).

Two couriers speak very different languages (see ``/work/shared/reference/couriers.md``):
CDEK reports named order status codes (``ACCEPTED`` ... ``DELIVERED``) by webhook and on
``GET /v2/orders``; Russian Post reports postal operations (``OperType``/``OperAttr``
pairs: 1 Приём, 8 Обработка, 2 Вручение, 3 Возврат, 5 Невручение) only when polled.
Workflows see neither: they see :class:`ShipmentStatus`.

Money is integer kopecks (RUB) everywhere here; the adapters convert at the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal


class ShipmentStatus(StrEnum):
    """Where a parcel is, in words a retail person uses."""

    created = "created"  #: booked with the carrier, not yet handed over
    handed_over = "handed_over"  #: the carrier has it (accepted at the office / picked up)
    in_transit = "in_transit"
    arrived = "arrived"  #: in the recipient's city (incl. out for delivery with a courier)
    ready_for_pickup = "ready_for_pickup"  #: waiting at a pickup point / post office
    delivered = "delivered"
    not_delivered = "not_delivered"  #: refused, not collected, lost: goes back
    cancelled = "cancelled"  #: booking removed before hand-over
    returned = "returned"  #: back with the sender


#: CDEK API v2 order status code → our status (codes from the reference; unknown codes
#: are transit steps we do not name, see :func:`cdek_status`).
CDEK_STATUSES: dict[str, ShipmentStatus] = {
    "ACCEPTED": ShipmentStatus.created,
    "CREATED": ShipmentStatus.created,
    "REMOVED": ShipmentStatus.cancelled,
    "INVALID": ShipmentStatus.cancelled,
    "RECEIVED_AT_SHIPMENT_WAREHOUSE": ShipmentStatus.handed_over,
    "READY_TO_SHIP_AT_SENDING_OFFICE": ShipmentStatus.handed_over,
    "TAKEN_BY_TRANSPORTER_FROM_SENDER_CITY": ShipmentStatus.in_transit,
    "SENT_TO_TRANSIT_CITY": ShipmentStatus.in_transit,
    "ACCEPTED_IN_TRANSIT_CITY": ShipmentStatus.in_transit,
    "SENT_TO_RECIPIENT_CITY": ShipmentStatus.in_transit,
    "ACCEPTED_IN_RECIPIENT_CITY": ShipmentStatus.arrived,
    "TAKEN_BY_COURIER": ShipmentStatus.arrived,
    "ACCEPTED_AT_PICK_UP_POINT": ShipmentStatus.ready_for_pickup,
    "DELIVERED": ShipmentStatus.delivered,
    "NOT_DELIVERED": ShipmentStatus.not_delivered,
}


#: what a CDEK order is (its webhook flags ``is_return``, ``is_reverse``, ``is_client_return``)
CdekOrderKind = Literal["direct", "return", "reverse", "client_return"]


def cdek_status(code: str, *, kind: CdekOrderKind = "direct") -> ShipmentStatus:
    """Map a CDEK order status code. Codes we do not list are intermediate logistics
    steps (warehouses, transit cities), so they read as ``in_transit``.

    ``kind`` is the order's kind. A *return* order (CDEK sends a refused parcel back) and a
    *reverse* order (CDEK brings goods back from the recipient) travel towards the sender: their
    DELIVERED is the parcel back with us (``returned``), never the customer's delivery, and
    every earlier step of theirs reads ``not_delivered`` (the goods are on their way back),
    except REMOVED (``cancelled``). A *client return* (the customer sends a bought item back,
    which our return flow books) and a *direct* order read as the table says: the DELIVERED of a
    client return is the store receiving it. Source: CDEK API v2, "Вебхуки" (ORDER_STATUS
    attributes ``is_return``, ``is_reverse``, ``is_client_return``).
    """
    status = CDEK_STATUSES.get(code.strip().upper(), ShipmentStatus.in_transit)
    if kind in ("return", "reverse"):
        if status is ShipmentStatus.delivered:
            return ShipmentStatus.returned
        if status is not ShipmentStatus.cancelled:
            return ShipmentStatus.not_delivered
    return status


#: Russian Post operation types (``OperType.Id``) used by the sandbox and the mapping.
POST_OPER_RECEPTION = 1  # Приём
POST_OPER_DELIVERY = 2  # Вручение
POST_OPER_RETURN = 3  # Возврат
POST_OPER_NON_DELIVERY = 5  # Невручение
POST_OPER_PROCESSING = 8  # Обработка

#: Обработка (8) attribute 2: "Прибыло в место вручения" (waiting at the post office)
POST_ATTR_ARRIVED_AT_DELIVERY_OFFICE = 2
#: Вручение (2) attribute 1: handed to the addressee; 2: handed back to the sender
POST_ATTR_TO_ADDRESSEE = 1
POST_ATTR_TO_SENDER = 2


def post_status(oper_type: int, oper_attr: int) -> ShipmentStatus:
    """Map a Russian Post operation (``OperType.Id``, ``OperAttr.Id``)."""
    if oper_type == POST_OPER_RECEPTION:
        return ShipmentStatus.handed_over
    if oper_type == POST_OPER_PROCESSING:
        if oper_attr == POST_ATTR_ARRIVED_AT_DELIVERY_OFFICE:
            return ShipmentStatus.ready_for_pickup
        return ShipmentStatus.in_transit
    if oper_type == POST_OPER_DELIVERY:
        if oper_attr == POST_ATTR_TO_SENDER:
            return ShipmentStatus.returned
        return ShipmentStatus.delivered
    if oper_type in (POST_OPER_RETURN, POST_OPER_NON_DELIVERY):
        return ShipmentStatus.not_delivered
    return ShipmentStatus.in_transit


@dataclass(frozen=True)
class Recipient:
    name: str
    phone: str


@dataclass(frozen=True)
class ShipAddress:
    region: str
    city: str
    #: street and house ("ул. Тверская, д. 7"); flat may follow after another comma
    line: str
    postcode: str


@dataclass(frozen=True)
class ParcelItem:
    sku: str
    name: str
    qty: int
    #: one unit, kopecks
    price: int


@dataclass(frozen=True)
class BookingRequest:
    #: our shipment id: the carrier's idempotency key (CDEK ``number``, Post ``order-num``)
    shipment_id: str
    carrier: str
    from_city: str
    #: our location (store / warehouse) the parcel leaves from
    from_location_id: str
    to: ShipAddress
    recipient: Recipient
    items: tuple[ParcelItem, ...]
    weight_g: int
    #: kopecks; 0 = no declared value
    declared_value: int
    #: customer → store (a return shipment); ``recipient``/``to`` then describe the customer
    is_return: bool = False
    #: carrier's pickup point code (CDEK) instead of door delivery
    pickup_point: str | None = None
    #: carrier's tariff (CDEK tariff code, Post mail-type); None = the adapter's default
    tariff: str | None = None
    #: cash on delivery: the carrier collects each item's price (kopecks) from the recipient for
    #: what they keep, plus ``delivery_charge`` (CDEK ``payment`` / ``delivery_recipient_cost``)
    cash_on_delivery: bool = False
    delivery_charge: int = 0
    #: the recipient may try items on and keep some (CDEK services TRYING_ON + PART_DELIV)
    try_on: bool = False


@dataclass(frozen=True)
class Booking:
    carrier: str
    #: carrier's id of the booking (CDEK order uuid, Post backlog id)
    external_id: str
    #: what a customer tracks (CDEK number, Post barcode)
    tracking_number: str


@dataclass(frozen=True)
class TrackingEvent:
    #: carrier's own code (CDEK status code; Post ``"{oper_type}.{oper_attr}"``)
    code: str
    status: ShipmentStatus
    at: datetime
    city: str | None = None


@dataclass(frozen=True)
class Quote:
    carrier: str
    tariff: str
    method: Literal["courier", "pickup_point", "post"]
    #: kopecks (RUB)
    price: int
    days_min: int
    days_max: int


@dataclass(frozen=True)
class ShipmentUpdate:
    """One pushed status change (a CDEK ``ORDER_STATUS`` webhook), carrier-neutral."""

    carrier: str
    external_id: str
    tracking_number: str | None
    #: our shipment id as we gave it to the carrier
    shipment_id: str | None
    is_return: bool
    event: TrackingEvent
    #: carrier's reason for the status (CDEK ``status_reason_code``), if any
    reason_code: str | None = None
    #: the carrier order's kind (CDEK: direct | return | reverse | client_return)
    kind: str = "direct"
    #: the carrier withdrew this status (CDEK ``deleted: true``): ignore it
    deleted: bool = False
    #: for a return or reverse order: the carrier's id of the direct order it belongs to
    direct_order: str | None = None


def latest_status(events: Sequence[TrackingEvent]) -> ShipmentStatus:
    """The current status after these events (``created`` when the carrier has none yet)."""
    if not events:
        return ShipmentStatus.created
    # the latest by time; among equal times, the one reported last
    return max(enumerate(events), key=lambda ie: (ie[1].at, ie[0]))[1].status
