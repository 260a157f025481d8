"""Operational reports read from the order projection.

``GET /v1/reports/late-deliveries[?since=&until=&limit=]``: shipments delivered in the period
that carried a promise (``POST /v1/delivery-options`` → the order), how many of them came after
the last promised day, and those late ones. A shipment's own flag is ``shipments[].late`` in
``GET /v1/orders/{id}``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from adapters.delivery import DeliveryRepo
from api.deps import EngineDep
from api.errors import ApiError

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/late-deliveries")
async def late_deliveries(
    engine: EngineDep,
    since: Annotated[datetime | None, Query(description="delivered at or after (ISO 8601 with offset)")] = None,
    until: Annotated[datetime | None, Query(description="delivered before (ISO 8601 with offset)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.utcoffset() is None:
            raise ApiError(422, "validation_error", f"{name}: give a time zone offset", field=name)
    delivered, late, items = await DeliveryRepo(engine).late_deliveries(since=since, until=until, limit=limit)
    return {"delivered": delivered, "late": late, "on_time": delivered - late,
            "late_share": round(late / delivered, 4) if delivered else 0.0, "items": items}
