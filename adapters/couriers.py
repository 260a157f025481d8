"""The carrier-neutral face of couriers: one :class:`Courier` protocol, two clients.

Activities hold a :class:`CourierRegistry` and never care which carrier answers:
``registry.get(booking.carrier).track(booking)``. Shapes are in :mod:`adapters.wire.couriers`;
the wire details live in :mod:`adapters.cdek` (CDEK API v2) and :mod:`adapters.post`
(Russian Post otpravka + SOAP tracking), after ``/work/shared/reference/couriers.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import Protocol, runtime_checkable

import structlog

from adapters.cdek import CdekClient
from adapters.errors import ExternalRefusal
from adapters.post import RussianPostClient
from adapters.wire.couriers import Booking, BookingRequest, Quote, ShipAddress, TrackingEvent

log = structlog.get_logger("adapter.couriers")

__all__ = ["CdekClient", "Courier", "CourierRegistry", "RussianPostClient"]


@runtime_checkable
class Courier(Protocol):
    #: carrier code: "cdek", "post"
    carrier: str

    async def book(self, req: BookingRequest) -> Booking:
        """Book a shipment; idempotent by ``req.shipment_id`` (a repeat returns the first booking)."""
        ...

    async def cancel(self, booking: Booking) -> None:
        """Cancel before hand-over; ``ExternalRefusal`` once the carrier has the parcel."""
        ...

    async def track(self, booking: Booking) -> list[TrackingEvent]:
        """The carrier's history of the shipment, oldest first."""
        ...

    async def quote(self, *, from_city: str, to: ShipAddress, weight_g: int) -> list[Quote]:
        """Price and days for each tariff the carrier offers on this route."""
        ...


class CourierRegistry:
    """Carrier code → client."""

    def __init__(self, couriers: Iterable[Courier] = ()) -> None:
        self._by_code: dict[str, Courier] = {}
        for c in couriers:
            self.register(c)

    def register(self, courier: Courier) -> None:
        if courier.carrier in self._by_code:
            raise ValueError(f"courier {courier.carrier!r} registered twice")
        self._by_code[courier.carrier] = courier

    def get(self, carrier: str) -> Courier:
        try:
            return self._by_code[carrier]
        except KeyError:
            raise KeyError(f"no courier {carrier!r}; known: {sorted(self._by_code)}") from None

    __getitem__ = get

    def __contains__(self, carrier: object) -> bool:
        return carrier in self._by_code

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_code))

    @property
    def carriers(self) -> list[str]:
        return sorted(self._by_code)

    async def quote_all(self, *, from_city: str, to: ShipAddress, weight_g: int) -> list[Quote]:
        """Every carrier's quotes, cheapest first. A carrier that refuses the route is left
        out; one that is unavailable fails the whole call (the caller retries)."""
        couriers = [self._by_code[c] for c in self.carriers]
        results = await asyncio.gather(
            *(c.quote(from_city=from_city, to=to, weight_g=weight_g) for c in couriers), return_exceptions=True
        )
        quotes: list[Quote] = []
        for courier, res in zip(couriers, results, strict=True):
            if isinstance(res, ExternalRefusal):
                log.info("couriers.quote_refused", carrier=courier.carrier, reason=res.message)
            elif isinstance(res, BaseException):
                raise res
            else:
                quotes.extend(res)
        return sorted(quotes, key=lambda q: (q.price, q.days_max, q.carrier, q.tariff))
