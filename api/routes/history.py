"""Support and developer views of an order: its story from the event histories, and retrying what is on hold.

``GET /v1/orders/{id}/history`` (header ``X-Role: support`` — the default — masks the customer's phone,
name, e-mail and address everywhere in the story; ``X-Role: developer`` sees everything) and
``POST /v1/orders/{id}/retry`` (resume a parked step / reset a failed order workflow).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from adapters.history import NothingToRetry, OrderNotFound, order_story, retry_order
from api.deps import OrdersDep, TemporalDep
from api.errors import ApiError
from adapters.story import story_to_json

router = APIRouter(prefix="/v1/orders", tags=["support"])

Role = Literal["support", "developer"]


@router.get("/{order_id}/history")
async def order_history(order_id: str, temporal: TemporalDep, orders: OrdersDep,
                        x_role: Annotated[Role, Header(alias="X-Role")] = "support") -> dict[str, Any]:
    """The order's story: steps with times, durations, attempts, outside systems' answers and errors;
    operator decisions with who made them; the order's own timeline."""
    snapshot = await orders.get(order_id)
    try:
        story = await order_story(temporal, order_id, snapshot, role=x_role)
    except OrderNotFound as err:
        raise ApiError(404, "not_found", f"order_id: no order {order_id}", field="order_id") from err
    return {**story_to_json(story), "role": x_role}


class RetryIn(BaseModel):
    by: str = Field(min_length=1, max_length=100, description="who decides (kept in the order's history)")
    note: str = Field("", max_length=500)


@router.post("/{order_id}/retry")
async def retry(order_id: str, body: RetryIn, temporal: TemporalDep) -> dict[str, Any]:
    """Run the order's parked step again (on hold after a refusal), or reset a failed order workflow
    to its failed step. Steps are idempotent by key: nothing is charged, reserved or accrued twice."""
    try:
        result = await retry_order(temporal, order_id, by=body.by.strip(), note=body.note)
    except OrderNotFound as err:
        raise ApiError(404, "not_found", f"order_id: no order {order_id}", field="order_id") from err
    except NothingToRetry as err:
        raise ApiError(409, "nothing_to_retry", str(err), order_id=order_id) from err
    return {"order_id": order_id, "action": result.action, "detail": result.detail}
