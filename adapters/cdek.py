"""CDEK API v2 client (``/work/shared/reference/couriers.md``, "CDEK API v2").

The ``httpx.AsyncClient`` comes with the base URL set (``settings.cdek_url``, e.g.
``http://127.0.0.1:8100/cdek``); paths here are ``/v2/...``. OAuth client-credentials token
fetched on first use, cached until shortly before ``expires_in`` and fetched again once when
a call answers 401 (an expired or revoked token). Money: CDEK speaks roubles with decimals,
we speak kopecks; converted here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import httpx
import structlog

from adapters.errors import ExternalRefusal
from adapters.http import request
from contracts.carrier_payments import CodRegistry, CodRegistryLine, DeliveryOutcome, KeptUnits
from contracts.pickup_points import PickupPoint
from adapters.wire.couriers import (
    Booking,
    BookingRequest,
    CdekOrderKind,
    Quote,
    ShipAddress,
    ShipmentUpdate,
    TrackingEvent,
    cdek_status,
)

log = structlog.get_logger("adapter.cdek")

SYSTEM = "cdek"
#: tariffs by (sender side, recipient side); see the sandbox's table
TARIFF_BY_ENDS: dict[tuple[str, str], int] = {
    ("office", "pickup_point"): 136,
    ("office", "door"): 137,
    ("door", "pickup_point"): 138,
    ("door", "door"): 139,
}
#: delivery_mode → our method
MODE_METHOD: dict[int, Literal["courier", "pickup_point", "post"]] = {1: "courier", 2: "pickup_point", 3: "courier", 4: "pickup_point", 6: "pickup_point", 7: "pickup_point"}
#: error codes meaning "an order with this number already exists" (the sandbox's first)
DUPLICATE_CODES = {"v2_order_number_exists", "v2_entity_already_exists"}
TOKEN_MARGIN_S = 60


def roubles_to_kopecks(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def kopecks_to_roubles(value: int) -> float:
    return float(Decimal(value) / 100)


def parse_cdek_time(value: str) -> datetime:
    """``2024-05-01T12:00:00+0000`` (CDEK) or any ISO 8601 with an offset."""
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return datetime.fromisoformat(value)


def _errors(resp: httpx.Response) -> list[dict[str, str]]:
    try:
        body = resp.json()
    except ValueError:
        return [{"code": f"http_{resp.status_code}", "message": resp.text[:200]}]
    if not isinstance(body, dict):
        return []
    errs = list(body.get("errors") or [])
    for req in body.get("requests") or []:
        errs.extend(req.get("errors") or [])
    if not errs and "error" in body:
        errs.append({"code": body["error"], "message": body.get("error_description", "")})
    return errs


def _refusal(operation: str, resp: httpx.Response) -> ExternalRefusal:
    errs = _errors(resp) or [{"code": f"http_{resp.status_code}", "message": resp.text[:200]}]
    message = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errs)
    return ExternalRefusal(SYSTEM, operation, message, code=errs[0].get("code"))


class CdekClient:
    """:class:`adapters.couriers.Courier` for CDEK."""

    carrier = "cdek"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client_id: str,
        client_secret: str,
        shipment_points: Mapping[str, str] | None = None,
        shipper_name: str = "Orkestr",
        shipper_phone: str = "+74950000000",
    ) -> None:
        """``shipment_points``: our location id → the CDEK office where that location drops
        parcels (then "office-…" tariffs); locations without one get a courier pickup
        ("door-…" tariffs). ``shipper_*``: the merchant's contact on return shipments."""
        self._http = http
        self._client_id = client_id
        self._client_secret = client_secret
        self._shipment_points = dict(shipment_points or {})
        self._shipper_name = shipper_name
        self._shipper_phone = shipper_phone
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()

    # --- auth ---------------------------------------------------------------------------------
    async def _get_token(self, stale: str | None = None) -> str:
        async with self._token_lock:
            if self._token and self._token != stale and time.monotonic() < self._token_expires:
                return self._token
            resp = await request(
                self._http,
                SYSTEM,
                "token",
                "POST",
                "/v2/oauth/token",
                data={"grant_type": "client_credentials", "client_id": self._client_id, "client_secret": self._client_secret},
            )
            if resp.status_code != 200:
                raise _refusal("token", resp)
            body = resp.json()
            self._token = str(body["access_token"])
            ttl = float(body.get("expires_in", 3600))
            self._token_expires = time.monotonic() + max(ttl - TOKEN_MARGIN_S, ttl / 2)
            return self._token

    async def _call(self, operation: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        token = await self._get_token()
        resp = await request(self._http, SYSTEM, operation, method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if resp.status_code == 401:  # expired or revoked: one fresh token, then give up
            log.info("cdek.token_refresh", operation=operation)
            token = await self._get_token(stale=token)
            resp = await request(self._http, SYSTEM, operation, method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
            if resp.status_code == 401:
                raise _refusal(operation, resp)
        return resp

    # --- orders -------------------------------------------------------------------------------
    def order_body(self, req: BookingRequest) -> dict[str, Any]:
        """The ``POST /v2/orders`` body for a booking (public for inspection and tests)."""
        office = self._shipment_points.get(req.from_location_id)
        store_side: dict[str, Any] = (
            {"shipment_point": office}
            if office
            else {"from_location": {"city": req.from_city, "address": f"Orkestr location {req.from_location_id}"}}
        )
        customer_place = {"postal_code": req.to.postcode, "city": req.to.city, "address": req.to.line}
        qty = sum(i.qty for i in req.items) or 1
        item_weight = max(1, req.weight_g // qty)
        items = [
            {
                "name": it.name,
                "ware_key": it.sku,
                # prepaid: nothing to collect; cash on delivery: the unit's price for each one kept
                "payment": {"value": kopecks_to_roubles(it.price) if req.cash_on_delivery else 0},
                "cost": kopecks_to_roubles(it.price),
                "weight": item_weight,
                "amount": it.qty,
            }
            for it in req.items
        ]
        body: dict[str, Any] = {
            "type": 1,
            "number": req.shipment_id,
            # a customer's return to a store is a client return (CDEK's ``is_client_return``)
            "is_client_return": req.is_return,
            "packages": [
                {
                    "number": f"{req.shipment_id}-1",
                    "weight": req.weight_g,
                    "length": 30,
                    "width": 20,
                    "height": 10,
                    "items": items,
                }
            ],
        }
        if not req.is_return:
            sender_end = "office" if office else "door"
            if req.pickup_point:
                body["delivery_point"] = req.pickup_point
                recipient_end = "pickup_point"
            else:
                body["to_location"] = customer_place
                recipient_end = "door"
            body.update(store_side)
            body["recipient"] = {"name": req.recipient.name, "phones": [{"number": req.recipient.phone}]}
        else:
            # customer → store: picked up at the customer's door (or dropped at a pickup point)
            if req.pickup_point:
                body["shipment_point"] = req.pickup_point
                sender_end = "office"
            else:
                body["from_location"] = customer_place
                sender_end = "door"
            if office:
                body["delivery_point"] = office
                recipient_end = "pickup_point"
            else:
                body["to_location"] = {"city": req.from_city, "address": f"Orkestr location {req.from_location_id}"}
                recipient_end = "door"
            body["sender"] = {"name": req.recipient.name, "phones": [{"number": req.recipient.phone}]}
            body["recipient"] = {"name": self._shipper_name, "phones": [{"number": self._shipper_phone}]}
        body["tariff_code"] = int(req.tariff) if req.tariff else TARIFF_BY_ENDS[(sender_end, recipient_end)]
        if req.cash_on_delivery and req.delivery_charge:
            body["delivery_recipient_cost"] = {"value": kopecks_to_roubles(req.delivery_charge)}
        if req.try_on and not req.is_return:
            body["services"] = [{"code": "TRYING_ON"}, {"code": "PART_DELIV"}]
        return body

    async def book(self, req: BookingRequest) -> Booking:
        """Create the order; idempotent by ``req.shipment_id`` (CDEK ``number``): a repeat
        finds the first order by ``im_number`` instead of creating a second."""
        resp = await self._call("create_order", "POST", "/v2/orders", json=self.order_body(req))
        if resp.status_code in (200, 201, 202):
            uuid = str(resp.json()["entity"]["uuid"])
            entity = await self._entity("get_order", f"/v2/orders/{uuid}")
        else:
            errs = _errors(resp)
            if not any(e.get("code") in DUPLICATE_CODES for e in errs):
                raise _refusal("create_order", resp)
            log.info("cdek.order_exists", number=req.shipment_id)
            entity = await self._entity("find_order", "/v2/orders", params={"im_number": req.shipment_id})
        return Booking(carrier=self.carrier, external_id=str(entity["uuid"]), tracking_number=str(entity.get("cdek_number") or ""))

    async def _entity(self, operation: str, url: str, **kwargs: Any) -> dict[str, Any]:
        resp = await self._call(operation, "GET", url, **kwargs)
        if resp.status_code != 200:
            raise _refusal(operation, resp)
        return dict(resp.json()["entity"])

    async def order(self, uuid: str) -> dict[str, Any]:
        """The raw order entity (``GET /v2/orders/{uuid}``)."""
        return await self._entity("get_order", f"/v2/orders/{uuid}")

    async def cancel(self, booking: Booking) -> None:
        """Delete the order; ExternalRefusal once CDEK has the parcel (``v2_entity_invalid``)."""
        resp = await self._call("delete_order", "DELETE", f"/v2/orders/{booking.external_id}")
        if resp.status_code not in (200, 202):
            raise _refusal("delete_order", resp)

    async def track(self, booking: Booking) -> list[TrackingEvent]:
        """Status history, oldest first."""
        entity = await self.order(booking.external_id)
        events = [
            TrackingEvent(code=s["code"], status=cdek_status(s["code"]), at=parse_cdek_time(s["date_time"]), city=s.get("city") or None)
            for s in reversed(entity.get("statuses") or [])  # the wire lists newest first
        ]
        events.sort(key=lambda e: e.at)  # stable: equal times keep the oldest-first order
        return events

    async def quote(self, *, from_city: str, to: ShipAddress, weight_g: int) -> list[Quote]:
        body = {
            "type": 1,
            "from_location": {"city": from_city},
            "to_location": {"city": to.city, "postal_code": to.postcode},
            "packages": [{"weight": weight_g, "length": 30, "width": 20, "height": 10}],
        }
        resp = await self._call("tarifflist", "POST", "/v2/calculator/tarifflist", json=body)
        if resp.status_code != 200:
            raise _refusal("tarifflist", resp)
        return [
            Quote(
                carrier=self.carrier,
                tariff=str(t["tariff_code"]),
                method=MODE_METHOD.get(int(t.get("delivery_mode", 1)), "courier"),
                price=roubles_to_kopecks(t["delivery_sum"]),
                days_min=int(t["period_min"]),
                days_max=int(t["period_max"]),
            )
            for t in resp.json().get("tariff_codes") or []
        ]

    async def pickup_points(self, *, city: str) -> list[dict[str, Any]]:
        """CDEK pickup points in a city (raw ``/v2/deliverypoints`` items)."""
        resp = await self._call("deliverypoints", "GET", "/v2/deliverypoints", params={"city": city})
        if resp.status_code != 200:
            raise _refusal("deliverypoints", resp)
        return list(resp.json())

    async def points(self, *, city: str) -> list[PickupPoint]:
        """CDEK pickup points of a city in the carrier-neutral shape (fitting room =
        ``is_dressing_room``: the customer can try on and keep only some items)."""
        return [
            PickupPoint(
                carrier="cdek", code=str(p["code"]), name=str(p.get("name") or p["code"]), kind=str(p.get("type") or "PVZ"),
                city=str((p.get("location") or {}).get("city") or city), address=str((p.get("location") or {}).get("address") or ""),
                postcode=str((p.get("location") or {}).get("postal_code") or ""),
                lat=float((p.get("location") or {}).get("latitude") or 0), lon=float((p.get("location") or {}).get("longitude") or 0),
                hours=tuple((int(w["day"]), str(w["time"]).replace("/", "-")) for w in p.get("work_time_list") or []),
                try_on=bool(p.get("is_dressing_room")), card_payment=bool(p.get("have_cashless")), cash_payment=bool(p.get("have_cash")),
            )
            for p in await self.pickup_points(city=city)
        ]

    # --- after delivery: what was kept, what was collected, the COD registry ------------------
    async def delivery_outcome(self, uuid: str) -> DeliveryOutcome:
        """What the recipient took and paid (CDEK API v2 «Информация о заказе»: each item's
        ``delivery_amount`` next to ``amount``, ``delivery_detail{payment_sum, payment_info[{type,
        sum}], date}``, and the return order in ``related_entities`` for refused units)."""
        resp = await self._call("get_order", "GET", f"/v2/orders/{uuid}")
        if resp.status_code != 200:
            raise _refusal("get_order", resp)
        answer = resp.json()
        entity = answer["entity"]
        codes = [s.get("code") for s in entity.get("statuses") or []]
        delivered = "DELIVERED" in codes
        items = []
        for pkg in entity.get("packages") or []:
            for it in pkg.get("items") or []:
                ordered = int(it.get("amount", 0))
                kept = int(it["delivery_amount"]) if "delivery_amount" in it else (ordered if delivered else 0)
                items.append(KeptUnits(ware_key=str(it.get("ware_key")), ordered=ordered, kept=kept))
        detail = entity.get("delivery_detail") or {}
        payments = detail.get("payment_info") or []
        back = next((r.get("uuid") for r in answer.get("related_entities") or [] if str(r.get("type", "")).upper() == "RETURN_ORDER"), None)
        return DeliveryOutcome(
            external_id=uuid,
            delivered=delivered,
            items=tuple(items),
            collected=sum(roubles_to_kopecks(p.get("sum", 0)) for p in payments),
            payment_type=str(payments[0]["type"]) if payments else None,
            delivered_on=detail.get("date"),
            return_order_id=str(back) if back else None,
        )

    async def cod_registries(self, day: date) -> list[CodRegistry]:
        """The COD registries of ``day`` (``GET /v2/registries?date=``): what CDEK collected on
        delivery and transfers to us, per order, less its fee."""
        resp = await self._call("registries", "GET", "/v2/registries", params={"date": day.isoformat()})
        if resp.status_code != 200:
            raise _refusal("registries", resp)
        return [
            CodRegistry(
                number=str(r["registry_number"]),
                payment_date=str(r.get("payment_date") or day.isoformat()),
                total=roubles_to_kopecks(r.get("sum", 0)),
                payment_order=str(r.get("payment_order_number") or ""),
                lines=tuple(
                    CodRegistryLine(tracking_number=str(o["cdek_number"]), collected=roubles_to_kopecks(o.get("payment_sum", 0)),
                                    fee=roubles_to_kopecks(o.get("agent_commission_sum", 0)),
                                    transferred=roubles_to_kopecks(o.get("transfer_sum", 0)))
                    for o in r.get("orders") or []
                ),
            )
            for r in resp.json().get("registries") or []
        ]

    # --- webhooks -----------------------------------------------------------------------------
    async def register_webhook(self, url: str) -> str:
        """Subscribe ``url`` to ORDER_STATUS; idempotent by url. Returns the webhook uuid.
        CDEK signs nothing: put a secret in ``url`` and check it on arrival."""
        resp = await self._call("webhook", "POST", "/v2/webhooks", json={"type": "ORDER_STATUS", "url": url})
        if resp.status_code != 200:
            raise _refusal("webhook", resp)
        return str(resp.json()["entity"]["uuid"])

    @staticmethod
    def parse_webhook(payload: Mapping[str, Any]) -> ShipmentUpdate:
        """An ORDER_STATUS webhook body → a carrier-neutral update (ValueError if malformed).

        The body (CDEK API v2, "Вебхуки", event ORDER_STATUS): ``{type, date_time, uuid,
        attributes{is_return, is_reverse, is_client_return, cdek_number, number, code,
        status_code, status_reason_code, status_date_time, city_name, city_code, deleted,
        related_entities[{type, uuid, cdek_number}]?}}``. The order kind decides what a status
        means (:func:`adapters.wire.couriers.cdek_status`): the DELIVERED of a return or reverse order
        is the parcel back with the sender (``returned``), not the customer's delivery. The
        flags default to false when a body leaves them out. ``deleted: true`` withdraws a status
        CDEK set by mistake: :attr:`ShipmentUpdate.deleted`, to be ignored by the receiver.
        """
        if payload.get("type") != "ORDER_STATUS":
            raise ValueError(f"not an ORDER_STATUS webhook: {payload.get('type')!r}")
        try:
            attrs = payload["attributes"]
            code = str(attrs["code"])
            at = parse_cdek_time(str(attrs.get("status_date_time") or payload["date_time"]))
            flags = {k: _flag(attrs, k) for k in ("is_return", "is_reverse", "is_client_return")}
            kind: CdekOrderKind = "reverse" if flags["is_reverse"] else "return" if flags["is_return"] else "client_return" if flags["is_client_return"] else "direct"
            related = tuple(
                str(e["uuid"]) for e in attrs.get("related_entities") or [] if str(e.get("type", "")).lower() in ("direct_order", "client_direct_order")
            )
            return ShipmentUpdate(
                carrier="cdek",
                external_id=str(payload["uuid"]),
                tracking_number=str(attrs["cdek_number"]) if attrs.get("cdek_number") else None,
                shipment_id=str(attrs["number"]) if attrs.get("number") else None,
                is_return=kind != "direct",
                event=TrackingEvent(code=code, status=cdek_status(code, kind=kind), at=at, city=attrs.get("city_name") or None),
                reason_code=str(attrs["status_reason_code"]) if attrs.get("status_reason_code") else None,
                kind=kind,
                deleted=_flag(attrs, "deleted"),
                direct_order=related[0] if related else None,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed ORDER_STATUS webhook: {exc}") from exc


def _flag(attrs: Mapping[str, Any], name: str) -> bool:
    """A webhook boolean: absent → false; anything but a JSON boolean is malformed."""
    value = attrs.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise TypeError(f"attributes.{name} must be a boolean, got {value!r}")
    return value
