"""Carrier pickup points in one shape for the storefront (``GET /v1/pickup-points``): CDEK's
``deliverypoints`` and Russian Post offices alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PickupPoint:
    carrier: str  # cdek | post
    code: str  # what the booking carries: CDEK point code, Post office index
    name: str
    kind: str  # PVZ | POSTAMAT | post_office | parcel_locker
    city: str
    address: str
    postcode: str
    lat: float
    lon: float
    #: opening hours per weekday 1 (Monday) .. 7, "HH:MM-HH:MM"; a day absent is closed
    hours: tuple[tuple[int, str], ...] = ()
    #: a fitting room: the customer can try clothes on and keep only some (partial buyout)
    try_on: bool = False
    card_payment: bool = False
    cash_payment: bool = False
