"""The storefront catalog Orkestr serves as master system: products, SKUs, prices, availability."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CatalogDep
from api.schemas import Page

router = APIRouter(prefix="/v1/products", tags=["catalog"])


@router.get("", response_model=Page)
async def list_products(
    catalog: CatalogDep,
    q: Annotated[str | None, Query(max_length=100, description="brand, name or product id")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page:
    items, total = await catalog.products(q=q, limit=limit, offset=offset)
    return Page(items=items, total=total, limit=limit, offset=offset)
