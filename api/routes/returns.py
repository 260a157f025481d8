"""Returns: open one for an order (with Idempotency-Key), read it, retry its parked refund.

HTTP in and out only: what may be returned and how a return starts is ``services.returns``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from pydantic import Field, model_validator

from adapters.returns_repo import return_to_json
from api.deps import IdempotencyDep, ReturnServiceDep
from api.idempotency import idempotent
from api.routes.history import RetryIn
from api.schemas import AddressIn, Strict
from contracts.order import Address
from contracts.recovery import RetryRequest
from contracts.returns import ReturnLineRequest, ReturnMethod
from services.returns import NewReturn

router = APIRouter(tags=["returns"])


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
        if self.exchange is not None and self.exchange.pos_id not in {line.pos_id for line in self.lines}:
            raise ValueError("exchange.pos_id must be one of the returned lines")
        return self

    def request(self) -> NewReturn:
        return NewReturn(
            lines=[ReturnLineRequest(pos_id=x.pos_id, qty=x.qty, reason=x.reason) for x in self.lines],
            method=self.method, store_id=self.store_id,
            address=Address(**self.address.model_dump()) if self.address else None,
            exchange_pos_id=self.exchange.pos_id if self.exchange else None,
            exchange_sku=self.exchange.sku if self.exchange else None)


@router.post("/v1/orders/{order_id}/returns", status_code=201,
             responses={404: {"description": "no such order"},
                        409: {"description": "not delivered, window closed, too many units, or the key is in flight"},
                        422: {"description": "invalid input; the message names the field"}})
async def create_return(
    order_id: str, body: ReturnIn, returns: ReturnServiceDep, idem: IdempotencyDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> Any:
    async def run() -> tuple[int, dict[str, Any]]:
        snap = await returns.create(order_id, body.request(), idempotency_key)
        return 201, {**return_to_json(snap), "links": {"self": f"/v1/returns/{snap.return_id}",
                                                        "order": f"/v1/orders/{order_id}"}}

    return await idempotent(idem, key=idempotency_key, scope="returns.create",
                            payload={"order_id": order_id, **body.model_dump(mode="json")}, run=run)


@router.post("/v1/returns/{return_id}/retry")
async def retry_return(return_id: str, body: RetryIn, returns: ReturnServiceDep) -> dict[str, Any]:
    """Resume a return parked on a refused step (the bank refused refund.do): the refund runs once."""
    await returns.retry(return_id, RetryRequest(by=body.by, note=body.note))
    return {"return_id": return_id, "resumed": True}


@router.get("/v1/returns/{return_id}")
async def get_return(return_id: str, returns: ReturnServiceDep) -> dict[str, Any]:
    return return_to_json(await returns.get(return_id))
