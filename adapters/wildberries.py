"""Client of the Wildberries marketplace API for FBS orders, supplies, marking codes and stock.

Wire shape: Wildberries API documentation (dev.wildberries.ru/openapi/orders-fbs: «Сборочные
задания» ``/api/v3/orders/new``, ``/api/v3/orders/status``, ``/api/v3/orders/{orderId}/cancel``;
«Метаданные» ``PUT /api/v3/orders/{orderId}/meta/sgtin``; «Поставки FBS» ``/api/v3/supplies``,
``PATCH /api/marketplace/v3/supplies/{supplyId}/orders``, ``…/deliver``; ``/api/v3/orders/stickers``;
/openapi/work-with-products: ``PUT /api/v3/stocks/{warehouseId}`` by ``chrtId``,
``/content/v2/get/cards/list`` for the sizes' ``chrtID`` and barcodes; «Лимиты запросов»:
``X-Ratelimit-Retry``) and ``docs/wire/wildberries.md``; the sandbox imitates it in
``sandbox/wildberries.py``. The seller's API token (categories «Маркетплейс» and «Контент») goes
in ``Authorization``.

Errors: HTTP 429 is :class:`ExternalRateLimited` with ``X-Ratelimit-Retry`` (or ``Retry-After``)
seconds; any other 4xx is :class:`ExternalRefusal` with WB's ``code`` (``FailedToAddSupplyOrder``,
``IncorrectParameter``…); transport errors and 5xx are :class:`ExternalUnavailable`. No retries
here: Temporal retries.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from adapters.errors import ExternalRateLimited, ExternalRefusal
from adapters.http import request
from contracts.marketplace import Marketplace, MarketplaceLine, MarketplaceOrder, StockLevel, StockPushResult

SYSTEM = "wildberries"
MAX_STOCK_ITEMS = 1000


class WildberriesClient:
    """Async client of the WB marketplace API (``http.base_url``: ``https://marketplace-api.wildberries.ru``
    or the sandbox's ``…/wildberries``; the content API is on its own host in production:
    ``content_http``, by default the same client)."""

    def __init__(self, http: httpx.AsyncClient, *, token: str, content_http: httpx.AsyncClient | None = None) -> None:
        self._http = http
        self._content = content_http or http
        self._headers = {"Authorization": token}

    async def _call(self, operation: str, method: str, path: str, *, http: httpx.AsyncClient | None = None, **kwargs: Any) -> Any:
        resp = await request(http or self._http, SYSTEM, operation, method, path, headers=self._headers, **kwargs)
        if resp.status_code == 429:
            retry = resp.headers.get("x-ratelimit-retry") or resp.headers.get("retry-after") or "1"
            try:
                retry_s = float(retry)
            except ValueError:
                retry_s = 1.0
            raise ExternalRateLimited(SYSTEM, operation, "rate limited", retry_after_s=retry_s, code="429")
        if resp.status_code >= 400:
            try:
                data = resp.json()
            except ValueError:
                data = {}
            data = data if isinstance(data, dict) else {}
            # 401/403 come from WB's gateway, whose "code" is an opaque trace id
            code = f"HTTP{resp.status_code}" if resp.status_code in (401, 403) else str(data.get("code") or f"HTTP{resp.status_code}")
            raise ExternalRefusal(SYSTEM, operation, str(data.get("message") or data.get("detail") or resp.text[:200]), code=code)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    # --- orders --------------------------------------------------------------------------------

    async def new_orders(self) -> list[MarketplaceOrder]:
        body = await self._call("orders_new", "GET", "api/v3/orders/new")
        return [self._order(o) for o in body.get("orders") or []]

    async def statuses(self, order_ids: list[int]) -> dict[int, tuple[str, str]]:
        """``{order id: (supplierStatus, wbStatus)}``."""
        body = await self._call("status", "POST", "api/v3/orders/status", json={"orders": order_ids})
        return {int(o["id"]): (str(o.get("supplierStatus")), str(o.get("wbStatus"))) for o in body.get("orders") or []}

    async def cancel(self, order_id: int) -> None:
        await self._call("cancel", "PATCH", f"api/v3/orders/{order_id}/cancel")

    async def set_marking_code(self, order_id: int, code: str) -> None:
        """The unit's Честный ЗНАК code (GS separators kept)."""
        await self._call("sgtin", "PUT", f"api/v3/orders/{order_id}/meta/sgtin", json={"sgtins": [code]})

    async def marking_codes(self, order_ids: list[int]) -> dict[int, list[str]]:
        body = await self._call("meta", "POST", "api/marketplace/v3/orders/meta", json={"orders": order_ids})
        return {int(o["id"]): list((o.get("meta") or {}).get("sgtin") or []) for o in body.get("orders") or []}

    # --- supplies ------------------------------------------------------------------------------

    async def create_supply(self, name: str) -> str:
        body = await self._call("supply_create", "POST", "api/v3/supplies", json={"name": name})
        return str(body["id"])

    async def add_to_supply(self, supply_id: str, order_ids: list[int]) -> None:
        await self._call("supply_add", "PATCH", f"api/marketplace/v3/supplies/{supply_id}/orders", json={"orders": order_ids})

    async def deliver_supply(self, supply_id: str) -> None:
        await self._call("supply_deliver", "PATCH", f"api/v3/supplies/{supply_id}/deliver")

    async def stickers(self, order_ids: list[int], *, kind: str = "png", width: int = 58, height: int = 40) -> dict[int, bytes]:
        """The stickers of orders on a supply: ``{order id: file bytes}`` (``kind``: png, svg, zplv, zplh)."""
        body = await self._call("stickers", "POST", "api/v3/orders/stickers",
                                params={"type": kind, "width": width, "height": height}, json={"orders": order_ids})
        return {int(s["orderId"]): base64.b64decode(s["file"]) for s in body.get("stickers") or []}

    # --- stock ---------------------------------------------------------------------------------

    async def size_ids(self, *, limit: int = 100) -> dict[str, int]:
        """``{barcode: chrtID}`` of the seller's cards (the stock push addresses sizes by chrtId)."""
        found: dict[str, int] = {}
        cursor: dict[str, Any] = {"limit": limit}
        while True:
            body = await self._call("cards", "POST", "content/v2/get/cards/list", http=self._content,
                                    json={"settings": {"cursor": cursor, "filter": {"withPhoto": -1}}})
            cards = body.get("cards") or []
            for card in cards:
                for size in card.get("sizes") or []:
                    for barcode in size.get("skus") or []:
                        found[str(barcode)] = int(size["chrtID"])
            page = body.get("cursor") or {}
            if len(cards) < limit:
                return found
            cursor = {"limit": limit, "updatedAt": page.get("updatedAt"), "nmID": page.get("nmID")}

    async def push_stocks(self, warehouse_id: int, levels: list[StockLevel]) -> StockPushResult:
        """Available quantity of sizes (``item_id`` = chrtId) at a seller warehouse; at most
        :data:`MAX_STOCK_ITEMS` a call. WB refuses the whole call when a size is unknown (409)."""
        if not 1 <= len(levels) <= MAX_STOCK_ITEMS or any(lv.item_id is None for lv in levels):
            raise ValueError(f"1..{MAX_STOCK_ITEMS} levels, each with its chrtId (item_id)")
        await self._call("stocks_put", "PUT", f"api/v3/stocks/{warehouse_id}",
                         json={"stocks": [{"chrtId": lv.item_id, "amount": max(0, lv.quantity)} for lv in levels]})
        return StockPushResult(updated=len(levels))

    # --- parsing -------------------------------------------------------------------------------

    @staticmethod
    def _order(o: dict[str, Any]) -> MarketplaceOrder:
        line = MarketplaceLine(sku=str(o["article"]), quantity=1, price=int(o.get("salePrice") or o.get("price") or 0),
                               item_id=int(o["chrtId"]), marking_required="sgtin" in (o.get("requiredMeta") or []))
        return MarketplaceOrder(
            marketplace=Marketplace.WILDBERRIES,
            order_id=str(o["id"]),
            warehouse_id=int(o.get("warehouseId") or 0),
            status="new",
            lines=(line,),
            created_at=str(o.get("createdAt") or ""),
        )
