"""Russian Post client: the "otpravka" API plus SOAP tracking
(``/work/shared/reference/couriers.md``, "Russian Post").

The ``httpx.AsyncClient`` comes with the base URL set (``settings.post_url``, e.g.
``http://127.0.0.1:8100/post``); otpravka paths are ``/1.0/...``; tracking is
``tracking_url`` (default ``/tracking/rtm34`` under the same base; in production pass the
tracking service's absolute URL). Tracking is poll-only: there are no webhooks.
Money: otpravka speaks kopecks already.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

import httpx
import structlog

from adapters.errors import ExternalRefusal
from adapters.http import request
from adapters.wire.couriers import (
    Booking,
    BookingRequest,
    Quote,
    ShipAddress,
    TrackingEvent,
    post_status,
)
from contracts.pickup_points import PickupPoint

log = structlog.get_logger("adapter.post")

SYSTEM = "post"
DUPLICATE_CODE = "DUPLICATE_ORDER_NUM"
ONLINE_PARCEL_MAX_G = 5_000
RETURN_PREFIX = "return:"

#: our dispatch post office (index) by city, for the demo cities (English or Russian name)
DEMO_DISPATCH_OFFICES: dict[str, str] = {
    "moscow": "101000", "москва": "101000", "podolsk": "142100", "подольск": "142100",
    "sochi": "354000", "сочи": "354000",
    "saint petersburg": "190000", "санкт-петербург": "190000",
    "kazan": "420000", "казань": "420000",
    "yekaterinburg": "620000", "екатеринбург": "620000",
    "novosibirsk": "630000", "новосибирск": "630000",
    "nizhny novgorod": "603000", "нижний новгород": "603000",
    "samara": "443000", "самара": "443000",
    "rostov-on-don": "344000", "ростов-на-дону": "344000",
    "krasnodar": "350000", "краснодар": "350000",
    "ufa": "450000", "уфа": "450000",
    "perm": "614000", "пермь": "614000",
    "voronezh": "394000", "воронеж": "394000",
    "volgograd": "400000", "волгоград": "400000",
    "chelyabinsk": "454000", "челябинск": "454000",
    "omsk": "644000", "омск": "644000",
    "krasnoyarsk": "660000", "красноярск": "660000",
    "tyumen": "625000", "тюмень": "625000",
    "irkutsk": "664000", "иркутск": "664000",
    "khabarovsk": "680000", "хабаровск": "680000",
    "vladivostok": "690000", "владивосток": "690000",
    "kaliningrad": "236000", "калининград": "236000",
    "almaty": "050000", "алматы": "050000",
    "astana": "010000", "астана": "010000",
    "shymkent": "160000", "шымкент": "160000",
    "karaganda": "100000", "караганда": "100000",
}  # fmt: skip

SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
OH_NS = "http://russianpost.org/operationhistory"
OH_DATA_NS = "http://russianpost.org/operationhistory/data"


def split_address(line: str) -> tuple[str, str, str]:
    """A one-line address into otpravka's ``street-to``, ``house-to``, ``room-to``:
    "ул. Тверская, д. 7, кв. 3" → ("ул. Тверская", "7", "3"); "Тверская 7" → ("Тверская", "7", "")."""
    parts = [p.strip() for p in line.split(",") if p.strip()]
    house_re = re.compile(r"^(?:д\.?|дом)\s*(\S.*)$", re.IGNORECASE)
    room_re = re.compile(r"^(?:кв|квартира|оф|офис|пом)\.?\s*(\S.*)$", re.IGNORECASE)
    for i in range(1, len(parts)):
        m = house_re.match(parts[i])
        if m or re.match(r"^\d", parts[i]):
            house = [m.group(1) if m else parts[i]]
            room = ""
            for rest in parts[i + 1 :]:
                rm = room_re.match(rest)
                if rm and not room:
                    room = rm.group(1).strip()
                else:
                    house.append(rest)
            return ", ".join(parts[:i]), ", ".join(h.strip() for h in house), room
    m = re.match(r"^(.*?)[\s,]+(?:д\.?\s*)?(\d+\S*)$", line.strip())
    if m:
        return m.group(1).strip(), m.group(2), ""
    return line.strip(), "", ""


def split_name(name: str) -> tuple[str, str]:
    """"Иванова Анна" → (surname "Иванова", given name "Анна")."""
    parts = name.split()
    if not parts:
        return "", ""
    return parts[0], " ".join(parts[1:]) or parts[0]


def _refusal(operation: str, resp: httpx.Response, body: Any = None) -> ExternalRefusal:
    if not body:
        try:
            body = resp.json()
        except ValueError:
            body = {"code": f"http_{resp.status_code}", "desc": resp.text[:200]}
    errs: list[tuple[str, str]] = []
    if isinstance(body, dict):
        for e in body.get("errors") or []:
            for c in e.get("error-codes") or []:
                errs.append((str(c.get("code")), str(c.get("description", ""))))
        if not errs and ("code" in body or "desc" in body):
            errs.append((str(body.get("code", f"http_{resp.status_code}")), str(body.get("desc", ""))))
    if not errs:
        errs.append((f"http_{resp.status_code}", resp.text[:200]))
    return ExternalRefusal(SYSTEM, operation, "; ".join(f"{c}: {d}" for c, d in errs), code=errs[0][0])


def _json_object(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, *path: str) -> ET.Element | None:
    cur: ET.Element | None = el
    for name in path:
        if cur is None:
            return None
        cur = next((c for c in cur if _local(c.tag) == name), None)
    return cur


def _child_text(el: ET.Element, *path: str) -> str | None:
    found = _child(el, *path)
    return (found.text or "").strip() if found is not None else None


class RussianPostClient:
    """:class:`adapters.couriers.Courier` for Russian Post."""

    carrier = "post"

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token: str,
        login: str,
        password: str,
        tracking_url: str = "/tracking/rtm34",
        dispatch_offices: Mapping[str, str] | None = None,
        default_index_from: str = "101000",
    ) -> None:
        """``dispatch_offices``: city (any case) → index of the post office we ship from there
        (default: the demo cities' main offices); other cities use ``default_index_from``."""
        self._http = http
        self._login = login
        self._password = password
        self._tracking_url = tracking_url
        self._offices = {k.lower(): v for k, v in (dispatch_offices or DEMO_DISPATCH_OFFICES).items()}
        self._default_index_from = default_index_from
        basic = base64.b64encode(f"{login}:{password}".encode()).decode()
        self._headers = {
            "Authorization": f"AccessToken {token}",
            "X-User-Authorization": f"Basic {basic}",
            "Accept": "application/json;charset=UTF-8",
        }

    def dispatch_index(self, city: str) -> str:
        return self._offices.get(city.strip().lower(), self._default_index_from)

    async def _call(self, operation: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        resp = await request(self._http, SYSTEM, operation, method, url, headers=self._headers, **kwargs)
        if resp.status_code == 401:
            raise _refusal(operation, resp)
        return resp

    # --- booking ------------------------------------------------------------------------------
    def backlog_order(self, req: BookingRequest) -> dict[str, Any]:
        """One order for ``PUT /1.0/user/backlog`` (public for inspection and tests)."""
        street, house, room = split_address(req.to.line)
        surname, given = split_name(req.recipient.name)
        phone = re.sub(r"\D", "", req.recipient.phone)
        mail_type = req.tariff or "POSTAL_PARCEL"
        order: dict[str, Any] = {
            "order-num": req.shipment_id,
            "postoffice-code": self.dispatch_index(req.from_city),
            "address-type-to": "DEFAULT",
            "index-to": req.to.postcode,
            "region-to": req.to.region,
            "place-to": req.to.city,
            "street-to": street,
            "house-to": house,
            "room-to": room or None,
            "surname": surname,
            "given-name": given,
            "recipient-name": req.recipient.name,
            "tel-address": int(phone) if phone else None,
            "mail-type": mail_type,
            "mail-category": "WITH_DECLARED_VALUE" if req.declared_value > 0 else "ORDINARY",
            "mass": req.weight_g,
        }
        if req.declared_value > 0:
            order["insr-value"] = req.declared_value
        return {k: v for k, v in order.items() if v is not None}

    async def book(self, req: BookingRequest) -> Booking:
        """Put the order in the backlog; idempotent by ``req.shipment_id`` (``order-num``): an
        existing order found by search is returned instead of creating a second."""
        if req.is_return:
            return await self.book_return(req)
        found = await self._find(req.shipment_id)
        if found is not None:
            return found
        resp = await self._call("backlog", "PUT", "/1.0/user/backlog", json=[self.backlog_order(req)])
        body = _json_object(resp)
        ids = body.get("result-ids") or []
        if resp.status_code == 200 and ids:
            return await self.backlog(int(ids[0]))
        codes = {c.get("code") for e in body.get("errors") or [] for c in e.get("error-codes") or []}
        if DUPLICATE_CODE in codes:  # a concurrent twin got there first
            found = await self._find(req.shipment_id)
            if found is not None:
                return found
        raise _refusal("backlog", resp, body)

    async def _find(self, order_num: str) -> Booking | None:
        resp = await self._call("search", "GET", "/1.0/backlog/search", params={"query": order_num})
        if resp.status_code != 200:
            raise _refusal("search", resp)
        for o in resp.json():
            if str(o.get("order-num")) == order_num:
                log.info("post.order_exists", order_num=order_num, id=o.get("id"))
                return Booking(carrier=self.carrier, external_id=str(o["id"]), tracking_number=str(o.get("barcode") or ""))
        return None

    async def backlog(self, backlog_id: int) -> Booking:
        resp = await self._call("get_backlog", "GET", f"/1.0/backlog/{backlog_id}")
        if resp.status_code != 200:
            raise _refusal("get_backlog", resp)
        o = resp.json()
        return Booking(carrier=self.carrier, external_id=str(o["id"]), tracking_number=str(o.get("barcode") or ""))

    async def book_return(self, req: BookingRequest) -> Booking:
        """An "easy return": the customer (``req.recipient`` at ``req.to``) brings the parcel to
        any post office; it travels to our office in ``req.from_city``. Idempotent by
        ``req.shipment_id``. ``Booking.external_id`` is ``"return:{id}"``; the customer's
        counter code is not part of :class:`Booking` (see :meth:`return_code`)."""
        surname, given = split_name(req.recipient.name)
        phone = re.sub(r"\D", "", req.recipient.phone)
        ret = {
            "order-num": req.shipment_id,
            "index-from": req.to.postcode,
            "index-to": self.dispatch_index(req.from_city),
            "surname": surname,
            "given-name": given,
            "tel-address": int(phone) if phone else None,
            "mass": req.weight_g,
        }
        resp = await self._call("returns", "PUT", "/1.0/returns", json=[ret])
        body = _json_object(resp)
        made = body.get("returns") or []
        if resp.status_code != 200 or not made:
            raise _refusal("returns", resp, body)
        r = made[0]
        return Booking(carrier=self.carrier, external_id=f"{RETURN_PREFIX}{r['id']}", tracking_number=str(r["barcode"]))

    async def return_code(self, booking: Booking) -> str:
        """The code the customer shows at the post office for an easy return."""
        rid = booking.external_id.removeprefix(RETURN_PREFIX)
        resp = await self._call("returns", "GET", f"/1.0/returns/{rid}")
        if resp.status_code != 200:
            raise _refusal("returns", resp)
        return str(resp.json()["return-code"])

    async def cancel(self, booking: Booking) -> None:
        """Remove the order from the backlog; ExternalRefusal (``ALREADY_ACCEPTED``) once a post
        office has accepted the parcel. Easy returns cannot be cancelled (they lapse)."""
        if booking.external_id.startswith(RETURN_PREFIX):
            raise ExternalRefusal(SYSTEM, "delete", "an easy return cannot be cancelled", code="RETURN_NOT_CANCELLABLE")
        bid = int(booking.external_id)
        resp = await self._call("delete", "DELETE", "/1.0/backlog", json=[bid])
        body = _json_object(resp)
        if resp.status_code == 200 and bid in (body.get("result-ids") or []):
            return
        raise _refusal("delete", resp, body)

    # --- tracking -----------------------------------------------------------------------------
    def _envelope(self, barcode: str) -> str:
        return (
            f'<soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:oper="{OH_NS}" xmlns:data="{OH_DATA_NS}">'
            "<soap:Header/><soap:Body><oper:getOperationHistory>"
            "<data:OperationHistoryRequest>"
            f"<data:Barcode>{escape(barcode)}</data:Barcode>"
            "<data:MessageType>0</data:MessageType><data:Language>RUS</data:Language>"
            "</data:OperationHistoryRequest>"
            '<data:AuthorizationHeader soap:mustUnderstand="1">'
            f"<data:login>{escape(self._login)}</data:login><data:password>{escape(self._password)}</data:password>"
            "</data:AuthorizationHeader>"
            "</oper:getOperationHistory></soap:Body></soap:Envelope>"
        )

    async def track(self, booking: Booking) -> list[TrackingEvent]:
        """Operation history by barcode (SOAP ``getOperationHistory``), oldest first."""
        resp = await request(
            self._http,
            SYSTEM,
            "tracking",
            "POST",
            self._tracking_url,
            content=self._envelope(booking.tracking_number).encode(),
            headers={"Content-Type": "application/soap+xml; charset=utf-8"},
        )
        try:
            root = ET.fromstring(resp.content)
        except ET.ParseError as exc:
            raise ExternalRefusal(SYSTEM, "tracking", f"HTTP {resp.status_code}, not XML: {exc}", code="bad_response") from exc
        fault = next((el for el in root.iter() if _local(el.tag) == "Fault"), None)
        if fault is not None or resp.status_code != 200:
            reason = next((el.text for el in root.iter() if _local(el.tag) == "Text"), None) or f"HTTP {resp.status_code}"
            detail = _child(fault, "Detail") if fault is not None else None
            code = _local(detail[0].tag) if detail is not None and len(detail) else f"http_{resp.status_code}"
            raise ExternalRefusal(SYSTEM, "tracking", reason, code=code)
        events = []
        for rec in (el for el in root.iter() if _local(el.tag) == "historyRecord"):
            t = int(_child_text(rec, "OperationParameters", "OperType", "Id") or 0)
            a = int(_child_text(rec, "OperationParameters", "OperAttr", "Id") or 0)
            at = datetime.fromisoformat(_child_text(rec, "OperationParameters", "OperDate") or "")
            place = _child_text(rec, "AddressParameters", "OperationAddress", "Description")
            events.append(TrackingEvent(code=f"{t}.{a}", status=post_status(t, a), at=at, city=place or None))
        events.sort(key=lambda e: e.at)
        return events

    # --- prices -------------------------------------------------------------------------------
    # --- post offices as pickup points («Поиск ОПС») -----------------------------------------
    async def post_offices(self, *, city: str, top: int = 3) -> list[PickupPoint]:
        """The post offices serving ``city`` (``GET /postoffice/1.0/by-address`` then each
        ``GET /postoffice/1.0/{index}``, otpravka.pochta.ru/specification#/services-postoffice),
        as pickup points: the index is the code a booking carries (``index-to``); card and cash
        payment, no fitting room."""
        resp = await self._call("postoffice", "GET", "/postoffice/1.0/by-address", params={"address": city, "top": top})
        if resp.status_code == 404:
            return []
        if resp.status_code != 200:
            raise _refusal("postoffice", resp)
        points = []
        for index in _json_object(resp).get("postoffices") or []:
            one = await self._call("postoffice", "GET", f"/postoffice/1.0/{index}")
            if one.status_code != 200:
                raise _refusal("postoffice", one)
            o = _json_object(one)
            if o.get("is-temporary-closed"):
                continue
            locker = o.get("type-code") == "ПОЧТОМАТ"
            points.append(PickupPoint(
                carrier="post", code=str(o["postal-code"]),
                name=("Почтомат " if locker else "Отделение почты ") + str(o["postal-code"]),
                kind="parcel_locker" if locker else "post_office", city=str(o.get("settlement") or city),
                address=str(o.get("address-source") or ""), postcode=str(o["postal-code"]),
                lat=float(o.get("latitude") or 0), lon=float(o.get("longitude") or 0),
                hours=tuple((int(h["weekday-id"]), f"{str(h['begin-worktime'])[:5]}-{str(h['end-worktime'])[:5]}")
                            for h in o.get("working-hours") or []),
                try_on=False, card_payment=True, cash_payment=not locker,
            ))
        return points

    async def quote(self, *, from_city: str, to: ShipAddress, weight_g: int) -> list[Quote]:
        """POSTAL_PARCEL always, ONLINE_PARCEL up to 5 kg; price = ``total-rate`` + ``total-vat``."""
        mail_types = ["POSTAL_PARCEL"] + (["ONLINE_PARCEL"] if weight_g <= ONLINE_PARCEL_MAX_G else [])
        quotes = []
        for mail_type in mail_types:
            body = {
                "index-from": self.dispatch_index(from_city),
                "index-to": to.postcode,
                "mail-category": "ORDINARY",
                "mail-type": mail_type,
                "mass": weight_g,
            }
            resp = await self._call("tariff", "POST", "/1.0/tariff", json=body)
            if resp.status_code != 200:
                raise _refusal("tariff", resp)
            t = resp.json()
            quotes.append(
                Quote(
                    carrier=self.carrier,
                    tariff=mail_type,
                    method="post",
                    price=int(t["total-rate"]) + int(t.get("total-vat") or 0),
                    days_min=int(t["delivery-time"]["min-days"]),
                    days_max=int(t["delivery-time"]["max-days"]),
                )
            )
        return quotes
