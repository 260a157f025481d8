"""Click & reserve: hold items at a store (with Idempotency-Key), read, cancel.

HTTP in and out only: ``services.reservations`` starts ``ReservationWorkflow`` and answers with its
placement (held, or 409 when the store lacks the items); reads come from the projection.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header

from api.deps import IdempotencyDep, ReservationServiceDep
from api.idempotency import idempotent
from api.schemas import CancelIn, ReservationCreated, ReservationIn
from contracts.order import CancelRequest, Customer, LineRequest
from services.reservations import NewReservation

router = APIRouter(prefix="/v1/reservations", tags=["reservations"])


@router.post("", status_code=201, response_model=ReservationCreated,
             responses={409: {"description": "the store lacks the items, or the same key is in flight"},
                        422: {"description": "invalid input; the message names the field"}})
async def reserve(
    body: ReservationIn, reservations: ReservationServiceDep, idem: IdempotencyDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Any:
    async def create() -> tuple[int, dict[str, Any]]:
        placement = await reservations.create(NewReservation(
            channel=body.channel, store_id=body.store_id,
            customer=Customer(phone=body.customer.phone, name=body.customer.name, email=body.customer.email),
            lines=[LineRequest(sku=line.sku, qty=line.qty) for line in body.lines], hold_minutes=body.hold_minutes,
        ), idempotency_key)
        out = ReservationCreated(reservation_id=placement.reservation_id, status=placement.status.value,
                                 store_id=body.store_id, amount=placement.amount, currency=placement.currency,
                                 links={"self": f"/v1/reservations/{placement.reservation_id}"})
        return 201, out.model_dump(mode="json")

    return await idempotent(idem, scope="reservations.create", key=idempotency_key,
                            payload=body.model_dump(mode="json"), run=create)


@router.get("/{reservation_id}")
async def get_reservation(reservation_id: str, reservations: ReservationServiceDep) -> dict[str, Any]:
    return await reservations.get(reservation_id)


@router.post("/{reservation_id}/cancel")
async def cancel_reservation(reservation_id: str, body: CancelIn,
                             reservations: ReservationServiceDep) -> dict[str, Any]:
    status = await reservations.cancel(reservation_id, CancelRequest(reason=body.reason, by=body.by))
    return {"reservation_id": reservation_id, "status": status.value}
