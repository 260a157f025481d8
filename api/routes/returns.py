"""Returns: open one for an order (with Idempotency-Key), read it; the order's view shows them.

Thin: the request is checked against the order's record and its units claimed in one
transaction under the order's lock (``adapters.returns_repo``), then ``ReturnWorkflow`` runs it.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Sequence

import structlog
from fastapi import APIRouter, Header
from pydantic import Field, model_validator
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from adapters.orders_repo import OrdersRepo
from adapters.returns_repo import OrderNotFound, ReturnsRepo, return_to_json
from adapters.catalog import CatalogRepo
from api.deps import CatalogDep, EngineDep, IdempotencyDep, LedgerDep, SettingsDep, TemporalDep
from api.errors import ApiError, update_refused
from api.idempotency import idempotent
from api.routes.history import RetryIn
from api.schemas import AddressIn, Strict
from contracts.order import Address, DeliveryMethod, OrderSnapshot
from contracts.returns import (
    ExchangeRequest,
    ReturnInput,
    ReturnLineRequest,
    ReturnMethod,
    ReturnSnapshot,
    ReturnStatus,
    return_workflow_id,
)
from domain.returns import ReturnRefused, check_request
from contracts.recovery import RetryRequest
from contracts.stock import LocationInfo
from settings import Settings
from workflows.returns import ReturnWorkflow

router = APIRouter(tags=["returns"])
log = structlog.get_logger("api.returns")

RETURN_NS = uuid.UUID("0b7e52b4-7d0c-4c1e-9a3f-52a1d3c6e9a1")


class ReturnLineIn(Strict):
    pos_id: int = Field(ge=1, description="the order line (``lines[].pos_id`` of the order)")
    qty: int = Field(ge=1, le=99)
    reason: str = Field(default="", max_length=500)


class ExchangeIn(Strict):
    pos_id: int = Field(ge=1, description="the returned line to swap (all its returned units)")
    sku: str = Field(min_length=1, max_length=64, description="the replacement: another size / colour")


class ReturnIn(Strict):
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=50)
    method: ReturnMethod
    store_id: str | None = Field(default=None, max_length=32, description="in_store: any store of the chain")
    address: AddressIn | None = Field(default=None, description="courier_pickup / post: where from "
                                                                 "(default: the order's delivery address)")
    exchange: ExchangeIn | None = Field(default=None, description="swap one returned line for another SKU")

    @model_validator(mode="after")
    def _needs(self) -> "ReturnIn":
        if self.method == ReturnMethod.in_store and not self.store_id:
            raise ValueError("store_id is required for an in_store return")
        if self.exchange is not None and self.exchange.pos_id not in {l.pos_id for l in self.lines}:
            raise ValueError("exchange.pos_id must be one of the returned lines")
        return self


def new_return_id(order_id: str, idempotency_key: str | None) -> str:
    raw = uuid.uuid5(RETURN_NS, f"{order_id}:{idempotency_key}") if idempotency_key else uuid.uuid4()
    return "R" + raw.hex[:11].upper()


@router.post("/v1/orders/{order_id}/returns", status_code=201,
             responses={404: {"description": "no such order"},
                        409: {"description": "not delivered, window closed, too many units, or the key is in flight"},
                        422: {"description": "invalid input; the message names the field"}})
async def create_return(
    order_id: str, body: ReturnIn, temporal: TemporalDep, engine: EngineDep, ledger: LedgerDep,
    catalog: CatalogDep, idem: IdempotencyDep, settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Any:
    async def run() -> tuple[int, dict[str, Any]]:
        return await _create(order_id, body, temporal, ReturnsRepo(engine), await ledger.locations(), catalog,
                             settings, idempotency_key)

    return await idempotent(idem, key=idempotency_key, scope="returns.create",
                            payload={"order_id": order_id, **body.model_dump(mode="json")}, run=run)


async def _create(order_id: str, body: ReturnIn, temporal: Any, repo: ReturnsRepo, locations: list[LocationInfo],
                  catalog: CatalogRepo, settings: Settings, idempotency_key: str | None) -> tuple[int, dict[str, Any]]:
    by_id = {l.id: l for l in locations}
    replacement = None
    if body.exchange is not None:
        replacement = (await catalog.skus([body.exchange.sku])).get(body.exchange.sku)
        if replacement is None or replacement.price <= 0:
            raise ApiError(422, "unknown_sku", f"exchange.sku: {body.exchange.sku!r} is not for sale",
                           field="exchange.sku")
    if body.method == ReturnMethod.in_store:
        store = by_id.get(body.store_id or "")
        if store is None or store.kind != "store":
            raise ApiError(422, "unknown_store", f"store_id: {body.store_id!r} is not a store of the chain",
                           field="store_id")
    return_id = new_return_id(order_id, idempotency_key)
    now = datetime.now(timezone.utc)
    found: dict[str, Any] = {}

    def build(order: OrderSnapshot, others: Sequence[ReturnSnapshot]) -> ReturnSnapshot:
        lines = check_request(order, [ReturnLineRequest(pos_id=l.pos_id, qty=l.qty, reason=l.reason) for l in body.lines],
                              others, now=now, window_days=settings.return_window_days)
        if body.method == ReturnMethod.in_store:
            location = by_id[body.store_id or ""]
        else:
            skus = {l.sku for l in lines}
            shipped_from = next((s.location_id for s in order.shipments if any(x.sku in skus for x in s.lines)), None)
            location = by_id.get(shipped_from or "")
            if location is None:
                raise ReturnRefused(409, "no_receiving_location", "lines",
                                    "cannot tell where these goods shipped from")
        address = Address(**body.address.model_dump()) if body.address else order.delivery.address
        if body.method != ReturnMethod.in_store and address is None:
            raise ReturnRefused(422, "validation_error", "address",
                                f"required for a {body.method.value} return (the order has no delivery address)")
        if body.exchange is not None and (order.delivery.method == DeliveryMethod.pickup
                                          or order.delivery.address is None):
            raise ReturnRefused(422, "exchange_not_possible", "exchange",
                                "a replacement ships to the order's delivery address; this order has none")
        found.update(order=order, location=location, address=address)
        return ReturnSnapshot(return_id=return_id, order_id=order_id, status=ReturnStatus.registered,
                              method=body.method, location_id=location.id, lines=lines, created_at=now,
                              updated_at=now, version=0, currency=order.totals.currency)

    try:
        snap, created = await repo.create(return_id=return_id, order_id=order_id, build=build)
    except OrderNotFound as err:
        raise ApiError(404, "not_found", f"order_id: no order {order_id}", field="order_id") from err
    except ReturnRefused as err:
        raise ApiError(err.status, err.code, err.message, field=err.field, order_id=order_id) from err
    if not created and snap.status == ReturnStatus.registered and snap.version == 0:
        # an earlier request with this key saved the return but may have died before starting its
        # workflow: start it now (a running one is left alone), so a retry never leaves it orphaned
        order_again = await OrdersRepo(repo.engine).get(order_id)
        if order_again is not None:
            found.update(order=order_again, location=by_id[snap.location_id],
                         address=Address(**body.address.model_dump()) if body.address else order_again.delivery.address)
            created = True
    if created:
        order: OrderSnapshot = found["order"]
        inp = ReturnInput(
            return_id=return_id, order_id=order_id, method=body.method, location=found["location"], lines=snap.lines,
            customer=order.customer, address=found["address"], md_order=order.payment.md_order,
            currency=order.totals.currency, created_at=now, receipt_days=settings.return_receipt_days,
            inspection_reminder_hours=settings.return_inspection_reminder_hours,
            delivery_policy=settings.return_delivery_refund, delivery=order.delivery,
            exchange=ExchangeRequest(
                pos_id=body.exchange.pos_id, sku=body.exchange.sku, name=replacement.name,
                qty=next(l.qty for l in snap.lines if l.pos_id == body.exchange.pos_id), unit_price=replacement.price,
            ) if body.exchange is not None and replacement is not None else None,
        )
        try:
            await temporal.start_workflow(ReturnWorkflow.run, inp, id=return_workflow_id(return_id),
                                          task_queue=settings.task_queue,
                                          id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            pass
        except RPCError as err:  # free the claimed units: nothing will run this return
            await repo.save(dataclasses.replace(snap, status=ReturnStatus.abandoned, version=1))
            raise ApiError(503, "temporal_unavailable", f"cannot start the return now: {err.message}") from err
        log.info("return.created", return_id=return_id, order_id=order_id, method=body.method.value)
    return 201, {**return_to_json(snap), "links": {"self": f"/v1/returns/{return_id}",
                                                    "order": f"/v1/orders/{order_id}"}}


@router.post("/v1/returns/{return_id}/retry")
async def retry_return(return_id: str, body: RetryIn, temporal: TemporalDep) -> dict[str, Any]:
    """Resume a return parked on a refused step (the bank refused refund.do): the refund runs once."""
    handle = temporal.get_workflow_handle(return_workflow_id(return_id))
    try:
        await handle.execute_update(ReturnWorkflow.retry, RetryRequest(by=body.by, note=body.note))
    except WorkflowUpdateFailedError as err:
        raise update_refused(err, "nothing_to_retry", return_id=return_id) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, "not_found", f"return_id: no running return {return_id}", field="return_id") from err
        raise
    return {"return_id": return_id, "resumed": True}


@router.get("/v1/returns/{return_id}")
async def get_return(return_id: str, engine: EngineDep) -> dict[str, Any]:
    snap = await ReturnsRepo(engine).get(return_id)
    if snap is None:
        raise ApiError(404, "not_found", f"return_id: no return {return_id}", field="return_id")
    return return_to_json(snap)


async def order_returns(repo: ReturnsRepo, order_id: str) -> dict[str, Any]:
    """What the order's view adds: its returns and what was refunded (money to the card, bonus)."""
    returns = await repo.for_order(order_id)
    done = [r.refund for r in returns if r.refunded and r.refund is not None]
    money = sum(r.total for r in done)
    return {
        "returns": [
            {"return_id": r.return_id, "status": r.status.value, "method": r.method.value,
             "location_id": r.location_id, "created_at": r.created_at.isoformat(),
             "lines": [{"pos_id": l.pos_id, "sku": l.sku, "qty": l.qty, "accepted": l.accepted,
                        "rejected": l.rejected} for l in r.lines],
             "refund": {"money": r.refund.money, "delivery": r.refund.delivery, "total": r.refund.total,
                        "bonus": r.bonus_returned} if r.refunded and r.refund else None,
             "links": {"self": f"/v1/returns/{r.return_id}"}}
            for r in returns
        ],
        "refunded": {"money": money, "bonus": sum(r.bonus_returned for r in returns)},
    }
