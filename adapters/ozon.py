"""Client of the Ozon Seller API for FBS orders and stock (the seller ships from its warehouses).

Wire shape: Ozon Seller API documentation (docs.ozon.ru/api/seller/: «Обработка заказов FBS и
rFBS» — ``/v3/posting/fbs/unfulfilled/list``, ``/v3/posting/fbs/get``, ``/v2/posting/fbs/cancel``,
``/v2/posting/fbs/package-label``; «Сборка заказов FBS» — ``/v6/fbs/posting/product/exemplar/set``,
``/v5/…/exemplar/status``, ``/v4/posting/fbs/ship``; «Цены и остатки» — ``/v2/products/stocks``,
at most 100 items a call, 80 calls a minute, one update of a product at a warehouse per 30 s);
``docs/wire/ozon.md``; the sandbox imitates it in ``sandbox/ozon.py``. Headers ``Client-Id`` and
``Api-Key`` (a seller's API key with the «Заказы FBS» and «Товары» scopes).

Errors: HTTP 429 is :class:`ExternalRateLimited` with ``Retry-After`` when the answer has one
(else :data:`DEFAULT_RETRY_AFTER_S` for the method); any other 4xx is :class:`ExternalRefusal`
with ``code`` = Ozon's ``message`` (e.g. ``POSTING_ALREADY_SHIPPED``); transport errors and 5xx
are :class:`ExternalUnavailable`. No retries here: Temporal retries.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import httpx

from adapters.errors import ExternalRateLimited, ExternalRefusal
from adapters.http import request
from contracts.marketplace import (
    Marketplace,
    MarketplaceLine,
    MarketplaceOrder,
    StockLevel,
    StockPushFailure,
    StockPushResult,
)

SYSTEM = "ozon"
MAX_STOCK_ITEMS = 100
#: when a 429 carries no Retry-After: the stock method's window is a minute, the others' a second
DEFAULT_RETRY_AFTER_S = {"stocks": 60.0}
#: seller cancel reasons (``/v2/posting/fbs/cancel-reason/list``)
REASON_OUT_OF_STOCK = 352
REASON_OTHER = 402


def _rfc3339(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _kopecks(price: Any) -> int:
    return int((Decimal(str(price or "0")) * 100).to_integral_value())


class OzonClient:
    """Async client of the Ozon Seller API (``http.base_url``: ``https://api-seller.ozon.ru`` or
    the sandbox's ``…/ozon``)."""

    def __init__(self, http: httpx.AsyncClient, *, client_id: str, api_key: str) -> None:
        self._http = http
        self._headers = {"Client-Id": client_id, "Api-Key": api_key}

    async def _call(self, operation: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await request(self._http, SYSTEM, operation, "POST", path, json=body, headers=self._headers)
        try:
            data = resp.json()
        except ValueError:
            data = {}
        if resp.status_code == 429:
            retry = resp.headers.get("retry-after")
            raise ExternalRateLimited(
                SYSTEM, operation, str(data.get("message", "rate limited")) if isinstance(data, dict) else "rate limited",
                retry_after_s=float(retry) if retry and retry.replace(".", "", 1).isdigit() else DEFAULT_RETRY_AFTER_S.get(operation, 1.0),
                code="429",
            )
        if resp.status_code >= 400 or not isinstance(data, dict):
            message = data.get("message") if isinstance(data, dict) else None
            raise ExternalRefusal(SYSTEM, operation, str(message or f"HTTP {resp.status_code}: {resp.text[:200]}"),
                                  code=str(message or f"HTTP{resp.status_code}").split(":")[0])
        return data

    # --- postings ----------------------------------------------------------------------------

    async def unfulfilled(self, *, cutoff_from: datetime, cutoff_to: datetime, limit: int = 100, offset: int = 0,
                          warehouse_ids: list[int] | None = None) -> tuple[list[MarketplaceOrder], int]:
        """Postings to assemble or hand over whose ship-by date is in [cutoff_from, cutoff_to];
        one page and the total count (page with ``offset``)."""
        flt: dict[str, Any] = {"cutoff_from": _rfc3339(cutoff_from), "cutoff_to": _rfc3339(cutoff_to)}
        if warehouse_ids:
            flt["warehouse_id"] = warehouse_ids
        body = await self._call("unfulfilled_list", "v3/posting/fbs/unfulfilled/list",
                                {"dir": "ASC", "filter": flt, "limit": limit, "offset": offset, "with": {}})
        result = body.get("result") or {}
        return [self._posting(p) for p in result.get("postings") or []], int(result.get("count", 0))

    async def get(self, posting_number: str) -> MarketplaceOrder:
        body = await self._call("get", "v3/posting/fbs/get", {"posting_number": posting_number, "with": {"product_exemplars": True}})
        return self._posting(body["result"])

    async def set_marking_codes(self, posting_number: str, codes: dict[int, list[str]]) -> None:
        """The Честный ЗНАК code of every marked unit: ``{ozon sku: [code per unit]}``."""
        products = [{"product_id": sku, "exemplars": [{"marks": [{"mark": c, "mark_type": "mandatory_mark"}]} for c in cs]}
                    for sku, cs in codes.items()]
        await self._call("exemplar_set", "v6/fbs/posting/product/exemplar/set",
                         {"posting_number": posting_number, "multi_box_qty": 1, "products": products})

    async def marking_check(self, posting_number: str) -> tuple[bool, list[str]]:
        """Whether the posting may ship, and the codes Ozon's check refused."""
        body = await self._call("exemplar_status", "v5/fbs/posting/product/exemplar/status", {"posting_number": posting_number})
        refused = [m["mark"] for p in body.get("products") or [] for e in p.get("exemplars") or []
                   for m in e.get("marks") or [] if m.get("check_status") == "failed"]
        return body.get("status") == "ship_available", refused

    async def ship(self, posting_number: str, lines: list[tuple[int, int]]) -> list[str]:
        """Pack the posting in one package: ``[(ozon sku, quantity)]``; the posting numbers."""
        body = await self._call("ship", "v4/posting/fbs/ship", {
            "packages": [{"products": [{"product_id": sku, "quantity": qty} for sku, qty in lines]}],
            "posting_number": posting_number, "with": {"additional_data": False}})
        return [str(n) for n in body.get("result") or []]

    async def package_label(self, posting_numbers: list[str]) -> bytes:
        """The labels of packed postings: the PDF's bytes."""
        body = await self._call("package_label", "v2/posting/fbs/package-label", {"posting_number": posting_numbers})
        pdf = base64.b64decode(body.get("file_content") or "")
        if not pdf.startswith(b"%PDF"):
            raise ExternalRefusal(SYSTEM, "package_label", "the label is not a PDF", code="NOT_PDF")
        return pdf

    async def cancel(self, posting_number: str, *, reason_id: int = REASON_OUT_OF_STOCK, message: str = "") -> None:
        body: dict[str, Any] = {"cancel_reason_id": reason_id, "posting_number": posting_number}
        if message:
            body["cancel_reason_message"] = message
        await self._call("cancel", "v2/posting/fbs/cancel", body)

    # --- stock -------------------------------------------------------------------------------

    async def push_stocks(self, levels: list[StockLevel]) -> StockPushResult:
        """Available quantity per offer and warehouse; at most :data:`MAX_STOCK_ITEMS` a call (the
        caller batches). Items Ozon refused (``TOO_MANY_REQUESTS`` for one pushed within 30 s,
        unknown offers) come back in ``failed``; the rest are updated."""
        if not 1 <= len(levels) <= MAX_STOCK_ITEMS:
            raise ValueError(f"1..{MAX_STOCK_ITEMS} stock levels a call")
        body = await self._call("stocks", "v2/products/stocks", {
            "stocks": [{"offer_id": lv.sku, "stock": max(0, lv.quantity), "warehouse_id": lv.warehouse_id} for lv in levels]})
        failed = tuple(
            StockPushFailure(sku=str(r.get("offer_id", "")), warehouse_id=int(r.get("warehouse_id", 0)),
                             code=str((r.get("errors") or [{}])[0].get("code", "")), message=str((r.get("errors") or [{}])[0].get("message", "")))
            for r in body.get("result") or [] if not r.get("updated")
        )
        return StockPushResult(updated=sum(1 for r in body.get("result") or [] if r.get("updated")), failed=failed)

    # --- parsing -------------------------------------------------------------------------------

    @staticmethod
    def _posting(p: dict[str, Any]) -> MarketplaceOrder:
        requiring = set((p.get("requirements") or {}).get("products_requiring_mandatory_mark") or [])
        marks: dict[int, list[str]] = {}
        for prod in (p.get("product_exemplars") or {}).get("products") or []:
            marks[prod.get("sku")] = [e["mandatory_mark"] for e in prod.get("exemplars") or [] if e.get("mandatory_mark")]
        lines = tuple(
            MarketplaceLine(sku=str(x["offer_id"]), quantity=int(x["quantity"]), price=_kopecks(x.get("price")),
                            item_id=int(x["sku"]), marking_required=x["sku"] in requiring,
                            marking_codes=tuple(marks.get(x["sku"]) or x.get("mandatory_mark") or ()))
            for x in p.get("products") or []
        )
        cancellation = p.get("cancellation") or {}
        return MarketplaceOrder(
            marketplace=Marketplace.OZON,
            order_id=str(p["posting_number"]),
            warehouse_id=int((p.get("delivery_method") or {}).get("warehouse_id", 0)),
            status=str(p.get("status", "")),
            lines=lines,
            created_at=str(p.get("in_process_at") or ""),
            ship_by=p.get("shipment_date"),
            cancelled=p.get("status") == "cancelled",
            cancel_reason=str(cancellation.get("cancel_reason") or ""),
        )
