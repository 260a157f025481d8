"""Courier steps: book a shipment, cancel it before hand-over, poll tracking (poll-only carriers)."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.common import logger, refusals_as
from adapters.couriers import CourierRegistry
from adapters.wire.couriers import Booking, BookingRequest, ParcelItem, Recipient, ShipAddress
from contracts.steps import BookedShipment, ErrorType, ShipmentBookingRequest, TrackingResult

GRAMS_PER_ITEM = 700  # a garment with its packaging, until the catalog carries weights


@dataclass
class CourierActivities:
    couriers: CourierRegistry

    @activity.defn
    async def book_shipment(self, req: ShipmentBookingRequest) -> BookedShipment:
        a = req.address
        booking_req = BookingRequest(
            shipment_id=req.shipment_id, carrier=req.carrier, from_city=req.from_city,
            from_location_id=req.from_location_id,
            to=ShipAddress(region=a.region, city=a.city, line=a.line, postcode=a.postcode),
            recipient=Recipient(name=req.recipient.name, phone=req.recipient.phone),
            items=tuple(ParcelItem(sku=l.sku, name=l.name, qty=l.qty, price=l.amount // max(l.qty, 1))
                        for l in req.lines),
            weight_g=GRAMS_PER_ITEM * sum(l.qty for l in req.lines),
            declared_value=sum(l.amount for l in req.lines),
            is_return=req.is_return,
        )
        with refusals_as(ErrorType.COURIER_REFUSED):
            booking = await self.couriers.get(req.carrier).book(booking_req)
        logger().info("courier.booked", carrier=req.carrier, external_id=booking.external_id)
        return BookedShipment(carrier=booking.carrier, external_id=booking.external_id,
                              tracking_number=booking.tracking_number)

    @activity.defn
    async def cancel_shipment(self, booked: BookedShipment) -> None:
        with refusals_as(ErrorType.COURIER_REFUSED):
            await self.couriers.get(booked.carrier).cancel(_booking(booked))

    @activity.defn
    async def track_shipment(self, booked: BookedShipment) -> TrackingResult:
        with refusals_as(ErrorType.COURIER_REFUSED):
            events = await self.couriers.get(booked.carrier).track(_booking(booked))
        if not events:
            return TrackingResult(status="created")
        last = events[-1]
        return TrackingResult(status=str(last.status), code=str(last.code), at=last.at, city=last.city)


def _booking(b: BookedShipment) -> Booking:
    return Booking(carrier=b.carrier, external_id=b.external_id, tracking_number=b.tracking_number or "")
