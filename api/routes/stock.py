"""Network stock for the storefront: available per location and in total, and what to show.

``GET /v1/stock?sku=A&sku=B[&region=RU-MOW][&location=MSK-001&location=...]`` reads the ledger
(``available = on_hand - reserved - safety stock``, never below zero) and answers, per SKU in
the order asked, the locations that have it, the total, and a sentence such as
"в наличии в 3 магазинах Москвы" (``domain.availability``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import LedgerDep
from api.errors import ApiError
from domain.availability import summarize

router = APIRouter(prefix="/v1/stock", tags=["stock"])

MAX_SKUS = 100
REGION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
SKU = re.compile(r"^[A-Za-z0-9#._-]{1,64}$")
LOCATION = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


@router.get("", responses={422: {"description": "invalid query; the message names the parameter"}})
async def get_stock(
    ledger: LedgerDep,
    sku: Annotated[list[str] | None, Query(description=f"repeat for several SKUs (1 to {MAX_SKUS})")] = None,
    region: Annotated[str | None, Query(description="only locations in this ISO 3166-2 region, e.g. RU-MOW")] = None,
    location: Annotated[list[str] | None, Query(description="only these locations (repeatable)")] = None,
) -> dict[str, Any]:
    skus = list(dict.fromkeys(s.strip() for s in (sku or [])))  # de-duplicated, order kept
    if not skus:
        raise ApiError(422, "validation_error", "sku: give at least one sku (?sku=A&sku=B)", field="sku")
    if len(skus) > MAX_SKUS:
        raise ApiError(422, "validation_error", f"sku: at most {MAX_SKUS} SKUs per request, got {len(skus)}",
                       field="sku")
    for i, s in enumerate(skus):
        if not SKU.match(s):
            raise ApiError(422, "validation_error", f"sku[{i}]: {s!r} is not a SKU", field=f"sku[{i}]")
    if region is not None and not REGION.match(region):
        raise ApiError(422, "validation_error", f"region: {region!r} is not an ISO 3166-2 code like RU-MOW",
                       field="region")
    for i, loc in enumerate(location or []):
        if not LOCATION.match(loc):
            raise ApiError(422, "validation_error", f"location[{i}]: {loc!r} is not a location id",
                           field=f"location[{i}]")
    rows = await ledger.availability(skus, location_ids=location or None, region=region)
    locations = {l.id: l for l in await ledger.locations()}
    items = []
    for s in skus:
        a = summarize(s, rows, locations)
        items.append({
            "sku": a.sku, "available": a.available, "stores": a.stores, "cities": list(a.cities),
            "online": a.online, "summary": a.summary,
            "locations": [{"location_id": l.location_id, "name": l.name, "kind": l.kind, "city": l.city,
                           "region": l.region, "available": l.available, "pickup": l.pickup} for l in a.locations],
        })
    return {"region": region, "locations": location or None, "items": items}
