"""ERP (1C-like) client over 1C's standard OData interface.

Wire shape: ``shared/reference/erp-pos.md`` — ``/odata/standard.odata/<Entity>?$format=json``
answering ``{"value": [...]}`` (``$top``/``$skip`` paging, ``$inlinecount=allpages`` for the
total in ``odata.count``), HTTP Basic auth, amounts as decimal roubles/tenge. This client
converts amounts to integer minor units at the boundary.

The base URL of the ``httpx.AsyncClient`` is the ERP root (``.../erp``); timeouts come
from the client; no retries here (Temporal retries). Documents are idempotent by
``Number``: posting the same number again returns the first document and changes nothing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from adapters.errors import ExternalRefusal
from adapters.http import request
from adapters.wire.erp import (
    ErpLocation,
    ErpOrderDoc,
    ErpPrice,
    ErpProduct,
    ErpSku,
    PricePage,
    ProductPage,
    StockDelta,
    StockPage,
    StockRow,
)

SYSTEM = "erp"
ODATA = "/odata/standard.odata"


def to_minor(value: Any) -> int:
    """1C's decimal amount (``2990`` or ``2990.5``) to minor units, exactly."""
    try:
        return int((Decimal(str(value)) * 100).to_integral_value())
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"not an amount: {value!r}") from exc


def to_decimal(minor: int) -> float:
    """Minor units to the decimal number 1C expects (``299000`` → ``2990.0``)."""
    return float(Decimal(minor) / 100)


class ErpClient:
    def __init__(self, http: httpx.AsyncClient, *, user: str, password: str) -> None:
        self._http = http
        self._auth = httpx.BasicAuth(user, password)

    # --- plumbing -------------------------------------------------------------------------------

    async def _call(self, operation: str, method: str, entity: str, **kwargs: Any) -> Any:
        resp = await request(self._http, SYSTEM, operation, method, f"{ODATA}/{entity}", auth=self._auth, **kwargs)
        if resp.status_code >= 400:
            raise ExternalRefusal(SYSTEM, operation, _error_text(resp), code=str(resp.status_code))
        body: dict[str, Any] = resp.json()
        return body

    async def _get(self, operation: str, entity: str, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = await self._call(operation, "GET", entity, params={"$format": "json", **params})
        return body

    async def _page(self, operation: str, entity: str, skip: int, top: int) -> tuple[list[dict[str, Any]], int, dict[str, Any]]:
        body = await self._get(operation, entity, **{"$skip": skip, "$top": top, "$inlinecount": "allpages"})
        return body["value"], int(body.get("odata.count", len(body["value"]))), body

    # --- catalogue -----------------------------------------------------------------------------

    async def list_locations(self) -> list[ErpLocation]:
        """Every warehouse and store (``Catalog_Warehouses``), deleted ones left out."""
        body = await self._get("list_locations", "Catalog_Warehouses")
        return [
            ErpLocation(
                id=w["Code"],
                name=w["Description"],
                kind=str(w["Kind"]).lower(),
                city=w["City"],
                region=w["Region"],
                lat=float(w["Latitude"]),
                lon=float(w["Longitude"]),
                ship_from_store=bool(w["ShipFromStore"]),
                pickup=bool(w["Pickup"]),
                opens_at=w["OpensAt"],
                closes_at=w["ClosesAt"],
                daily_capacity=int(w["DailyCapacity"]),
                safety_stock=int(w["SafetyStock"]),
                pickup_window_days=int(w["PickupWindowDays"]),
                currency=w.get("Currency", "RUB"),
                country=w.get("Country", "RU"),
                utc_offset=int(w.get("UtcOffset", 3)),
            )
            for w in body["value"]
            if not w.get("DeletionMark")
        ]

    async def products_page(self, *, skip: int, top: int) -> ProductPage:
        rows, total, _ = await self._page("products_page", "Catalog_Nomenclature", skip, top)
        items = tuple(
            ErpProduct(
                id=p["Code"],
                name=p["Description"],
                brand=p["Brand"],
                category=p["Category"],
                skus=tuple(ErpSku(c["Sku"], c["Barcode"], c["Size"], c["Color"]) for c in p["Characteristics"]),
                marked=bool(p.get("Marked", False)),
            )
            for p in rows
        )
        return ProductPage(items=items, total=total)

    async def prices_page(self, *, skip: int, top: int) -> PricePage:
        rows, total, _ = await self._page("prices_page", "InformationRegister_Prices", skip, top)
        items = tuple(ErpPrice(r["Sku"], r["PriceType"], to_minor(r["Price"]), r["Currency"]) for r in rows)
        return PricePage(items=items, total=total)

    # --- stock ---------------------------------------------------------------------------------------

    async def stock_page(self, *, skip: int, top: int) -> StockPage:
        """A page of quantities on hand; pairs absent from the whole snapshot have 0."""
        rows, total, body = await self._page("stock_page", "AccumulationRegister_StockBalance", skip, top)
        items = tuple(StockRow(r["Sku"], r["Warehouse"], int(r["Quantity"])) for r in rows)
        return StockPage(items=items, version=int(body["Version"]), total=total)

    async def stock_changes(self, *, since_version: int, top: int) -> StockDelta:
        """Stock changes after ``since_version`` as absolute quantities, oldest first.

        A returned version *lower* than ``since_version`` means the ERP's movement history
        restarted: do a full snapshot.
        """
        body = await self._get(
            "stock_changes",
            "AccumulationRegister_StockMovements",
            **{"$filter": f"Version gt {since_version}", "$top": top},
        )
        items = tuple(StockRow(r["Sku"], r["Warehouse"], int(r["Quantity"])) for r in body["value"])
        return StockDelta(items=items, version=int(body["Version"]))

    # --- documents ------------------------------------------------------------------------------------

    async def export_order(self, doc: ErpOrderDoc) -> None:
        """Post ``Document_CustomerOrder``; idempotent by ``doc.number``."""
        customer: dict[str, Any] = {"Name": doc.customer_name, "Phone": doc.customer_phone}
        if doc.customer_email:
            customer["Email"] = doc.customer_email
        await self._call(
            "export_order",
            "POST",
            "Document_CustomerOrder",
            params={"$format": "json"},
            json={
                "Number": doc.number,
                "Date": doc.date.isoformat(),
                "Currency": doc.currency,
                "Amount": to_decimal(doc.amount),
                "Customer": customer,
                "Channel": doc.channel,
                "Warehouse": doc.location_id,
                "Comment": doc.comment,
                "Items": [
                    {"Sku": i.sku, "Quantity": i.quantity, "Price": to_decimal(i.price), "Amount": to_decimal(i.amount)}
                    for i in doc.items
                ],
            },
        )

    async def update_order(self, doc: ErpOrderDoc) -> None:
        """The order's lines or amount changed after export (an operator's edit, a substitution):
        find ``Document_CustomerOrder`` by number and ``PATCH`` it by its ``Ref_Key`` (items
        replaced whole, so a repeat changes nothing); not exported yet → export it now."""
        found = await self._get("find_order", "Document_CustomerOrder", **{"$filter": f"Number eq '{doc.number}'"})
        if not found["value"]:
            await self.export_order(doc)
            return
        ref = found["value"][0]["Ref_Key"]
        await self._call("update_order", "PATCH", f"Document_CustomerOrder(guid'{ref}')", params={"$format": "json"},
                         json={"Amount": to_decimal(doc.amount), "Comment": doc.comment, "Items": [
                             {"Sku": i.sku, "Quantity": i.quantity, "Price": to_decimal(i.price),
                              "Amount": to_decimal(i.amount)} for i in doc.items]})

    async def post_sale(self, *, number: str, location_id: str, items: list[tuple[str, int]]) -> None:
        """Goods left ``location_id`` (``Document_Sale``): the ERP decrements its stock.
        Idempotent by ``number``."""
        await self._post_movement_doc("post_sale", "Document_Sale", number, location_id, items)

    async def post_return(self, *, number: str, location_id: str, items: list[tuple[str, int]]) -> None:
        """Goods came back to ``location_id`` (``Document_Return``): the ERP increments its
        stock. Idempotent by ``number``."""
        await self._post_movement_doc("post_return", "Document_Return", number, location_id, items)

    async def _post_movement_doc(
        self, operation: str, entity: str, number: str, location_id: str, items: list[tuple[str, int]]
    ) -> None:
        await self._call(
            operation,
            "POST",
            entity,
            params={"$format": "json"},
            json={
                "Number": number,
                "Warehouse": location_id,
                "Items": [{"Sku": sku, "Quantity": qty} for sku, qty in items],
            },
        )


def _error_text(resp: httpx.Response) -> str:
    try:
        err = resp.json()["odata.error"]
        return str(err["message"]["value"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {resp.status_code}: {resp.text[:200]}"
