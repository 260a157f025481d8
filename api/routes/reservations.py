"""Click & reserve: hold items at a store (with Idempotency-Key), read, cancel.

Thin: validate, start ``ReservationWorkflow`` (``reservation-{id}``) and wait for its ``placement``
update (held, or refused because the store lacks the items: 409), read the ``reservations``
projection, cancel through the workflow's ``cancel`` update (its validator says why not).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from adapters.reservations_repo import ReservationsRepo
from api.deps import CatalogDep, IdempotencyDep, LedgerDep, SettingsDep, TemporalDep
from api.errors import ApiError, update_refused
from api.idempotency import idempotent
from api.routes.orders import _normal_phone, catalog_lines, new_order_id, pickup_store
from api.schemas import CancelIn, ReservationCreated, ReservationIn
from contracts.order import CancelRequest, Customer, OrderLine
from contracts.reservation import (
    ReservationInput,
    ReservationPlacement,
    ReservationStatus,
    reservation_workflow_id,
)
from contracts.steps import ErrorType
from workflows.reservation import ReservationWorkflow

router = APIRouter(prefix="/v1/reservations", tags=["reservations"])


def _repo(request: Request) -> ReservationsRepo:
    return ReservationsRepo(request.app.state.engine)


ReservationsDep = Annotated[ReservationsRepo, Depends(_repo)]


@router.post("", status_code=201, response_model=ReservationCreated,
             responses={409: {"description": "the store lacks the items, or the same key is in flight"},
                        422: {"description": "invalid input; the message names the field"}})
async def reserve(
    body: ReservationIn, temporal: TemporalDep, catalog: CatalogDep, ledger: LedgerDep, idem: IdempotencyDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Any:
    async def create() -> tuple[int, dict[str, Any]]:
        lines = await catalog_lines(body.lines, catalog)
        store = await pickup_store(ledger, body.store_id, field="store_id")
        reservation_id = new_order_id(f"reservation:{idempotency_key}" if idempotency_key else None)
        inp = ReservationInput(
            reservation_id=reservation_id, store=store, channel=body.channel,
            customer=Customer(phone=_normal_phone(body.customer.phone), name=body.customer.name,
                              email=body.customer.email),
            lines=[OrderLine(pos_id=l.pos_id, sku=l.sku, name=l.name, qty=l.qty, unit_price=l.unit_price) for l in lines],
            number=reservation_id,
            ready_sla_minutes=store.assembly_sla_minutes or settings.assembly_sla_pickup_minutes,
            pickup_window_days=store.pickup_window_days or settings.pickup_window_days,
            hold_minutes=body.hold_minutes, currency=settings.currency, created_at=datetime.now(timezone.utc),
        )
        wf_id = reservation_workflow_id(reservation_id)
        try:
            handle = await temporal.start_workflow(ReservationWorkflow.run, inp, id=wf_id, task_queue=settings.task_queue,
                                                   id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            handle = temporal.get_workflow_handle(wf_id)
        except RPCError as err:
            raise ApiError(503, "temporal_unavailable", f"cannot reserve now: {err.message}") from err
        placement: ReservationPlacement = await handle.execute_update(ReservationWorkflow.placement)
        if placement.status == ReservationStatus.rejected:
            if placement.error_code == ErrorType.OUT_OF_STOCK:
                raise ApiError(409, "out_of_stock", f"lines: {placement.error_message}", field="lines",
                               store_id=store.id, reservation_id=reservation_id)
            raise ApiError(422, (placement.error_code or "refused").lower(),
                           placement.error_message or "the reservation was refused")
        out = ReservationCreated(reservation_id=reservation_id, status=placement.status.value, store_id=store.id,
                                 amount=placement.amount, currency=placement.currency,
                                 links={"self": f"/v1/reservations/{reservation_id}"})
        return 201, out.model_dump(mode="json")

    return await idempotent(idem, scope="reservations.create", key=idempotency_key,
                            payload=body.model_dump(mode="json"), run=create)


@router.get("/{reservation_id}")
async def get_reservation(reservation_id: str, repo: ReservationsDep) -> dict[str, Any]:
    snapshot = await repo.get(reservation_id)
    if snapshot is None:
        raise ApiError(404, "not_found", f"reservation_id: no reservation {reservation_id}", field="reservation_id")
    return snapshot


@router.post("/{reservation_id}/cancel")
async def cancel_reservation(reservation_id: str, body: CancelIn, temporal: TemporalDep,
                             repo: ReservationsDep) -> dict[str, Any]:
    handle = temporal.get_workflow_handle(reservation_workflow_id(reservation_id))
    try:
        status = await handle.execute_update(ReservationWorkflow.cancel, CancelRequest(reason=body.reason, by=body.by))
    except WorkflowUpdateFailedError as err:
        raise update_refused(err, "cannot_cancel", reservation_id=reservation_id) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            known = await repo.get(reservation_id)
            if known is not None:  # the workflow has closed: collected, expired or cancelled
                raise ApiError(409, "cannot_cancel", f"reservation is already {known['status']}",
                               reservation_id=reservation_id) from err
            raise ApiError(404, "not_found", f"reservation_id: no open reservation {reservation_id}",
                           field="reservation_id") from err
        raise
    return {"reservation_id": reservation_id, "status": ReservationStatus(status).value}
