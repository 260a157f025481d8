"""Simulated Russian Post: the "otpravka" API under ``/post/1.0`` and poll-only SOAP tracking.

Wire shapes follow ``/work/shared/reference/couriers.md`` ("Russian Post") and
``docs/wire/post.md``, from the public specifications otpravka.pochta.ru/specification and
tracking.pochta.ru/specification. ``tests/contract/test_post_clients.py`` drives it with the PyPI
client ``fs-pochta-api`` (REST, and zeep on the tracking WSDL), unchanged.

* every ``/post/1.0`` call needs ``Authorization: AccessToken {token}`` and
  ``X-User-Authorization: Basic base64(login:password)``; 401 otherwise. Sandbox
  credentials: :data:`DEV_TOKEN`, :data:`DEV_LOGIN`/:data:`DEV_PASSWORD` (the settings' defaults).
* ``PUT /post/1.0/user/backlog`` with an array of orders (``order-num, index-to, region-to,
  place-to, street-to, house-to, surname, given-name, tel-address, mail-type
  POSTAL_PARCEL|ONLINE_PARCEL, mail-category ORDINARY|WITH_DECLARED_VALUE, mass`` (g),
  ``insr-value`` (kopecks, needed WITH_DECLARED_VALUE), optional ``postoffice-code`` (our
  dispatch office's index, default 101000)) → ``{"result-ids": [...], "errors": [{"error-codes":
  [{code, description}], position}]}``; ``description`` names the field. Each accepted order
  gets a 14-digit barcode (dispatch index + month + serial + check digit).
  ``order-num`` is unique among live orders: repeating it answers the error code
  ``DUPLICATE_ORDER_NUM`` (look the first one up with ``GET /post/1.0/backlog/search``).
* ``GET /post/1.0/backlog/{id}`` → the order with ``id`` and ``barcode``;
  ``GET /post/1.0/backlog/search?query=`` → a JSON array of orders whose ``order-num`` or
  ``barcode`` equals the query.
* ``DELETE /post/1.0/backlog`` with a JSON array of ids → ``{"result-ids": [...], "errors":
  [...]}``: only before the parcel is accepted at a post office (error ``ALREADY_ACCEPTED``
  after); deleting a cancelled id again is a no-op success.
* ``POST /post/1.0/tariff {index-from?, index-to, mail-category, mail-type, mass}`` →
  ``{total-rate, total-vat (kopecks), ground-rate, delivery-time{min-days, max-days}}``,
  deterministic; ``total-vat`` is 20 % on top of ``total-rate`` (the price is their sum). Without
  ``index-from`` the sender's profile decides: its first shipping point (:data:`SHIPPING_POINTS`).
  ``mail-type`` :data:`MAIL_TYPES`, ``mail-category`` :data:`MAIL_CATEGORIES`.
* ``GET /post/1.0/user-shipping-points`` → the profile's shipping points;
  ``GET /post/1.0/counterpart/balance`` → ``{balance (kopecks), balance-date,
  work-with-balance}``: each created order is charged its rate with VAT, a deleted one credited.
* Post offices («Поиск ОПС», otpravka.pochta.ru/specification#/services-postoffice,
  -by-address, -nearby; the ``fs-pochta-api`` client's ``Services``): ``GET
  /post/postoffice/1.0/{index}`` → one office (:func:`post_offices` lists the fields),
  ``GET /post/postoffice/1.0/by-address?address=&top=`` → ``{postoffices[index], is-matched}``,
  ``GET /post/postoffice/1.0/nearby?latitude=&longitude=&top=&search-radius=`` → offices with
  ``distance`` (metres), nearest first. Three offices a city of the courier table (its main
  index and the next two; the third a parcel locker). Fault operation: ``postoffice``.
* Errors on ``/post/1.0`` answer ``{code, desc}``, on tracking a SOAP Fault (:func:`wire_error`).
* Sandbox shape of the "easy return" (a customer brings the parcel to any post office):
  ``PUT /post/1.0/returns`` with ``[{order-num, index-from?, surname?, given-name?, mass?,
  original-barcode?}]`` → ``{"result-ids": [id...], "returns": [{id, order-num, barcode,
  return-code}], "errors": [...]}``; ``barcode`` is tracked like any parcel, ``return-code``
  (6 digits) is what the customer shows at the counter. Idempotent by ``order-num``:
  repeating it answers the first return again. ``GET /post/1.0/returns/{id}``.
* Tracking: ``GET /post/tracking/rtm34?wsdl`` serves the service description
  (:func:`tracking_wsdl`, SOAP 1.2, its address this sandbox) so SOAP clients build
  themselves from it; ``POST /post/tracking/rtm34`` takes a SOAP 1.2 ``getOperationHistory`` envelope
  (``Barcode``, ``MessageType`` 0, ``Language`` RUS, ``AuthorizationHeader`` login/password) →
  ``OperationHistoryData`` with ``historyRecord`` items (``OperationParameters{OperType{Id,
  Name}, OperAttr{Id, Name}, OperDate}``, ``AddressParameters{OperationAddress{Index,
  Description}}``). Operation types used: 1 Приём, 8 Обработка, 2 Вручение, 3 Возврат,
  5 Невручение. Unknown barcode: empty history. Bad credentials: a SOAP Fault with HTTP 401
  (the real service answers 500; 401 keeps a wrong password from looking like an outage).

Drive: ``POST /sandbox/post/items/{barcode}/operations {"oper_type", "oper_attr", "index"?}``,
``GET /sandbox/post/items``; faults at ``/sandbox/post/faults``.

Auto mode: after booking (or a return) the parcel is accepted (Приём), processed (Обработка,
several), arrives at the delivery office and is handed over (Вручение), a step per
``auto_delay_s``; it stops as soon as someone adds an operation by hand or cancels.
"""

from __future__ import annotations

import asyncio
import base64
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from xml.sax.saxutils import escape

import structlog
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from sandbox.cdek import City, city_by_postcode, distance_km
from sandbox.common import Background, Faults, SandboxConfig
from sandbox.state import Persisted

log = structlog.get_logger("sandbox.post")

DEV_TOKEN = "dev-post-token"
DEV_LOGIN = "orkestr"
DEV_PASSWORD = "orkestr"
DEFAULT_DISPATCH_INDEX = "101000"  # the first shipping point
DUPLICATE_ORDER_NUM = "DUPLICATE_ORDER_NUM"

#: parcel mail types the sandbox prices ("Вид РПО", otpravka enums ``mail-type``), price factor in %
MAIL_TYPES: dict[str, int] = {
    "POSTAL_PARCEL": 100,
    "ONLINE_PARCEL": 85,
    "ONLINE_COURIER": 130,
    "PARCEL_CLASS_1": 120,
    "EMS": 150,
    "EMS_OPTIMAL": 140,
}
#: "Категория РПО" (otpravka enums ``mail-category``)
MAIL_CATEGORIES = {"SIMPLE", "ORDERED", "ORDINARY", "WITH_DECLARED_VALUE", "WITH_DECLARED_VALUE_AND_CASH_ON_DELIVERY", "COMBINED"}
#: categories that need ``insr-value`` (kopecks)
DECLARED_VALUE_CATEGORIES = {"WITH_DECLARED_VALUE", "WITH_DECLARED_VALUE_AND_CASH_ON_DELIVERY"}
#: the sender's profile: shipping points ("точки сдачи", ``GET /1.0/user-shipping-points``);
#: the first is where ``POST /1.0/tariff`` prices from when ``index-from`` is absent
SHIPPING_POINTS: tuple[tuple[str, str], ...] = (
    ("101000", "г. Москва, ул. Мясницкая, д. 26"),
    ("190000", "г. Санкт-Петербург, пр. Вознесенский, д. 34"),
)
#: the contract's starting balance, kopecks (``GET /1.0/counterpart/balance``)
OPENING_BALANCE = 50_000_000
#: ONLINE_PARCEL ("Посылка онлайн") takes up to this many grams
ONLINE_PARCEL_MAX_G = 5_000
MAX_MASS_G = 20_000

SOAP_NS = "http://www.w3.org/2003/05/soap-envelope"
OH_NS = "http://russianpost.org/operationhistory"
OH_DATA_NS = "http://russianpost.org/operationhistory/data"

OPER_TYPES: dict[int, str] = {1: "Приём", 2: "Вручение", 3: "Возврат", 5: "Невручение", 8: "Обработка"}
OPER_ATTRS: dict[tuple[int, int], str] = {
    (1, 1): "Единичный",
    (2, 1): "Вручение адресату",
    (2, 2): "Вручение отправителю",
    (3, 1): "Истек срок хранения",
    (3, 2): "Заявление отправителя",
    (3, 4): "Отказ адресата",
    (5, 1): "Утрачено",
    (8, 0): "Сортировка",
    (8, 1): "Покинуло место приёма",
    (8, 2): "Прибыло в место вручения",
    (8, 3): "Прибыло в сортировочный центр",
    (8, 4): "Покинуло сортировочный центр",
}
MSK = timezone(timedelta(hours=3))
#: operations auto mode records on a parcel (accepted … handed over)
AUTO_STEPS = 5


def check_digit(digits: str) -> int:
    """Russian Post's check digit for 14-digit domestic barcodes (odd positions × 3)."""
    odd = sum(int(d) for d in digits[0::2])
    even = sum(int(d) for d in digits[1::2])
    return (10 - (odd * 3 + even) % 10) % 10


def post_quote(index_from: str, index_to: str, mail_type: str, mass: int, insr_value: int = 0) -> dict[str, Any]:
    """Deterministic tariff: rate by distance between the two indexes' cities and mass."""
    a, b = city_by_postcode(index_from), city_by_postcode(index_to)
    assert a is not None and b is not None
    km = distance_km(a, b)
    kg = max(1, math.ceil(mass / 1000))
    rate = 18_000 + km * 8 + kg * (3_000 + km // 2)
    rate = rate * MAIL_TYPES[mail_type] // 100
    if a.country != b.country:
        rate += 50_000
    rate += insr_value * 4 // 100  # 4 % of the declared value
    rate = round(rate, -2)
    days = 2 + km // 600 + (3 if a.country != b.country else 0)
    if mail_type.startswith("EMS"):
        days = max(1, days // 2)
    vat = rate * 20 // 100  # VAT on top of the rate
    return {
        "total-rate": rate,
        "total-vat": vat,
        "ground-rate": {"rate": rate, "vat": vat},
        "delivery-time": {"min-days": days, "max-days": days + 2},
    }


@dataclass
class Operation:
    oper_type: int
    oper_attr: int
    index: str
    at: datetime

    def view(self) -> dict[str, Any]:
        city = city_by_postcode(self.index)
        return {
            "oper_type": self.oper_type,
            "oper_type_name": OPER_TYPES.get(self.oper_type, str(self.oper_type)),
            "oper_attr": self.oper_attr,
            "oper_attr_name": OPER_ATTRS.get((self.oper_type, self.oper_attr), ""),
            "index": self.index,
            "place": city.name_ru if city else "",
            "at": self.at.isoformat(),
        }


@dataclass
class Item:
    """A tracked parcel: a backlog order or an easy return."""

    id: int
    kind: str  # "order" | "return"
    order_num: str
    barcode: str
    index_from: str
    index_to: str
    body: dict[str, Any]
    cancelled: bool = False
    return_code: str | None = None
    operations: list[Operation] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        out = dict(self.body)
        out.update({"id": self.id, "barcode": self.barcode, "order-num": self.order_num})
        if self.return_code:
            out["return-code"] = self.return_code
        return out

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "order_num": self.order_num,
            "barcode": self.barcode,
            "index_from": self.index_from,
            "index_to": self.index_to,
            "cancelled": self.cancelled,
            "return_code": self.return_code,
            "operations": [op.view() for op in self.operations],
        }


class OperationDrive(BaseModel):
    oper_type: int
    oper_attr: int
    index: str | None = None


def _error(position: int, code: str, description: str) -> dict[str, Any]:
    return {"error-codes": [{"code": code, "description": description}], "position": position}


def _is_index(v: Any) -> bool:
    return isinstance(v, (str, int)) and not isinstance(v, bool) and len(str(v)) == 6 and str(v).isdigit()


def _validate_backlog(o: Any) -> list[tuple[str, str]]:
    """(code, description naming the field) for one order."""
    if not isinstance(o, dict):
        return [("ILLEGAL_FORMAT", "order must be a JSON object")]
    errs: list[tuple[str, str]] = []
    for f in ("order-num", "region-to", "place-to", "street-to", "house-to", "surname", "given-name"):
        if not str(o.get(f) or "").strip():
            errs.append(("EMPTY_" + f.upper().replace("-", "_"), f"Не заполнено поле {f}"))
    if o.get("index-to") in (None, ""):
        errs.append(("EMPTY_INDEX_TO", "Не заполнено поле index-to"))
    elif not _is_index(o["index-to"]) or city_by_postcode(str(o["index-to"])) is None:
        errs.append(("ILLEGAL_INDEX_TO", f"Некорректное значение поля index-to: {o['index-to']!r}"))
    if "postoffice-code" in o and not _is_index(o["postoffice-code"]):
        errs.append(("ILLEGAL_POSTOFFICE_CODE", f"Некорректное значение поля postoffice-code: {o['postoffice-code']!r}"))
    tel = o.get("tel-address")
    if tel in (None, ""):
        errs.append(("EMPTY_TEL_ADDRESS", "Не заполнено поле tel-address"))
    elif not str(tel).isdigit() or not 10 <= len(str(tel)) <= 15:
        errs.append(("ILLEGAL_TEL_ADDRESS", f"Некорректное значение поля tel-address: {tel!r}"))
    mt, mc = o.get("mail-type"), o.get("mail-category")
    if mt not in MAIL_TYPES:
        errs.append(("ILLEGAL_MAIL_TYPE", f"Некорректное значение поля mail-type: {mt!r}"))
    if mc not in MAIL_CATEGORIES:
        errs.append(("ILLEGAL_MAIL_CATEGORY", f"Некорректное значение поля mail-category: {mc!r}"))
    mass = o.get("mass")
    if not isinstance(mass, int) or isinstance(mass, bool) or not 0 < mass <= MAX_MASS_G:
        errs.append(("ILLEGAL_MASS", f"Некорректное значение поля mass: {mass!r} (граммы, 1..{MAX_MASS_G})"))
    elif mt == "ONLINE_PARCEL" and mass > ONLINE_PARCEL_MAX_G:
        errs.append(("ILLEGAL_MASS", f"Некорректное значение поля mass: ONLINE_PARCEL до {ONLINE_PARCEL_MAX_G} г"))
    insr = o.get("insr-value")
    if mc in DECLARED_VALUE_CATEGORIES and (not isinstance(insr, int) or isinstance(insr, bool) or insr <= 0):
        errs.append(("EMPTY_INSR_VALUE", f"Не заполнено поле insr-value (копейки) для {mc}"))
    elif insr is not None and (not isinstance(insr, int) or isinstance(insr, bool) or insr < 0):
        errs.append(("ILLEGAL_INSR_VALUE", f"Некорректное значение поля insr-value: {insr!r}"))
    return errs


class PostSim(Persisted):
    """Russian Post's state: backlog orders and returns (both tracked by barcode), the id and
    barcode counters and the balance; all kept across restarts (a barcode is never reused)."""

    persisted: ClassVar[dict[str, Any]] = {
        "items": dict[int, Item],
        "next_id": int,
        "next_serial": int,
        "balance": int,
    }

    def __init__(self, config: SandboxConfig, bg: Background) -> None:
        self.config = config
        self.bg = bg
        self.faults = Faults("post")
        self.token = DEV_TOKEN
        self.login = DEV_LOGIN
        self.password = DEV_PASSWORD
        self.items: dict[int, Item] = {}
        self.by_barcode: dict[str, Item] = {}
        self.next_id = 800_000_001
        #: the serial part of the next barcode
        self.next_serial = 1
        self._lock = asyncio.Lock()
        #: the contract's account, kopecks: a created order is charged its rate with VAT, a
        #: deleted one is credited back
        self.balance = OPENING_BALANCE

    def restored(self) -> None:
        self.by_barcode = {i.barcode: i for i in self.items.values()}

    async def start(self) -> None:
        """After a restart, auto mode walks on every parcel it had not handed over yet."""
        if self.config.auto:
            for item in self.items.values():
                if not item.cancelled and len(item.operations) < AUTO_STEPS:
                    self.bg.spawn(self._auto_walk(item))

    # --- auth ---------------------------------------------------------------------------------
    def unauthorized(self, request: Request) -> JSONResponse | None:
        auth = request.headers.get("authorization", "")
        user = request.headers.get("x-user-authorization", "")
        expected_user = "Basic " + base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
        if auth.strip() != f"AccessToken {self.token}":
            desc = "Authorization: AccessToken {token} is missing or wrong"
        elif user.strip() != expected_user:
            desc = "X-User-Authorization: Basic base64(login:password) is missing or wrong"
        else:
            return None
        return JSONResponse({"code": "UNAUTHORIZED", "sub-code": "UNAUTHORIZED", "desc": desc}, 401)

    # --- items --------------------------------------------------------------------------------
    def _barcode(self, index_from: str) -> str:
        month = datetime.now(MSK).month
        serial, self.next_serial = self.next_serial, self.next_serial + 1
        head = f"{index_from}{month:02d}{serial % 100_000:05d}"
        return head + str(check_digit(head))

    def _take_id(self) -> int:
        item_id, self.next_id = self.next_id, self.next_id + 1
        return item_id

    def find(self, order_num: str, kind: str) -> Item | None:
        live = [i for i in self.items.values() if i.order_num == order_num and i.kind == kind and not i.cancelled]
        return live[-1] if live else None

    async def add(self, kind: str, order_num: str, index_from: str, index_to: str, body: dict[str, Any]) -> tuple[Item, bool]:
        """(item, created): an existing live item with this order-num is returned as is."""
        async with self._lock:
            existing = self.find(order_num, kind)
            if existing is not None:
                return existing, False
            item = Item(
                id=self._take_id(),
                kind=kind,
                order_num=order_num,
                barcode=self._barcode(index_from),
                index_from=index_from,
                index_to=index_to,
                body=body,
            )
            if kind == "return":
                item.return_code = f"{item.id % 1_000_000:06d}"
            self.items[item.id] = item
            self.by_barcode[item.barcode] = item
        log.info("post.item_created", kind=kind, id=item.id, order_num=order_num, barcode=item.barcode)
        if self.config.auto:
            self.bg.spawn(self._auto_walk(item))
        return item, True

    def record(self, item: Item, oper_type: int, oper_attr: int, index: str | None = None) -> Operation:
        self.bg.touch("post")
        if index is None:
            index = item.index_to if oper_type in (2, 5) or (oper_type, oper_attr) == (8, 2) else item.index_from
        op = Operation(oper_type, oper_attr, index, datetime.now(MSK))
        item.operations.append(op)
        return op

    async def _auto_walk(self, item: Item) -> None:
        """A step per ``auto_delay_s`` from the parcel's last operation (a restart resumes here)."""
        steps = [(1, 1, item.index_from), (8, 0, item.index_from), (8, 1, item.index_from), (8, 2, item.index_to), (2, 1, item.index_to)]
        for n, (t, a, idx) in enumerate(steps):
            if n < len(item.operations):
                continue
            await asyncio.sleep(self.config.auto_delay_s)
            async with self._lock:
                if item.cancelled or len(item.operations) != n:
                    return
                self.record(item, t, a, idx)

    # --- SOAP ---------------------------------------------------------------------------------
    def history_xml(self, item: Item | None) -> str:
        records = []
        for op in item.operations if item else []:
            assert item is not None
            city = city_by_postcode(op.index)
            records.append(
                "<ns3:historyRecord>"
                "<ns3:AddressParameters>"
                f"<ns3:DestinationAddress><ns3:Index>{escape(item.index_to)}</ns3:Index>"
                f"<ns3:Description>{escape(_place(city_by_postcode(item.index_to), item.index_to))}</ns3:Description>"
                "</ns3:DestinationAddress>"
                f"<ns3:OperationAddress><ns3:Index>{escape(op.index)}</ns3:Index>"
                f"<ns3:Description>{escape(_place(city, op.index))}</ns3:Description></ns3:OperationAddress>"
                "</ns3:AddressParameters>"
                "<ns3:ItemParameters>"
                f"<ns3:Barcode>{escape(item.barcode)}</ns3:Barcode>"
                "</ns3:ItemParameters>"
                "<ns3:OperationParameters>"
                f"<ns3:OperType><ns3:Id>{op.oper_type}</ns3:Id><ns3:Name>{escape(OPER_TYPES.get(op.oper_type, ''))}</ns3:Name></ns3:OperType>"
                f"<ns3:OperAttr><ns3:Id>{op.oper_attr}</ns3:Id>"
                f"<ns3:Name>{escape(OPER_ATTRS.get((op.oper_type, op.oper_attr), ''))}</ns3:Name></ns3:OperAttr>"
                f"<ns3:OperDate>{op.at.isoformat(timespec='milliseconds')}</ns3:OperDate>"
                "</ns3:OperationParameters>"
                "</ns3:historyRecord>"
            )
        return (
            f'<S:Envelope xmlns:S="{SOAP_NS}"><S:Body>'
            f'<ns7:getOperationHistoryResponse xmlns:ns7="{OH_NS}" xmlns:ns3="{OH_DATA_NS}">'
            f"<ns3:OperationHistoryData>{''.join(records)}</ns3:OperationHistoryData>"
            "</ns7:getOperationHistoryResponse></S:Body></S:Envelope>"
        )


def _place(city: City | None, index: str) -> str:
    return f"{city.name_ru} {index}" if city is not None else index


def soap_fault(code: str, text: str, detail: str, status: int) -> Response:
    body = (
        f'<S:Envelope xmlns:S="{SOAP_NS}"><S:Body><S:Fault>'
        f"<S:Code><S:Value>S:{code}</S:Value></S:Code>"
        f'<S:Reason><S:Text xml:lang="ru">{escape(text)}</S:Text></S:Reason>'
        f'<S:Detail><ns3:{detail} xmlns:ns3="{OH_DATA_NS}">{escape(text)}</ns3:{detail}></S:Detail>'
        "</S:Fault></S:Body></S:Envelope>"
    )
    return Response(body, status_code=status, media_type="application/soap+xml; charset=utf-8")


def tracking_wsdl(address: str) -> str:
    """The single-access tracking service description (``rtm34?wsdl``): SOAP 1.2, document
    literal, operation ``getOperationHistory`` with ``OperationHistoryRequest{Barcode,
    MessageType, Language}`` and ``AuthorizationHeader{login, password}`` in the body, answered by
    ``OperationHistoryData{historyRecord*}`` (tracking.pochta.ru/specification). The schema
    covers what the sandbox sends; a SOAP client (zeep) builds itself from it. ``address`` is
    where the service answers (this sandbox)."""
    text = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="{oh}" xmlns:data="{data}"
    name="OperationHistory12" targetNamespace="{oh}">
  <types>
    <xsd:schema targetNamespace="{data}" elementFormDefault="qualified">
      <xsd:complexType name="Named"><xsd:sequence>
        <xsd:element name="Id" type="xsd:int"/><xsd:element name="Name" type="xsd:string" minOccurs="0"/>
      </xsd:sequence></xsd:complexType>
      <xsd:complexType name="Address"><xsd:sequence>
        <xsd:element name="Index" type="xsd:string" minOccurs="0"/>
        <xsd:element name="Description" type="xsd:string" minOccurs="0"/>
      </xsd:sequence></xsd:complexType>
      <xsd:complexType name="OperationHistoryRecord"><xsd:sequence>
        <xsd:element name="AddressParameters" minOccurs="0"><xsd:complexType><xsd:sequence>
          <xsd:element name="DestinationAddress" type="data:Address" minOccurs="0"/>
          <xsd:element name="OperationAddress" type="data:Address" minOccurs="0"/>
        </xsd:sequence></xsd:complexType></xsd:element>
        <xsd:element name="ItemParameters" minOccurs="0"><xsd:complexType><xsd:sequence>
          <xsd:element name="Barcode" type="xsd:string"/>
        </xsd:sequence></xsd:complexType></xsd:element>
        <xsd:element name="OperationParameters"><xsd:complexType><xsd:sequence>
          <xsd:element name="OperType" type="data:Named"/>
          <xsd:element name="OperAttr" type="data:Named" minOccurs="0"/>
          <xsd:element name="OperDate" type="xsd:dateTime"/>
        </xsd:sequence></xsd:complexType></xsd:element>
      </xsd:sequence></xsd:complexType>
      <xsd:element name="OperationHistoryRequest"><xsd:complexType><xsd:sequence>
        <xsd:element name="Barcode" type="xsd:string"/>
        <xsd:element name="MessageType" type="xsd:int"/>
        <xsd:element name="Language" type="xsd:string" minOccurs="0"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="AuthorizationHeader"><xsd:complexType><xsd:sequence>
        <xsd:element name="login" type="xsd:string"/>
        <xsd:element name="password" type="xsd:string"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="OperationHistoryData"><xsd:complexType><xsd:sequence>
        <xsd:element name="historyRecord" type="data:OperationHistoryRecord" minOccurs="0" maxOccurs="unbounded"/>
      </xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
    <xsd:schema targetNamespace="{oh}" elementFormDefault="qualified">
      <xsd:import namespace="{data}"/>
      <xsd:element name="getOperationHistory"><xsd:complexType><xsd:sequence>
        <xsd:element ref="data:OperationHistoryRequest"/>
        <xsd:element ref="data:AuthorizationHeader"/>
      </xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="getOperationHistoryResponse"><xsd:complexType><xsd:sequence>
        <xsd:element ref="data:OperationHistoryData"/>
      </xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </types>
  <message name="getOperationHistoryRequest"><part name="parameters" element="tns:getOperationHistory"/></message>
  <message name="getOperationHistoryResponse"><part name="parameters" element="tns:getOperationHistoryResponse"/></message>
  <portType name="OperationHistory12">
    <operation name="getOperationHistory">
      <input message="tns:getOperationHistoryRequest"/>
      <output message="tns:getOperationHistoryResponse"/>
    </operation>
  </portType>
  <binding name="OperationHistory12PortBinding" type="tns:OperationHistory12">
    <soap12:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
    <operation name="getOperationHistory">
      <soap12:operation soapAction=""/>
      <input><soap12:body use="literal"/></input>
      <output><soap12:body use="literal"/></output>
    </operation>
  </binding>
  <service name="OperationHistory12">
    <port name="OperationHistory12Port" binding="tns:OperationHistory12PortBinding">
      <soap12:address location="{address}"/>
    </port>
  </service>
</definitions>
"""
    return text.replace("{oh}", OH_NS).replace("{data}", OH_DATA_NS).replace("{address}", escape(address, {'"': "&quot;"}))


#: wire paths whose errors answer in the post's shapes (see :func:`sandbox.app._wire_errors`)
WIRE_PREFIXES = ("/post/1.0/", "/post/tracking/", "/post/postoffice/")


def wire_error(path: str, status: int, message: str) -> Response:
    """The otpravka API's ``{code, desc}`` (``NOT_FOUND``, ``BAD_REQUEST``, ``INTERNAL_ERROR``),
    or a SOAP 1.2 Fault on the tracking service."""
    if path.startswith("/post/tracking/"):
        return soap_fault("Receiver" if status >= 500 else "Sender", message, "OperationHistoryFault", status)
    code = "INTERNAL_ERROR" if status >= 500 else "NOT_FOUND" if status == 404 else "BAD_REQUEST"
    return JSONResponse({"code": code, "desc": message}, status_code=status)


def _text(root: ET.Element, local: str) -> str | None:
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == local:
            return (el.text or "").strip()
    return None


# --- post offices («Поиск ОПС», otpravka.pochta.ru/specification#/services-postoffice) --------

#: per office number in a city: (type, opens, closes, Saturday, Sunday); offices are the city's
#: main index and the next two
_OFFICE_KINDS = {0: ("ГОПС", "08:00", "20:00", True, True), 1: ("ГОПС", "09:00", "19:00", True, False),
                 2: ("ПОЧТОМАТ", "00:00", "23:59", True, True)}


def post_offices(city: City) -> list[dict[str, Any]]:
    """The sandbox's post offices of a city in the shape of ``GET /postoffice/1.0/{index}``:
    ``postal-code, type-code (ГОПС | СОПС | ПОЧТОМАТ), address-source, settlement, region,
    latitude, longitude, is-temporary-closed, is-private-category, works-on-saturdays,
    works-on-sundays, working-hours[{weekday-id 1..7, begin-worktime, end-worktime, lunches[]}],
    phones[{phone-number, phone-town-code, phone-type-name}]``. A post office is a pickup point
    with card payment (cash too) and no fitting room."""
    out = []
    for i, (kind, opens, closes, sat, sun) in _OFFICE_KINDS.items():
        index = f"{int(city.postcode) + i:06d}"
        hours = [{"weekday-id": d, "begin-worktime": f"{opens}:00.000", "end-worktime": f"{closes}:00.000", "lunches": []}
                 for d in range(1, 8) if d <= 5 or (d == 6 and sat) or (d == 7 and sun)]
        out.append({
            "postal-code": index,
            "type-code": kind,
            "type-id": 8 if kind == "ГОПС" else 36,
            "address-source": f"{city.name_ru}, ул. Почтовая, д. {i + 1}",
            "settlement": city.name_ru,
            "region": city.region,
            "latitude": round(city.lat + 0.004 * i, 6),
            "longitude": round(city.lon - 0.003 * i, 6),
            "is-temporary-closed": False,
            "is-private-category": False,
            "works-on-saturdays": sat,
            "works-on-sundays": sun,
            "working-hours": hours,
            "phones": [] if kind == "ПОЧТОМАТ" else [{"phone-number": f"{2000000 + i}", "phone-town-code": "495", "phone-type-name": "Телефон"}],
        })
    return out


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    la1, lo1, la2, lo2 = map(math.radians, (lat1, lon1, lat2, lon2))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(h))


def find_office(index: str) -> dict[str, Any] | None:
    city = city_by_postcode(index)
    if city is None:
        return None
    return next((o for o in post_offices(city) if o["postal-code"] == index), None)


def router(sim: PostSim) -> APIRouter:
    r = APIRouter(tags=["post"])

    @r.get("/post/postoffice/1.0/nearby", summary="Post offices nearest to a point")
    async def offices_nearby(request: Request, latitude: float, longitude: float, top: int = 3,
                             search_radius: float | None = Query(None, alias="search-radius")) -> JSONResponse:
        await sim.faults.check("postoffice")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        from sandbox.cdek import CITIES

        found = []
        for city in CITIES:
            for office in post_offices(city):
                km = _km(latitude, longitude, office["latitude"], office["longitude"])
                if search_radius is None or km <= search_radius:
                    found.append({**office, "distance": round(km * 1000)})
        found.sort(key=lambda o: o["distance"])
        return JSONResponse(found[: max(1, min(top, 50))])

    @r.get("/post/postoffice/1.0/by-address", summary="Indexes of the post offices serving an address")
    async def offices_by_address(request: Request, address: str = "", top: int = 3) -> JSONResponse:
        await sim.faults.check("postoffice")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        from sandbox.cdek import find_city

        city = find_city(address.split(",")[0]) if address else None
        if city is None:
            return JSONResponse({"code": "NOT_FOUND", "desc": f"Адрес не распознан: {address!r}"}, 404)
        offices = post_offices(city)[: max(1, top)]
        return JSONResponse({"postoffices": [o["postal-code"] for o in offices], "is-matched": True})

    @r.get("/post/postoffice/1.0/{index}", summary="A post office by its index")
    async def office(index: str, request: Request) -> JSONResponse:
        await sim.faults.check("postoffice")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        found = find_office(index)
        if found is None:
            return JSONResponse({"code": "NOT_FOUND", "desc": f"Отделение {index} не найдено"}, 404)
        return JSONResponse(found)

    async def json_body(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    @r.put("/post/1.0/user/backlog")
    async def backlog(request: Request) -> JSONResponse:
        await sim.faults.check("backlog")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        body = await json_body(request)
        if not isinstance(body, list) or not body:
            return JSONResponse({"errors": [_error(0, "ILLEGAL_FORMAT", "Тело запроса: непустой JSON-массив заказов")]}, 400)
        ids: list[int] = []
        errors: list[dict[str, Any]] = []
        for pos, order in enumerate(body):
            errs = _validate_backlog(order)
            if errs:
                errors.append({"error-codes": [{"code": c, "description": d} for c, d in errs], "position": pos})
                continue
            num = str(order["order-num"]).strip()
            index_from = str(order.get("postoffice-code") or DEFAULT_DISPATCH_INDEX)
            quote = post_quote(index_from, str(order["index-to"]), order["mail-type"], order["mass"], order.get("insr-value") or 0)
            body = {**order, "total-rate-wo-vat": quote["total-rate"], "total-vat": quote["total-vat"]}
            item, created = await sim.add("order", num, index_from, str(order["index-to"]), body)
            if not created:
                errors.append(_error(pos, DUPLICATE_ORDER_NUM, f"Заказ с order-num {num!r} уже существует (id {item.id})"))
                continue
            sim.balance -= quote["total-rate"] + quote["total-vat"]
            ids.append(item.id)
        out: dict[str, Any] = {"result-ids": ids}
        if errors:
            out["errors"] = errors
        return JSONResponse(out)

    @r.get("/post/1.0/backlog/search")
    async def search(request: Request, query: str = "") -> JSONResponse:
        await sim.faults.check("search")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        q = query.strip()
        found = [i.wire() for i in sim.items.values() if i.kind == "order" and not i.cancelled and q in (i.order_num, i.barcode)]
        return JSONResponse(found)

    @r.get("/post/1.0/backlog/{item_id}")
    async def get_backlog(item_id: int, request: Request) -> JSONResponse:
        await sim.faults.check("get_backlog")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        item = sim.items.get(item_id)
        if item is None or item.kind != "order" or item.cancelled:
            return JSONResponse({"code": "NOT_FOUND", "desc": f"Заказ {item_id} не найден"}, 404)
        return JSONResponse(item.wire())

    @r.delete("/post/1.0/backlog")
    async def delete_backlog(request: Request) -> JSONResponse:
        await sim.faults.check("delete")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        body = await json_body(request)
        if not isinstance(body, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in body):
            return JSONResponse({"errors": [_error(0, "ILLEGAL_FORMAT", "Тело запроса: JSON-массив id")]}, 400)
        ids: list[int] = []
        errors: list[dict[str, Any]] = []
        async with sim._lock:
            for pos, item_id in enumerate(body):
                item = sim.items.get(item_id)
                if item is None or item.kind != "order":
                    errors.append(_error(pos, "NOT_FOUND", f"Заказ {item_id} не найден"))
                elif item.operations:
                    errors.append(_error(pos, "ALREADY_ACCEPTED", f"Отправление {item.barcode} уже принято в отделении"))
                else:
                    if not item.cancelled:
                        sim.balance += int(item.body.get("total-rate-wo-vat", 0)) + int(item.body.get("total-vat", 0))
                    item.cancelled = True
                    ids.append(item_id)
        out: dict[str, Any] = {"result-ids": ids}
        if errors:
            out["errors"] = errors
        return JSONResponse(out)

    @r.post("/post/1.0/tariff")
    async def tariff(request: Request) -> JSONResponse:
        await sim.faults.check("tariff")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        body = await json_body(request)
        if not isinstance(body, dict):
            return JSONResponse({"code": "ILLEGAL_FORMAT", "desc": "Тело запроса: JSON-объект"}, 400)
        errs = []
        # no index-from: the sender's profile (its first shipping point), as the real service does
        body.setdefault("index-from", SHIPPING_POINTS[0][0])
        for f in ("index-from", "index-to"):
            if not _is_index(body.get(f)) or city_by_postcode(str(body[f])) is None:
                errs.append(f"Некорректное значение поля {f}: {body.get(f)!r}")
        if body.get("mail-type") not in MAIL_TYPES:
            errs.append(f"Некорректное значение поля mail-type: {body.get('mail-type')!r}")
        if body.get("mail-category", "ORDINARY") not in MAIL_CATEGORIES:
            errs.append(f"Некорректное значение поля mail-category: {body.get('mail-category')!r}")
        mass = body.get("mass")
        if not isinstance(mass, int) or isinstance(mass, bool) or not 0 < mass <= MAX_MASS_G:
            errs.append(f"Некорректное значение поля mass: {mass!r}")
            mass = 0  # refused below
        elif body.get("mail-type") == "ONLINE_PARCEL" and mass > ONLINE_PARCEL_MAX_G:
            errs.append(f"Некорректное значение поля mass: ONLINE_PARCEL до {ONLINE_PARCEL_MAX_G} г")
        insr = body.get("declared-value", body.get("insr-value", 0)) or 0
        if not isinstance(insr, int) or isinstance(insr, bool) or insr < 0:
            errs.append(f"Некорректное значение поля declared-value: {insr!r}")
        if errs:
            return JSONResponse({"code": "ILLEGAL_ARGUMENT", "desc": "; ".join(errs)}, 400)
        return JSONResponse(post_quote(str(body["index-from"]), str(body["index-to"]), body["mail-type"], mass,
                                       int(insr)))

    @r.get("/post/1.0/user-shipping-points")
    async def shipping_points(request: Request) -> JSONResponse:
        await sim.faults.check("settings")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        return JSONResponse(
            [
                {
                    "operator-postcode": index,
                    "ops-address": address,
                    "enabled": True,
                    "courier-call": False,
                    "available-mail-types": sorted(MAIL_TYPES),
                    "available-products": [
                        {"mail-type": mt, "mail-category": mc} for mt in sorted(MAIL_TYPES) for mc in ("ORDINARY", "WITH_DECLARED_VALUE")
                    ],
                }
                for index, address in SHIPPING_POINTS
            ]
        )

    @r.get("/post/1.0/counterpart/balance")
    async def balance(request: Request) -> JSONResponse:
        await sim.faults.check("balance")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        return JSONResponse({"balance": sim.balance, "balance-date": datetime.now(MSK).date().isoformat(), "work-with-balance": True})

    @r.put("/post/1.0/returns")
    async def returns(request: Request) -> JSONResponse:
        await sim.faults.check("returns")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        body = await json_body(request)
        if not isinstance(body, list) or not body:
            return JSONResponse({"errors": [_error(0, "ILLEGAL_FORMAT", "Тело запроса: непустой JSON-массив возвратов")]}, 400)
        ids: list[int] = []
        made: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for pos, ret in enumerate(body):
            if not isinstance(ret, dict) or not str(ret.get("order-num") or "").strip():
                errors.append(_error(pos, "EMPTY_ORDER_NUM", "Не заполнено поле order-num"))
                continue
            index_from = ret.get("index-from")
            if index_from is not None and (not _is_index(index_from) or city_by_postcode(str(index_from)) is None):
                errors.append(_error(pos, "ILLEGAL_INDEX_FROM", f"Некорректное значение поля index-from: {index_from!r}"))
                continue
            # the customer may bring it to any office: the sandbox assumes their own index
            src = str(index_from or DEFAULT_DISPATCH_INDEX)
            dst = str(ret.get("index-to") or DEFAULT_DISPATCH_INDEX)
            item, _created = await sim.add("return", str(ret["order-num"]).strip(), src, dst, dict(ret))
            ids.append(item.id)
            made.append({"id": item.id, "order-num": item.order_num, "barcode": item.barcode, "return-code": item.return_code})
        out: dict[str, Any] = {"result-ids": ids, "returns": made}
        if errors:
            out["errors"] = errors
        return JSONResponse(out)

    @r.get("/post/1.0/returns/{item_id}")
    async def get_return(item_id: int, request: Request) -> JSONResponse:
        await sim.faults.check("returns")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        item = sim.items.get(item_id)
        if item is None or item.kind != "return":
            return JSONResponse({"code": "NOT_FOUND", "desc": f"Возврат {item_id} не найден"}, 404)
        return JSONResponse(item.wire())

    @r.get("/post/tracking/rtm34")
    async def tracking_description(request: Request) -> Response:
        await sim.faults.check("tracking")
        if "wsdl" not in {k.lower() for k in request.query_params}:
            return soap_fault("Sender", "GET serves the service description only: ?wsdl", "OperationHistoryFault", 400)
        address = str(request.url.replace(query="", fragment=""))
        return Response(tracking_wsdl(address), media_type="text/xml; charset=utf-8")

    @r.post("/post/tracking/rtm34")
    async def tracking(request: Request) -> Response:
        await sim.faults.check("tracking")
        try:
            root = ET.fromstring(await request.body())
        except ET.ParseError as exc:
            return soap_fault("Sender", f"Malformed SOAP envelope: {exc}", "OperationHistoryFault", 400)
        if _text(root, "login") != sim.login or _text(root, "password") != sim.password:
            return soap_fault("Sender", "Ошибка авторизации: неверный логин или пароль", "AuthorizationFault", 401)
        barcode = _text(root, "Barcode")
        if not barcode:
            return soap_fault("Sender", "Не указан Barcode", "OperationHistoryFault", 400)
        if _text(root, "MessageType") not in (None, "0"):
            return soap_fault("Sender", "MessageType: the sandbox knows 0 (history)", "OperationHistoryFault", 400)
        item = sim.by_barcode.get(barcode)
        return Response(sim.history_xml(item), media_type="application/soap+xml; charset=utf-8")

    # --- drive ------------------------------------------------------------------------------------
    @r.post("/sandbox/post/items/{barcode}/operations", tags=["sandbox:post"], summary="Act as the post: add an operation")
    async def drive_operation(barcode: str, cmd: OperationDrive) -> dict[str, Any]:
        if cmd.oper_type not in OPER_TYPES:
            raise HTTPException(422, f"unknown oper_type {cmd.oper_type}; known: {OPER_TYPES}")
        if cmd.index is not None and (not _is_index(cmd.index) or city_by_postcode(cmd.index) is None):
            raise HTTPException(422, f"index must be six digits, got {cmd.index!r}")
        async with sim._lock:
            item = sim.by_barcode.get(barcode)
            if item is None:
                raise HTTPException(404, f"no parcel {barcode}")
            if item.cancelled:
                raise HTTPException(409, f"parcel {barcode} was cancelled")
            sim.record(item, cmd.oper_type, cmd.oper_attr, cmd.index)
        return item.view()

    @r.get("/sandbox/post/items", tags=["sandbox:post"], summary="Parcels and their operations")
    async def drive_items() -> dict[str, Any]:
        return {"items": [i.view() for i in sim.items.values()]}

    return r
