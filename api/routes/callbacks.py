"""What outside systems send back: bank callbacks, store POS events, courier webhooks.

Each is authenticated (checksum, shared token, secret URL), then routed to the workflow
that owns it as a signal. Routing keys are our own idempotency keys: the acquiring
``orderNumber`` is the order's workflow id, a POS ``task_id`` starts with the workflow id,
a courier ``number`` is the fulfillment workflow id.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Request
from fastapi.responses import PlainTextResponse
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.deps import SettingsDep, TemporalDep
from api.errors import ApiError
from adapters.cdek import CdekClient
from adapters.wire.acquiring import verify_callback
from adapters.wire.pos import PosEvent
from contracts.order import CourierEvent, LineRequest, PaymentEvent, StoreEvent

router = APIRouter(prefix="/callbacks", tags=["callbacks"])
log = structlog.get_logger("api.callbacks")


async def _signal(temporal: Client, workflow_id: str, signal: str, arg: Any) -> None:
    try:
        await temporal.get_workflow_handle(workflow_id).signal(signal, arg)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, "unknown_workflow", f"no running workflow {workflow_id}") from err
        raise


@router.get("/acquiring", response_class=PlainTextResponse)
async def acquiring_callback(request: Request, temporal: TemporalDep, settings: SettingsDep) -> str:
    params = dict(request.query_params)
    if not verify_callback(params, settings.acquiring_callback_secret):
        log.warning("callback.bad_checksum", params={k: v for k, v in params.items() if k != "checksum"})
        raise ApiError(400, "bad_checksum", "checksum: does not match the parameters", field="checksum")
    for name in ("mdOrder", "orderNumber", "operation", "status"):
        if not params.get(name):
            raise ApiError(400, "validation_error", f"{name}: required", field=name)
    workflow_id = params["orderNumber"].split("~", 1)[0]
    amount = params.get("amount")
    event = PaymentEvent(md_order=params["mdOrder"], operation=params["operation"], success=params["status"] == "1",
                         amount=int(amount) if amount and amount.isdigit() else None)
    await _signal(temporal, workflow_id, "payment_event", event)
    log.info("callback.acquiring", workflow_id=workflow_id, operation=event.operation, success=event.success)
    return "OK"


@router.post("/pos")
async def pos_event(event: PosEvent, temporal: TemporalDep, settings: SettingsDep,
                    x_pos_token: Annotated[str | None, Header()] = None) -> dict[str, str]:
    if x_pos_token is None or not hmac.compare_digest(x_pos_token, settings.pos_callback_token):
        raise ApiError(401, "unauthorized", "X-Pos-Token: missing or wrong", field="X-Pos-Token")
    workflow_id = event.task_id.split(":", 1)[0]
    store_event = StoreEvent(
        event=event.event, task_id=event.task_id, event_id=event.event_id,
        lines=[LineRequest(sku=l.sku, qty=l.qty) for l in (event.lines or [])],
        sku=event.sku, missing_qty=event.missing_qty, paid_amount=event.paid_amount,
        accepted=[LineRequest(sku=l.sku, qty=l.qty) for l in (event.accepted or [])],
        rejected=[dict(r) if isinstance(r, dict) else r.__dict__ for r in (event.rejected or [])],
        at=event.occurred_at,
    )
    await _signal(temporal, workflow_id, "pos_event", store_event)
    log.info("callback.pos", workflow_id=workflow_id, pos_event=event.event, task_id=event.task_id)
    return {"status": "accepted"}


@router.post("/couriers/cdek/{secret}")
async def cdek_webhook(secret: str, payload: dict[str, Any], temporal: TemporalDep,
                       settings: SettingsDep) -> dict[str, str]:
    if not hmac.compare_digest(secret, settings.courier_webhook_secret):
        raise ApiError(404, "not_found", "unknown webhook")
    try:
        update = CdekClient.parse_webhook(payload)
    except ValueError as exc:
        raise ApiError(422, "validation_error", str(exc), field="attributes") from exc
    number, code = update.shipment_id, update.event.code
    if not number or not code:
        raise ApiError(422, "validation_error", "attributes.number and attributes.code are required",
                       field="attributes")
    if update.deleted:  # CDEK withdrew a status it set by mistake: nothing happened to the parcel
        log.info("callback.cdek_status_withdrawn", workflow_id=number, code=code)
        return {"status": "ignored"}
    # a return or reverse order's statuses read as the goods going back (cdek_status, kind)
    event = CourierEvent(status=update.event.status.value, code=code, city=update.event.city, at=update.event.at)
    await _signal(temporal, number, "courier_event", event)
    log.info("callback.cdek", workflow_id=number, code=code, kind=update.kind)
    return {"status": "accepted"}
