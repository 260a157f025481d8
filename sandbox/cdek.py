"""Simulated CDEK (API v2), wire base ``/cdek``; drive endpoints under ``/sandbox/courier``.

Wire shapes follow ``/work/shared/reference/couriers.md`` ("CDEK API v2") and ``docs/wire/cdek.md``,
from CDEK's public integration documentation (api-docs.cdek.ru: "Вебхуки", "Список офисов",
"Калькулятор", status directory "Приложение 1") and CDEK's SDK wiki
(github.com/cdek-it/sdk2.0/wiki). ``tests/contract/test_cdek_client.py`` drives it with the
``cdek`` SDK from PyPI, unchanged.

* ``POST /cdek/v2/oauth/token`` (form ``grant_type=client_credentials, client_id,
  client_secret``) → ``{access_token, token_type: "bearer", expires_in: 3600, scope, jti}``.
  Every other wire endpoint wants ``Authorization: Bearer …`` and answers 401
  ``{"error": "invalid_token", ...}`` without it or with an expired token.
* ``POST /cdek/v2/orders`` → 202 ``{entity{uuid}, requests[{request_uuid, type: "CREATE",
  state: "ACCEPTED", date_time, errors: []}]}``. Validation is synchronous here (the real API
  may report INVALID later): 400 with ``state: "INVALID"`` and ``errors[{code, message}]``,
  the message naming the field (``"Field is empty: recipient.name"``). ``number`` is the
  merchant's order number: a second live order with the same number is INVALID with code
  :data:`DUPLICATE_NUMBER` (the sandbox's code; find the first with
  ``GET /cdek/v2/orders?im_number=``). A number may be reused once its order is REMOVED.
  ``is_client_return: true`` marks a customer's return shipment to a store (CDEK's client return).
* ``GET /cdek/v2/orders/{uuid}``, ``GET /cdek/v2/orders?cdek_number=|im_number=`` →
  ``{entity{uuid, number, cdek_number, tariff_code, delivery_mode, is_return, is_reverse,
  is_client_return, statuses[{code, name, date_time, city}], delivery_detail{total_sum}, ...},
  requests[], related_entities[{type, uuid, cdek_number}]?}``; ``statuses`` are newest first,
  ``date_time`` like ``2024-05-01T12:00:00+0000``. Unknown uuid → 404 ``v2_entity_not_found``;
  unknown im_number → 400 ``v2_entity_not_found_im_number``.
* ``DELETE /cdek/v2/orders/{uuid}`` → 202 while the order is ACCEPTED/CREATED (then status
  REMOVED; deleting a REMOVED order again is a no-op 202), else 400 INVALID
  ``v2_entity_invalid``.
* ``POST /cdek/v2/webhooks {type: "ORDER_STATUS", url}`` → ``{entity{uuid}}``, idempotent by
  (type, url); ``GET /cdek/v2/webhooks``; ``GET`` and ``DELETE /cdek/v2/webhooks/{uuid}``. Every
  status change is POSTed to each ORDER_STATUS url (:meth:`CdekSim.webhook_body`): ``{uuid,
  type, date_time, attributes{is_return, is_reverse, is_client_return, cdek_number, number,
  code, status_code, status_reason_code, status_date_time, city_name, city_code, deleted,
  related_entities?}}`` (persisted and retried by :class:`sandbox.state.Outbox`).
* ``POST /cdek/v2/calculator/tarifflist`` → ``{tariff_codes[{tariff_code, tariff_name,
  delivery_mode, delivery_sum (roubles), period_min, period_max, calendar_min, calendar_max}]}``
  and ``POST /cdek/v2/calculator/tariff`` (one ``tariff_code``) → ``{delivery_sum, period_min,
  period_max, weight_calc, total_sum, currency}``, deterministic from the two cities' distance
  (built-in table :data:`CITIES`) and the weight.
* ``GET /cdek/v2/deliverypoints?city=|city_code=|postal_code=`` → three pickup points a city
  (:func:`pickup_points`, with ``uuid``, ``is_dressing_room``, ``work_time_list``...), filtered
  by ``type`` and the boolean flags (:func:`filter_points`).
* Any other path under ``/cdek`` (or a wrong method, or an injected fault) answers CDEK's
  ``{"errors": [{code, message}]}`` (:func:`wire_error`).

Sandbox credentials: :data:`DEV_CLIENTS` (the settings' defaults ``orkestr``/``orkestr``).
City codes in :data:`CITIES` are the sandbox's own, not CDEK's directory.

Drive (a person or a test acting as CDEK):

* ``POST /sandbox/courier/orders/{uuid}/status {"code": "DELIVERED", "city"?,
  "status_reason_code"?}`` records the status and sends the webhooks;
* ``GET /sandbox/courier/orders`` lists orders with their statuses and webhook deliveries;
* ``POST /sandbox/courier/orders/{uuid}/linked {"kind": "return"|"reverse"}`` makes CDEK open its
  own return (a refused parcel goes back) or reverse order for a direct one: same ``number``,
  the other way, ``is_return``/``is_reverse`` set, linked both ways in ``related_entities``;
* ``POST /sandbox/courier/tokens/expire`` expires every issued token (to see a client refresh);
* ``POST /sandbox/courier/orders/{uuid}/deliver-partial {"kept": [{"ware_key"|"sku", "qty"}],
  "payment": "card"|"cash"|"prepaid"}``: try-on at the door or in a pickup point's fitting room
  (CDEK's «Частичная доставка» / «Примерка» services): the order becomes DELIVERED, ``GET
  /v2/orders/{uuid}`` then shows each item's ``delivery_amount`` next to its ``amount`` and
  ``delivery_detail{date, recipient_name, delivery_sum, total_sum, payment_sum, payment_info[{type:
  CASH|CARD, sum}]}`` (what was collected: the kept units' ``payment.value`` plus
  ``delivery_recipient_cost`` when anything was kept); the refused units travel back on a
  return order CDEK opens at once (``is_return``, only the refused items, ``related_entities``
  both ways; its CREATED webhook announces it). A plain DELIVERED of an order with cash on
  delivery records it as collected in cash, every unit kept;
* ``POST /sandbox/courier/registries`` forms the COD registry («реестр наложенных платежей») of
  what was collected and not yet registered, less CDEK's agent fee (:data:`COD_COMMISSION_PERMILLE`);
  read on the wire with ``GET /v2/registries?date=YYYY-MM-DD`` → ``{registries[{registry_number,
  payment_date, sum, payment_order_number, date_created, orders[{cdek_number, payment_sum,
  transfer_sum, total_sum_without_agent, agent_commission_sum}]}]}`` and ``GET
  /v2/payment?date=`` → ``{orders[{order_uuid, cdek_number, number}]}`` (the shapes of CDEK API
  v2 «Получение информации о реестрах НП» / «…о переводе наложенного платежа», as the ``cdek``
  PyPI SDK's ``PaymentApp`` reads them). CDEK sends no webhook for a registry: it is read daily;
* faults: ``/sandbox/cdek/faults`` (``registries`` for the two COD reads).

Auto mode walks a new order CREATED → RECEIVED_AT_SHIPMENT_WAREHOUSE →
TAKEN_BY_TRANSPORTER_FROM_SENDER_CITY → ACCEPTED_IN_RECIPIENT_CITY → TAKEN_BY_COURIER (or
ACCEPTED_AT_PICK_UP_POINT for a pickup-point tariff) → DELIVERED, a step per
``auto_delay_s``; it stops as soon as someone drives the order elsewhere.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import secrets
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.common import Background, Faults, SandboxConfig
from sandbox.state import Persisted

log = structlog.get_logger("sandbox.cdek")

DEV_CLIENTS: dict[str, str] = {"orkestr": "orkestr"}
TOKEN_TTL_S = 3600
DUPLICATE_NUMBER = "v2_order_number_exists"

# --------------------------------------------------------------------------------------------
# Geography shared by the courier simulators (Russian Post prices by the same distances).


@dataclass(frozen=True)
class City:
    name: str
    name_ru: str
    country: str  # ISO 3166-1 alpha-2
    region: str
    lat: float
    lon: float
    code: int  # sandbox city code
    postcode: str  # main post office index
    abbr: str  # prefix of pickup point codes

    @property
    def aliases(self) -> set[str]:
        return {_norm(self.name), _norm(self.name_ru), _norm(self.abbr)}


def _norm(s: str) -> str:
    s = s.strip().lower().replace("ё", "е")
    for prefix in ("г. ", "г.", "город "):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    return " ".join(s.replace("-", " ").replace(".", " ").split())


CITIES: tuple[City, ...] = (
    City("Moscow", "Москва", "RU", "Москва", 55.7558, 37.6173, 44, "101000", "MSK"),
    City("Podolsk", "Подольск", "RU", "Московская область", 55.4242, 37.5547, 1126, "142100", "PDL"),
    City("Sochi", "Сочи", "RU", "Краснодарский край", 43.5855, 39.7231, 438, "354000", "SOC"),
    City("Saint Petersburg", "Санкт-Петербург", "RU", "Санкт-Петербург", 59.9343, 30.3351, 137, "190000", "SPB"),
    City("Kazan", "Казань", "RU", "Республика Татарстан", 55.7961, 49.1064, 424, "420000", "KZN"),
    City("Yekaterinburg", "Екатеринбург", "RU", "Свердловская область", 56.8389, 60.6057, 250, "620000", "EKB"),
    City("Novosibirsk", "Новосибирск", "RU", "Новосибирская область", 55.0084, 82.9357, 270, "630000", "NSK"),
    City("Almaty", "Алматы", "KZ", "Алматы", 43.2389, 76.8897, 4756, "050000", "ALA"),
    City("Astana", "Астана", "KZ", "Астана", 51.1694, 71.4491, 4961, "010000", "AST"),
    City("Nizhny Novgorod", "Нижний Новгород", "RU", "Нижегородская область", 56.2965, 43.9361, 414, "603000", "NNV"),
    City("Samara", "Самара", "RU", "Самарская область", 53.1959, 50.1002, 430, "443000", "SMR"),
    City("Rostov-on-Don", "Ростов-на-Дону", "RU", "Ростовская область", 47.2357, 39.7015, 438, "344000", "RND"),
    City("Krasnodar", "Краснодар", "RU", "Краснодарский край", 45.0355, 38.9753, 435, "350000", "KRD"),
    City("Ufa", "Уфа", "RU", "Республика Башкортостан", 54.7388, 55.9721, 256, "450000", "UFA"),
    City("Perm", "Пермь", "RU", "Пермский край", 58.0105, 56.2502, 248, "614000", "PRM"),
    City("Voronezh", "Воронеж", "RU", "Воронежская область", 51.6720, 39.1843, 506, "394000", "VRN"),
    City("Volgograd", "Волгоград", "RU", "Волгоградская область", 48.7080, 44.5133, 426, "400000", "VLG"),
    City("Chelyabinsk", "Челябинск", "RU", "Челябинская область", 55.1644, 61.4368, 259, "454000", "CHL"),
    City("Omsk", "Омск", "RU", "Омская область", 54.9885, 73.3242, 268, "644000", "OMS"),
    City("Krasnoyarsk", "Красноярск", "RU", "Красноярский край", 56.0153, 92.8932, 278, "660000", "KRS"),
    City("Tyumen", "Тюмень", "RU", "Тюменская область", 57.1530, 65.5343, 252, "625000", "TMN"),
    City("Irkutsk", "Иркутск", "RU", "Иркутская область", 52.2870, 104.3050, 280, "664000", "IRK"),
    City("Khabarovsk", "Хабаровск", "RU", "Хабаровский край", 48.4802, 135.0719, 287, "680000", "KHB"),
    City("Vladivostok", "Владивосток", "RU", "Приморский край", 43.1198, 131.8869, 288, "690000", "VVO"),
    City("Shymkent", "Шымкент", "KZ", "Шымкент", 42.3417, 69.5901, 4758, "160000", "SHM"),
    City("Karaganda", "Караганда", "KZ", "Карагандинская область", 49.8047, 73.1094, 4757, "100000", "KRG"),
    City("Kaliningrad", "Калининград", "RU", "Калининградская область", 54.7104, 20.4522, 152, "236000", "KGD"),
)

_ALIASES = {
    "st petersburg": "Saint Petersburg",
    "spb": "Saint Petersburg",
    "питер": "Saint Petersburg",
    "petersburg": "Saint Petersburg",
    "nur sultan": "Astana",
    "нур султан": "Astana",
    "ekaterinburg": "Yekaterinburg",
    "rostov": "Rostov-on-Don",
    "karagandy": "Karaganda",
    "qaraghandy": "Karaganda",
    "alma ata": "Almaty",
}


def find_city(name: str | None = None, *, code: int | str | None = None, postal_code: str | None = None) -> City | None:
    """A demo city by code, then postal code (its first three digits), then name (EN/RU)."""
    if code not in (None, ""):
        for c in CITIES:
            if str(c.code) == str(code).strip():
                return c
        return None
    if postal_code:
        pc = str(postal_code).strip()
        for c in CITIES:
            if pc[:3] == c.postcode[:3]:
                return c
    if name:
        n = _norm(name)
        n = _norm(_ALIASES.get(n, n))
        for c in CITIES:
            if n in c.aliases:
                return c
    return None


def city_by_postcode(postcode: str) -> City | None:
    """The demo city for a six-digit index: same first three digits, else the numerically
    nearest main index (indexes are regional, so this lands in the right part of the map)."""
    pc = str(postcode).strip()
    if len(pc) != 6 or not pc.isdigit():
        return None
    exact = find_city(postal_code=pc)
    if exact is not None:
        return exact
    return min(CITIES, key=lambda c: (abs(int(c.postcode) - int(pc)), c.code))


def distance_km(a: City, b: City) -> int:
    """Great-circle distance, whole kilometres."""
    la1, lo1, la2, lo2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return round(2 * 6371 * math.asin(math.sqrt(h)))


# --------------------------------------------------------------------------------------------
# Tariffs: code → (name, delivery_mode). Modes: 1 door-door, 2 door-pickup point,
# 3 warehouse-door, 4 warehouse-pickup point.

TARIFFS: dict[int, tuple[str, int]] = {
    136: ("Посылка склад-склад", 4),
    137: ("Посылка склад-дверь", 3),
    138: ("Посылка дверь-склад", 2),
    139: ("Посылка дверь-дверь", 1),
}
TO_DOOR_MODES = {1, 3}
FROM_DOOR_MODES = {1, 2}


def tariff_quote(tariff_code: int, src: City, dst: City, weight_g: int) -> tuple[int, int, int]:
    """(price in kopecks, period_min, period_max) for one tariff: deterministic."""
    _name, mode = TARIFFS[tariff_code]
    km = distance_km(src, dst)
    kg = max(1, math.ceil(weight_g / 1000))
    kopecks = 25_000 + km * 12 + kg * (4_000 + km)
    if mode in FROM_DOOR_MODES:
        kopecks += 15_000
    if mode in TO_DOOR_MODES:
        kopecks += 20_000
    if src.country != dst.country:
        kopecks += 40_000
    kopecks = round(kopecks, -2)  # whole roubles
    days = 1 + km // 800
    days += 1 if mode in TO_DOOR_MODES else 0
    days += 2 if src.country != dst.country else 0
    return kopecks, days, days + (2 if mode in FROM_DOOR_MODES else 1)


def _roubles(kopecks: int) -> float:
    return kopecks / 100


#: namespace of the sandbox's stable uuids (pickup points, cities): uuid5 of a code
_UUID_NS = uuidlib.UUID("6f1c1d1e-5a0b-4c47-9a43-0c2d3e4f5a6b")


def stable_uuid(kind: str, code: Any) -> str:
    return str(uuidlib.uuid5(_UUID_NS, f"{kind}:{code}"))


#: per point number: (fitting room, takes cash, weekday hours, weekend hours)
_POINT_KINDS = {
    1: (True, True, "09:00/21:00", "10:00/18:00"),
    2: (True, False, "10:00/22:00", "10:00/20:00"),
    3: (False, True, "09:00/20:00", None),
}


def pickup_points(city: City) -> list[dict[str, Any]]:
    """Three CDEK pickup points (``PVZ``) a city, in the ``/v2/deliverypoints`` item shape.

    Point 1 and 2 have a fitting room (``is_dressing_room``), point 3 has none and is closed at
    weekends; point 2 takes no cash. ``work_time_list`` days are 1 (Monday) .. 7, times
    ``HH:MM/HH:MM``; ``work_time`` is the same in words.
    """
    streets = ("ул. Ленина", "пр. Мира", "ул. Садовая")
    points = []
    for i in (1, 2, 3):
        dressing, cash, weekday, weekend = _POINT_KINDS[i]
        days = [{"day": d, "time": weekday} for d in range(1, 6)]
        days += [{"day": d, "time": weekend} for d in (6, 7) if weekend]
        hours = f"Пн-Пт {weekday.replace('/', '-')}" + (f", Сб-Вс {weekend.replace('/', '-')}" if weekend else "")
        code = f"{city.abbr}{i}"
        points.append(
            {
                "code": code,
                "uuid": stable_uuid("point", code),
                "name": f"{city.name_ru}, {streets[i - 1]}, {10 * i + 2}",
                "address_comment": f"Вход с {streets[i - 1]}",
                "work_time": hours,
                "phones": [{"number": f"+7800{city.code:04d}{i:03d}"[:12]}],
                "type": "PVZ",
                "owner_code": "cdek",
                "take_only": False,
                "is_handout": True,
                "is_reception": True,
                "is_dressing_room": dressing,
                "is_marketplace": False,
                "is_ltl": False,
                "have_cashless": True,
                "have_cash": cash,
                "have_fast_payment_system": True,
                "allowed_cod": True,
                "work_time_list": days,
                "work_time_exception_list": [],
                "weight_min": 0,
                "weight_max": 30,
                "location": {
                    "country_code": city.country,
                    "region": city.region,
                    "city_code": city.code,
                    "city_uuid": stable_uuid("city", city.code),
                    "city": city.name_ru,
                    "postal_code": city.postcode,
                    "longitude": round(city.lon + i / 100, 4),
                    "latitude": round(city.lat + i / 200, 4),
                    "address": f"{streets[i - 1]}, {10 * i + 2}",
                    "address_full": f"{city.postcode}, {city.name_ru}, {streets[i - 1]}, {10 * i + 2}",
                },
            }
        )
    return points


#: ``/v2/deliverypoints`` boolean filters the sandbox applies (any other parameter is ignored)
POINT_FLAGS = ("take_only", "is_handout", "is_reception", "is_dressing_room", "have_cashless", "have_cash", "allowed_cod")


def filter_points(points: list[dict[str, Any]], params: Mapping[str, str]) -> list[dict[str, Any]]:
    """Apply ``type`` (PVZ | POSTAMAT | ALL), ``code`` and the boolean flags (``true``/``false``,
    any case: some clients send Python's ``True``)."""
    out = points
    kind = (params.get("type") or "ALL").upper()
    if kind != "ALL":
        out = [p for p in out if p["type"] == kind]
    if params.get("code"):
        out = [p for p in out if p["code"] == params["code"].strip().upper()]
    for flag in POINT_FLAGS:
        raw = params.get(flag)
        if raw is not None and raw.strip().lower() in ("true", "false", "1", "0"):
            want = raw.strip().lower() in ("true", "1")
            out = [p for p in out if p[flag] is want]
    return out


def find_point(code: str) -> City | None:
    code = str(code).strip().upper()
    for c in CITIES:
        if code in {p["code"] for p in pickup_points(c)}:
            return c
    return None


# --------------------------------------------------------------------------------------------
# Orders

STATUS_NAMES: dict[str, str] = {
    "ACCEPTED": "Принят",
    "CREATED": "Создан",
    "REMOVED": "Удален",
    "RECEIVED_AT_SHIPMENT_WAREHOUSE": "Принят на склад отправителя",
    "READY_TO_SHIP_AT_SENDING_OFFICE": "Выдан на отправку в г. отправителе",
    "TAKEN_BY_TRANSPORTER_FROM_SENDER_CITY": "Сдан перевозчику в г. отправителе",
    "SENT_TO_RECIPIENT_CITY": "Отправлен в г. получатель",
    "ACCEPTED_IN_RECIPIENT_CITY": "Встречен в г. получателе",
    "ACCEPTED_AT_PICK_UP_POINT": "Принят на склад до востребования",
    "TAKEN_BY_COURIER": "Выдан на доставку",
    "DELIVERED": "Вручен",
    "NOT_DELIVERED": "Не вручен",
}
#: the numeric ``status_code`` CDEK sends beside the named ``code`` in ORDER_STATUS webhooks (the
#: codes of CDEK's status directory, "Приложение 1"); ACCEPTED (the request passed validation) has
#: no number there and goes out as "0"
STATUS_NUMBERS: dict[str, str] = {
    "ACCEPTED": "0",
    "CREATED": "1",
    "REMOVED": "2",
    "RECEIVED_AT_SHIPMENT_WAREHOUSE": "3",
    "DELIVERED": "4",
    "NOT_DELIVERED": "5",
    "READY_TO_SHIP_AT_SENDING_OFFICE": "6",
    "TAKEN_BY_TRANSPORTER_FROM_SENDER_CITY": "7",
    "SENT_TO_RECIPIENT_CITY": "8",
    "ACCEPTED_IN_RECIPIENT_CITY": "9",
    "TAKEN_BY_COURIER": "11",
    "ACCEPTED_AT_PICK_UP_POINT": "12",
}
#: statuses reported from the sender's city (the rest: the recipient's)
SENDER_SIDE = {
    "ACCEPTED",
    "CREATED",
    "REMOVED",
    "RECEIVED_AT_SHIPMENT_WAREHOUSE",
    "READY_TO_SHIP_AT_SENDING_OFFICE",
    "TAKEN_BY_TRANSPORTER_FROM_SENDER_CITY",
}
#: an order may be deleted only in these statuses (not yet handed to CDEK)
DELETABLE = {"ACCEPTED", "CREATED"}


def cdek_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")


#: CDEK's agent fee for transferring cash on delivery, per mille (sandbox: 3 %)
COD_COMMISSION_PERMILLE = 30


def _only_items(body: dict[str, Any], units: dict[str, int]) -> dict[str, Any]:
    """``body`` with its packages' items cut down to ``units`` (ware_key -> count); no COD
    (a return order collects nothing)."""
    out = {k: v for k, v in body.items() if k not in ("delivery_point", "shipment_point", "delivery_recipient_cost")}
    packages = []
    for pkg in body.get("packages") or []:
        items = [{**it, "amount": units[str(it.get("ware_key"))], "payment": {"value": 0}}
                 for it in pkg.get("items") or [] if units.get(str(it.get("ware_key")))]
        if items:
            packages.append({**pkg, "items": items})
    out["packages"] = packages
    return out


#: what an order is, as CDEK flags it (``is_return``, ``is_reverse``, ``is_client_return``)
ORDER_KINDS = ("direct", "return", "reverse", "client_return")


@dataclass
class CdekOrder:
    uuid: str
    number: str
    cdek_number: str
    type: int
    tariff_code: int
    src: City
    dst: City
    body: dict[str, Any]
    total_kopecks: int
    created: str
    #: direct | return (CDEK sends a refused parcel back) | reverse (CDEK brings something back
    #: from the recipient) | client_return (the customer sends a bought item back)
    kind: str = "direct"
    #: the order this one belongs to: ``(type, uuid, cdek_number)``; for a direct order, its
    #: return or reverse order once CDEK made one
    related: list[tuple[str, str, str]] = field(default_factory=list)
    #: oldest first (the wire shows newest first)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    webhook_deliveries: list[dict[str, Any]] = field(default_factory=list)
    #: once delivered: ware_key -> units the recipient took (the rest were refused at the door or
    #: the pickup point's fitting room and travel back on this order's return order)
    delivered_items: dict[str, int] | None = None
    #: what the courier or the point collected: [{"type": "CASH"|"CARD", "sum": kopecks}]
    payment_info: list[dict[str, Any]] = field(default_factory=list)
    delivery_date: str = ""

    @property
    def code(self) -> str:
        return self.statuses[-1]["code"] if self.statuses else "ACCEPTED"

    def flags(self) -> dict[str, bool]:
        return {
            "is_return": self.kind == "return",
            "is_reverse": self.kind == "reverse",
            "is_client_return": self.kind == "client_return",
        }

    def entity(self) -> dict[str, Any]:
        e = {k: v for k, v in self.body.items() if k not in ("is_client_return", "is_return", "is_reverse")}
        e.update(
            uuid=self.uuid,
            type=self.type,
            number=self.number,
            cdek_number=self.cdek_number,
            tariff_code=self.tariff_code,
            delivery_mode=str(TARIFFS[self.tariff_code][1]),
            **self.flags(),
            statuses=[
                {k: s[k] for k in ("code", "name", "date_time", "city", "city_code", "reason_code") if s.get(k) is not None}
                for s in reversed(self.statuses)
            ],
            delivery_detail=self.delivery_detail(),
        )
        if self.delivered_items is not None:
            e["packages"] = [
                {**pkg, "items": [{**it, "delivery_amount": self.delivered_items.get(str(it.get("ware_key")), 0)}
                                  for it in pkg.get("items") or []]}
                for pkg in self.body.get("packages") or []
            ]
        return e

    def items(self) -> list[dict[str, Any]]:
        return [it for pkg in self.body.get("packages") or [] for it in pkg.get("items") or []]

    def cod_total(self, kept: dict[str, int]) -> int:
        """Kopecks to collect for ``kept`` units: each kept unit's ``payment.value`` plus the
        recipient's share of the delivery (``delivery_recipient_cost``) when anything is kept."""
        total = sum(round(float(it.get("payment", {}).get("value", 0)) * 100) * kept.get(str(it.get("ware_key")), 0)
                    for it in self.items())
        if any(kept.values()):
            total += round(float((self.body.get("delivery_recipient_cost") or {}).get("value", 0)) * 100)
        return int(total)

    def delivery_detail(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "delivery_sum": _roubles(self.total_kopecks),
            "total_sum": _roubles(self.total_kopecks),
        }
        if self.delivered_items is not None:
            collected = sum(p["sum"] for p in self.payment_info)
            detail.update(
                date=self.delivery_date,
                recipient_name=(self.body.get("recipient") or {}).get("name"),
                payment_sum=_roubles(collected),
                payment_info=[{"type": p["type"], "sum": _roubles(p["sum"])} for p in self.payment_info],
            )
        return detail

    def related_entities(self) -> list[dict[str, Any]]:
        """For ``GET /v2/orders``: ``related_entities[{type, uuid, cdek_number}]`` (types upper case)."""
        return [{"type": t.upper(), "uuid": u, "cdek_number": n} for t, u, n in self.related]


class StatusDrive(BaseModel):
    code: str
    city: str | None = None
    status_reason_code: str | None = None


#: wire paths whose errors answer in CDEK's shape (see :func:`sandbox.app._wire_errors`)
WIRE_PREFIXES = ("/cdek/",)


def wire_error(path: str, status: int, message: str) -> JSONResponse:
    """CDEK's common error shape ``{"errors": [{code, message}]}`` for an unknown route (404),
    a wrong method (405), a malformed parameter (400) or an injected fault (5xx)."""
    code = "v2_internal_error" if status >= 500 else "v2_bad_request"
    return JSONResponse({"errors": [_err(code, message)]}, status_code=status)


class LinkedDrive(BaseModel):
    kind: Literal["return", "reverse"]


class KeptUnits(BaseModel):
    ware_key: str | None = None
    sku: str | None = None
    qty: int = Field(ge=0)


class PartialDrive(BaseModel):
    kept: list[KeptUnits]
    payment: Literal["card", "cash", "prepaid"] = "prepaid"


def _is_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _registry_wire(reg: dict[str, Any]) -> dict[str, Any]:
    """A registry in CDEK's shape: money in roubles."""
    return {
        "registry_number": reg["registry_number"], "payment_date": reg["payment_date"], "sum": _roubles(reg["sum"]),
        "payment_order_number": reg["payment_order_number"], "date_created": reg["date_created"],
        "orders": [{"cdek_number": o["cdek_number"], "transfer_sum": _roubles(o["transfer_sum"]),
                    "payment_sum": _roubles(o["payment_sum"]), "total_sum_without_agent": _roubles(o["total_sum_without_agent"]),
                    "agent_commission_sum": _roubles(o["agent_commission_sum"])} for o in reg["orders"]],
    }


def _err(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _request(type_: str, state: str, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "request_uuid": str(uuidlib.uuid4()),
        "type": type_,
        "state": state,
        "date_time": cdek_time(datetime.now(UTC)),
        "errors": errors or [],
        "warnings": [],
    }


def _invalid(type_: str, errors: list[dict[str, str]], status: int = 400) -> JSONResponse:
    return JSONResponse({"requests": [_request(type_, "INVALID", errors)]}, status_code=status)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _validate_order(body: Any) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """CDEK-style field errors, plus what was resolved (tariff, cities)."""
    errors: list[dict[str, str]] = []
    out: dict[str, Any] = {}

    def empty(path: str) -> None:
        errors.append(_err("v2_field_is_empty", f"Field is empty: {path}"))

    def bad(path: str, why: str) -> None:
        errors.append(_err("v2_invalid_value_type", f"Invalid value of {path}: {why}"))

    if not isinstance(body, dict):
        return [_err("v2_bad_request", "The body must be a JSON object")], out
    if body.get("type") in (None, ""):
        empty("type")
    elif body["type"] not in (1, 2):
        bad("type", "must be 1 (online store) or 2 (delivery)")
    if not str(body.get("number") or "").strip():
        empty("number")
    if "is_client_return" in body and not isinstance(body["is_client_return"], bool):
        bad("is_client_return", "must be a boolean")

    tariff = body.get("tariff_code")
    mode = None
    if tariff in (None, ""):
        empty("tariff_code")
    elif not isinstance(tariff, int) or tariff not in TARIFFS:
        errors.append(_err("v2_invalid_format", f"Invalid value of tariff_code: unknown tariff {tariff!r}"))
    else:
        out["tariff_code"] = tariff
        mode = TARIFFS[tariff][1]

    # sender
    sp, fl = body.get("shipment_point"), body.get("from_location")
    if sp and fl:
        errors.append(_err("v2_shipment_address_multivalued", "Both shipment_point and from_location are given"))
    elif sp:
        out["src"] = find_point(sp)
        if out["src"] is None:
            errors.append(_err("shipment_location_is_not_recognized", f"Unknown shipment_point {sp!r}"))
    elif isinstance(fl, dict):
        out["src"] = find_city(fl.get("city"), code=fl.get("code"), postal_code=fl.get("postal_code"))
        if out["src"] is None:
            errors.append(_err("v2_sender_location_not_recognized", "Sender city not recognized: from_location"))
        elif mode in FROM_DOOR_MODES and not str(fl.get("address") or "").strip():
            empty("from_location.address")
    else:
        empty("from_location")

    # recipient's place
    dp, tl = body.get("delivery_point"), body.get("to_location")
    if dp and tl:
        errors.append(_err("v2_delivery_address_multivalued", "Both delivery_point and to_location are given"))
    elif dp:
        out["dst"] = find_point(dp)
        if out["dst"] is None:
            errors.append(_err("delivery_location_is_not_recognized", f"Unknown delivery_point {dp!r}"))
        elif mode in TO_DOOR_MODES:
            errors.append(_err("v2_invalid_format", f"tariff_code {tariff} delivers to a door: give to_location, not delivery_point"))
    elif isinstance(tl, dict):
        out["dst"] = find_city(tl.get("city"), code=tl.get("code"), postal_code=tl.get("postal_code"))
        if out["dst"] is None:
            errors.append(_err("v2_recipient_location_not_recognized", "Recipient city not recognized: to_location"))
        elif mode is not None and mode not in TO_DOOR_MODES:
            empty("delivery_point")
        elif not str(tl.get("address") or "").strip():
            empty("to_location.address")
    else:
        empty("delivery_point" if mode is not None and mode not in TO_DOOR_MODES else "to_location")

    rec = body.get("recipient")
    if not isinstance(rec, dict):
        empty("recipient")
    else:
        if not str(rec.get("name") or "").strip():
            empty("recipient.name")
        phones = rec.get("phones")
        if not isinstance(phones, list) or not phones:
            empty("recipient.phones")
        else:
            for i, ph in enumerate(phones):
                if not isinstance(ph, dict) or not str(ph.get("number") or "").strip():
                    empty(f"recipient.phones[{i}].number")

    packages = body.get("packages")
    weight = 0
    if not isinstance(packages, list) or not packages:
        empty("packages")
    else:
        for i, p in enumerate(packages):
            at = f"packages[{i}]"
            if not isinstance(p, dict):
                bad(at, "must be an object")
                continue
            if not str(p.get("number") or "").strip():
                empty(f"{at}.number")
            w = p.get("weight")
            if w in (None, ""):
                empty(f"{at}.weight")
            elif not isinstance(w, int) or isinstance(w, bool) or w <= 0:
                bad(f"{at}.weight", "grams, a positive integer")
            else:
                weight += w
            for dim in ("length", "width", "height"):
                if dim in p and (not isinstance(p[dim], int) or p[dim] <= 0):
                    bad(f"{at}.{dim}", "centimetres, a positive integer")
            for j, it in enumerate(p.get("items") or []):
                ia = f"{at}.items[{j}]"
                if not isinstance(it, dict):
                    bad(ia, "must be an object")
                    continue
                for k in ("name", "ware_key"):
                    if not str(it.get(k) or "").strip():
                        empty(f"{ia}.{k}")
                pay = it.get("payment")
                if not isinstance(pay, dict) or pay.get("value") is None:
                    empty(f"{ia}.payment.value")
                elif not _is_num(pay["value"]) or pay["value"] < 0:
                    bad(f"{ia}.payment.value", "roubles, not negative")
                for k in ("cost", "weight", "amount"):
                    if it.get(k) is None:
                        empty(f"{ia}.{k}")
                    elif not _is_num(it[k]) or it[k] < 0 or (k == "amount" and (not isinstance(it[k], int) or it[k] < 1)):
                        bad(f"{ia}.{k}", "a non-negative number" if k != "amount" else "a positive integer")
    out["weight"] = weight
    return errors, out


class CdekSim(Persisted):
    """CDEK's state: tokens, orders, webhooks, the next tracking number; all kept across
    restarts (a tracking number is never issued twice)."""

    persisted: ClassVar[dict[str, Any]] = {
        "tokens": dict[str, float],
        "orders": dict[str, CdekOrder],
        "webhooks": dict[str, dict[str, str]],
        "next_number": int,
        "cod_pending": list[str],
        "registries": list[dict[str, Any]],
    }

    def __init__(self, config: SandboxConfig, bg: Background) -> None:
        self.config = config
        self.bg = bg
        self.faults = Faults("cdek")
        self.clients: dict[str, str] = dict(DEV_CLIENTS)
        self.tokens: dict[str, float] = {}  # token → expires at (epoch seconds)
        self.orders: dict[str, CdekOrder] = {}
        self.webhooks: dict[str, dict[str, str]] = {}
        #: the next ``cdek_number`` (tracking number)
        self.next_number = 1_100_000_001
        #: uuids of delivered orders whose collected cash-on-delivery is not yet in a registry
        self.cod_pending: list[str] = []
        #: COD registries formed (``GET /v2/registries``), money in kopecks
        self.registries: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()

        bg.outbox.on_done("cdek", self._delivered)

    def _take_number(self) -> str:
        number, self.next_number = self.next_number, self.next_number + 1
        return str(number)

    async def start(self) -> None:
        """After a restart, auto mode walks on every direct order it had not finished."""
        if self.config.auto:
            for order in self.orders.values():
                if order.kind == "direct" and order.code in self._walk(order)[:-1]:
                    self.bg.spawn(self._auto_walk(order.uuid))

    # --- auth ---------------------------------------------------------------------------------
    def issue_token(self, client_id: str, client_secret: str) -> dict[str, Any] | None:
        if not client_id or self.clients.get(client_id) != client_secret:
            return None
        token = secrets.token_urlsafe(32)
        self.tokens[token] = time.time() + TOKEN_TTL_S
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": TOKEN_TTL_S,
            "scope": "order:all payment:all",
            "jti": str(uuidlib.uuid4()),
        }

    def unauthorized(self, request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            why = "Full authentication is required to access this resource"
        elif token.strip() not in self.tokens:
            why = f"Invalid access token: {token[:8]}…"
        elif self.tokens[token.strip()] <= time.time():
            why = "Access token expired"
        else:
            return None
        return JSONResponse(
            {"error": "invalid_token", "error_description": why},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    # --- orders -------------------------------------------------------------------------------
    def by_number(self, number: str) -> CdekOrder | None:
        live = [o for o in self.orders.values() if o.number == number]
        alive = [o for o in live if o.code != "REMOVED"]
        pick = alive or live
        return pick[-1] if pick else None

    def by_cdek_number(self, cdek_number: str) -> CdekOrder | None:
        return next((o for o in self.orders.values() if o.cdek_number == cdek_number), None)

    async def create(self, body: dict[str, Any], resolved: dict[str, Any]) -> CdekOrder | None:
        """A new order, or None when a live one with this number exists."""
        async with self._lock:
            number = str(body["number"]).strip()
            existing = self.by_number(number)
            if existing is not None and existing.code != "REMOVED":
                return None
            tariff = resolved["tariff_code"]
            price, _lo, _hi = tariff_quote(tariff, resolved["src"], resolved["dst"], resolved["weight"])
            order = self._new_order(
                number=number,
                type=body["type"],
                tariff_code=tariff,
                kind="client_return" if body.get("is_client_return") else "direct",
                src=resolved["src"],
                dst=resolved["dst"],
                body=body,
                total_kopecks=price,
            )
            self._set_status(order, "ACCEPTED")
            self._set_status(order, "CREATED")
        log.info("cdek.order_created", uuid=order.uuid, number=order.number, cdek_number=order.cdek_number)
        if self.config.auto:
            self.bg.spawn(self._auto_walk(order.uuid))
        return order

    def _new_order(self, **fields: Any) -> CdekOrder:
        """A new order with its uuid, the next tracking number and its creation time, filed."""
        order = CdekOrder(uuid=str(uuidlib.uuid4()), cdek_number=self._take_number(), created=cdek_time(datetime.now(UTC)), **fields)
        self.orders[order.uuid] = order
        return order

    async def create_linked(self, direct: CdekOrder, kind: str) -> CdekOrder:
        """CDEK's own second order for a direct one: a ``return`` (the refused parcel goes back
        to the sender) or a ``reverse`` (something comes back from the recipient). It carries
        the merchant's ``number``, travels the other way and points at the direct order in
        ``related_entities``; the direct order points back at it."""
        async with self._lock:
            order = self._new_order(
                number=direct.number,
                type=direct.type,
                tariff_code=direct.tariff_code,
                src=direct.dst,
                dst=direct.src,
                body={k: v for k, v in direct.body.items() if k not in ("delivery_point", "shipment_point")},
                total_kopecks=direct.total_kopecks,
                kind=kind,
                related=[("direct_order", direct.uuid, direct.cdek_number)],
            )
            direct.related.append((f"{kind}_order", order.uuid, order.cdek_number))
            self._set_status(order, "CREATED")
        log.info("cdek.linked_order_created", uuid=order.uuid, kind=kind, direct=direct.uuid)
        return order

    def _set_status(self, order: CdekOrder, code: str, city: str | None = None, reason: str | None = None) -> dict[str, Any]:
        self.bg.touch("cdek")
        place = (order.src if code in SENDER_SIDE else order.dst) if city is None else (find_city(city) or None)
        status = {
            "code": code,
            "name": STATUS_NAMES.get(code, code),
            "date_time": cdek_time(datetime.now(UTC)),
            "city": place.name_ru if place is not None else city,
            "city_code": str(place.code) if place is not None else None,
            "reason_code": reason,
        }
        if code == "DELIVERED" and order.kind == "direct" and order.delivered_items is None:
            # delivered whole (no try-on refusals): every unit kept, the COD collected in cash
            self._record_delivery(order, {str(it.get("ware_key")): int(it.get("amount", 0)) for it in order.items()}, "CASH")
        order.statuses.append(status)
        for hook in list(self.webhooks.values()):
            if hook["type"] == "ORDER_STATUS":
                self._send_webhook(order, hook["url"], status)
        return status

    def _record_delivery(self, order: CdekOrder, kept: dict[str, int], pay_type: str) -> None:
        order.delivered_items = kept
        order.delivery_date = datetime.now(UTC).date().isoformat()
        collected = order.cod_total(kept)
        order.payment_info = [{"type": pay_type, "sum": collected}] if collected else []
        if collected and order.uuid not in self.cod_pending:
            self.cod_pending.append(order.uuid)

    async def deliver_partial(self, uuid: str, kept: list[tuple[str, int]], payment: str) -> tuple[CdekOrder, CdekOrder | None]:
        """Try-on / partial delivery: the recipient keeps ``kept`` (ware_key, units) and refuses the
        rest at the door or in the pickup point's fitting room. The order becomes DELIVERED with
        ``delivery_detail.payment_info`` (what was collected, by ``payment``: cash | card; prepaid:
        nothing to collect) and each item's ``delivery_amount``; the refused units travel back on
        a return order (``is_return``, related both ways) that CDEK opens at once."""
        async with self._lock:
            order = self.orders.get(uuid)
            if order is None:
                raise HTTPException(404, f"no CDEK order {uuid}")
            if order.kind != "direct" or order.code in ("DELIVERED", "REMOVED", "NOT_DELIVERED"):
                raise HTTPException(409, f"order {uuid} is a {order.kind} order in {order.code}: nothing to hand over")
            amounts = {str(it.get("ware_key")): int(it.get("amount", 0)) for it in order.items()}
            taken: dict[str, int] = dict.fromkeys(amounts, 0)
            for ware_key, qty in kept:
                if ware_key not in amounts:
                    raise HTTPException(422, f"kept: {ware_key!r} is not in the order ({sorted(amounts)})")
                if qty < 0 or taken[ware_key] + qty > amounts[ware_key]:
                    raise HTTPException(422, f"kept: {ware_key!r} has {amounts[ware_key]} units, {taken[ware_key] + qty} kept")
                taken[ware_key] += qty
            cod = order.cod_total(taken)
            if payment == "prepaid" and cod:
                raise HTTPException(422, f"payment: the order is cash on delivery ({cod / 100:.2f} to collect): card or cash")
            self._record_delivery(order, taken, "CARD" if payment == "card" else "CASH")
            self._set_status(order, "DELIVERED")
            refused = {k: amounts[k] - taken[k] for k in amounts if amounts[k] > taken[k]}
            back = None
            if refused:
                back = self._new_order(
                    number=order.number, type=order.type, tariff_code=order.tariff_code, src=order.dst, dst=order.src,
                    body=_only_items(order.body, refused), total_kopecks=order.total_kopecks, kind="return",
                    related=[("direct_order", order.uuid, order.cdek_number)])
                order.related.append(("return_order", back.uuid, back.cdek_number))
                self._set_status(back, "CREATED")
        log.info("cdek.delivered_partly", uuid=uuid, kept=taken, refused=refused, collected=cod)
        if back is not None and self.config.auto:
            self.bg.spawn(self._auto_walk(back.uuid))
        return order, back

    def form_registry(self) -> dict[str, Any] | None:
        """A COD registry of what was collected and not yet registered (CDEK transfers it to the
        seller less its agent's fee, :data:`COD_COMMISSION_PERMILLE`)."""
        if not self.cod_pending:
            return None
        self.bg.touch("cdek")
        rows = []
        for uuid in self.cod_pending:
            o = self.orders[uuid]
            paid = sum(p["sum"] for p in o.payment_info)
            fee = paid * COD_COMMISSION_PERMILLE // 1000
            rows.append({"order_uuid": o.uuid, "cdek_number": o.cdek_number, "number": o.number, "payment_sum": paid,
                         "agent_commission_sum": fee, "transfer_sum": paid - fee, "total_sum_without_agent": paid})
        today = datetime.now(UTC).date().isoformat()
        registry = {"registry_number": 7_000_001 + len(self.registries), "payment_date": today, "date_created": cdek_time(datetime.now(UTC)),
                    "payment_order_number": f"{900_000 + len(self.registries) + 1}", "sum": sum(r["transfer_sum"] for r in rows),
                    "orders": rows}
        self.registries.append(registry)
        self.cod_pending = []
        log.info("cdek.cod_registry", registry=registry["registry_number"], orders=len(rows), sum=registry["sum"])
        return registry

    async def set_status(self, uuid: str, code: str, city: str | None = None, reason: str | None = None) -> CdekOrder:
        async with self._lock:
            order = self.orders.get(uuid)
            if order is None:
                raise HTTPException(404, f"no CDEK order {uuid}")
            if order.code == "REMOVED":
                raise HTTPException(409, f"order {uuid} is REMOVED")
            self._set_status(order, code, city, reason)
            return order

    async def delete(self, order: CdekOrder) -> bool:
        async with self._lock:
            if order.code == "REMOVED":
                return True
            if order.code not in DELETABLE:
                return False
            self._set_status(order, "REMOVED")
            return True

    def webhook_body(self, order: CdekOrder, status: dict[str, Any]) -> dict[str, Any]:
        """The ORDER_STATUS webhook body for one status of one order (CDEK API v2, "Вебхуки")."""
        related = [
            {"type": t, "uuid": u, "cdek_number": n}
            for t, u, n in order.related
            if t in ("direct_order", "client_direct_order")
        ]
        attributes: dict[str, Any] = {
            **order.flags(),
            "cdek_number": order.cdek_number,
            "number": order.number,
            "code": status["code"],
            "status_code": STATUS_NUMBERS.get(status["code"], "0"),
            "status_reason_code": status.get("reason_code"),
            "status_date_time": status["date_time"],
            "city_name": status["city"],
            "city_code": status["city_code"],
            "deleted": False,
        }
        if related:
            attributes["related_entities"] = related
        return {"type": "ORDER_STATUS", "date_time": cdek_time(datetime.now(UTC)), "uuid": order.uuid, "attributes": attributes}

    def _send_webhook(self, order: CdekOrder, url: str, status: dict[str, Any]) -> None:
        """Queue the webhook: persisted and retried, in order per CDEK order (sandbox.state.Outbox)."""
        record: dict[str, Any] = {"url": url, "code": status["code"], "http_status": None, "delivered": False}
        order.webhook_deliveries.append(record)
        ref = {"uuid": order.uuid, "index": len(order.webhook_deliveries) - 1}
        self.bg.outbox.send("cdek", order.uuid, ref, "POST", url, json_body=self.webhook_body(order, status))

    def _delivered(self, ref: dict[str, Any], state: str, http_status: int | None) -> None:
        self.bg.touch("cdek")
        order = self.orders.get(ref["uuid"])
        if order is None or ref["index"] >= len(order.webhook_deliveries):
            return
        record = order.webhook_deliveries[ref["index"]]
        record.update(http_status=http_status, delivered=state == "delivered")
        log.debug("cdek.webhook", uuid=order.uuid, code=record["code"], url=record["url"], http_status=http_status, state=state)

    @staticmethod
    def _walk(order: CdekOrder) -> list[str]:
        to_door = TARIFFS[order.tariff_code][1] in TO_DOOR_MODES
        return [
            "CREATED",
            "RECEIVED_AT_SHIPMENT_WAREHOUSE",
            "TAKEN_BY_TRANSPORTER_FROM_SENDER_CITY",
            "ACCEPTED_IN_RECIPIENT_CITY",
            "TAKEN_BY_COURIER" if to_door else "ACCEPTED_AT_PICK_UP_POINT",
            "DELIVERED",
        ]

    async def _auto_walk(self, uuid: str) -> None:
        """A step per ``auto_delay_s`` from wherever the order is (a restart resumes here)."""
        order = self.orders[uuid]
        walk = self._walk(order)
        start = walk.index(order.code) if order.code in walk else 0
        for prev, code in itertools.pairwise(walk[start:]):
            await asyncio.sleep(self.config.auto_delay_s)
            async with self._lock:
                if order.code != prev:  # driven by hand, or removed: leave it alone
                    return
                self._set_status(order, code)

    def view(self, order: CdekOrder) -> dict[str, Any]:
        return {
            "uuid": order.uuid,
            "number": order.number,
            "cdek_number": order.cdek_number,
            "tariff_code": order.tariff_code,
            **order.flags(),
            "related": order.related_entities(),
            "from_city": order.src.name,
            "to_city": order.dst.name,
            "status": order.code,
            "statuses": [{k: v for k, v in s.items() if v is not None} for s in order.statuses],
            "webhook_deliveries": list(order.webhook_deliveries),
        }


def _calc_input(body: Any) -> tuple[list[dict[str, str]], Any, Any, int]:
    """A calculator body → (errors, sender city, recipient city, total weight in grams)."""
    if not isinstance(body, dict):
        return [_err("v2_bad_request", "The body must be a JSON object")], None, None, 0
    errors: list[dict[str, str]] = []
    cities: dict[str, City | None] = {}
    for key, code in (("from_location", "v2_sender_location_not_recognized"), ("to_location", "v2_recipient_location_not_recognized")):
        loc = body.get(key)
        if not isinstance(loc, dict):
            errors.append(_err("v2_field_is_empty", f"Field is empty: {key}"))
            continue
        cities[key] = find_city(loc.get("city"), code=loc.get("code"), postal_code=loc.get("postal_code"))
        if cities[key] is None:
            errors.append(_err(code, f"City not recognized: {key}"))
    packages = body.get("packages")
    weight = 0
    if not isinstance(packages, list) or not packages:
        errors.append(_err("v2_field_is_empty", "Field is empty: packages"))
    else:
        for i, p in enumerate(packages):
            w = p.get("weight") if isinstance(p, dict) else None
            if not isinstance(w, int) or isinstance(w, bool) or w <= 0:
                errors.append(_err("v2_invalid_value_type", f"Invalid value of packages[{i}].weight: grams, a positive integer"))
            else:
                weight += w
    return errors, cities.get("from_location"), cities.get("to_location"), weight


def _order_answer(order: CdekOrder) -> dict[str, Any]:
    answer: dict[str, Any] = {"entity": order.entity(), "requests": [_request("CREATE", "SUCCESSFUL")]}
    if order.related:
        answer["related_entities"] = order.related_entities()
    return answer


async def _json_body(request: Request) -> Any:
    """The request's JSON, or None when it is not JSON (the handler answers with CDEK's error shape)."""
    try:
        return await request.json()
    except ValueError:
        return None


def router(sim: CdekSim) -> APIRouter:
    r = APIRouter(tags=["cdek"])

    # --- wire -------------------------------------------------------------------------------------
    @r.post("/cdek/v2/oauth/token")
    async def token(request: Request) -> JSONResponse:
        await sim.faults.check("token")
        params = dict(request.query_params)
        if request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded", "multipart/")):
            params.update({k: str(v) for k, v in (await request.form()).items()})
        if params.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type", "error_description": "grant_type must be client_credentials"}, 400)
        issued = sim.issue_token(params.get("client_id", ""), params.get("client_secret", ""))
        if issued is None:
            return JSONResponse({"error": "invalid_client", "error_description": "Bad client credentials"}, 401)
        return JSONResponse(issued)

    @r.post("/cdek/v2/orders")
    async def create_order(request: Request) -> JSONResponse:
        await sim.faults.check("create_order")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return _invalid("CREATE", [_err("v2_bad_request", "The body is not JSON")])
        errors, resolved = _validate_order(body)
        if errors:
            return _invalid("CREATE", errors)
        order = await sim.create(body, resolved)
        if order is None:
            return _invalid(
                "CREATE",
                [_err(DUPLICATE_NUMBER, f"An order with number {str(body['number']).strip()!r} already exists")],
            )
        return JSONResponse({"entity": {"uuid": order.uuid}, "requests": [_request("CREATE", "ACCEPTED")]}, 202)

    @r.get("/cdek/v2/orders/{uuid}")
    async def get_order(uuid: str, request: Request) -> JSONResponse:
        await sim.faults.check("get_order")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        order = sim.orders.get(uuid)
        if order is None:
            return _invalid("GET", [_err("v2_entity_not_found", f"Order {uuid} not found")], 404)
        return JSONResponse(_order_answer(order))

    @r.get("/cdek/v2/orders")
    async def find_order(request: Request, cdek_number: str | None = None, im_number: str | None = None) -> JSONResponse:
        await sim.faults.check("find_order")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        if cdek_number:
            order = sim.by_cdek_number(cdek_number.strip())
            missing = _err("v2_entity_not_found", f"Order with cdek_number {cdek_number} not found")
        elif im_number:
            order = sim.by_number(im_number.strip())
            missing = _err("v2_entity_not_found_im_number", f"Order with im_number {im_number} not found")
        else:
            return _invalid("GET", [_err("v2_order_number_empty", "Give cdek_number or im_number")])
        if order is None:
            return _invalid("GET", [missing])
        return JSONResponse(_order_answer(order))

    @r.delete("/cdek/v2/orders/{uuid}")
    async def delete_order(uuid: str, request: Request) -> JSONResponse:
        await sim.faults.check("delete_order")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        order = sim.orders.get(uuid)
        if order is None:
            return _invalid("DELETE", [_err("v2_entity_not_found", f"Order {uuid} not found")], 404)
        if not await sim.delete(order):
            return _invalid(
                "DELETE",
                [_err("v2_entity_invalid", f"Order can be deleted only before hand-over; its status is {order.code}")],
            )
        return JSONResponse({"entity": {"uuid": order.uuid}, "requests": [_request("DELETE", "ACCEPTED")]}, 202)

    @r.post("/cdek/v2/webhooks")
    async def add_webhook(request: Request) -> JSONResponse:
        await sim.faults.check("webhook")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _invalid("CREATE", [_err("v2_bad_request", "The body must be a JSON object")])
        errors = [_err("v2_field_is_empty", f"Field is empty: {k}") for k in ("type", "url") if not str(body.get(k) or "").strip()]
        if not errors and body["type"] != "ORDER_STATUS":
            errors.append(_err("v2_invalid_value_type", f"Invalid value of type: {body['type']!r} (sandbox: ORDER_STATUS)"))
        if not errors and not str(body["url"]).startswith(("http://", "https://")):
            errors.append(_err("v2_invalid_format", "Invalid value of url: must be http(s)"))
        if errors:
            return _invalid("CREATE", errors)
        async with sim._lock:
            hook = next((h for h in sim.webhooks.values() if h["type"] == body["type"] and h["url"] == body["url"]), None)
            if hook is None:
                hook = {"uuid": str(uuidlib.uuid4()), "type": body["type"], "url": body["url"]}
                sim.webhooks[hook["uuid"]] = hook
        return JSONResponse({"entity": {"uuid": hook["uuid"]}, "requests": [_request("CREATE", "SUCCESSFUL")]})

    @r.get("/cdek/v2/webhooks")
    async def list_webhooks(request: Request) -> JSONResponse:
        await sim.faults.check("webhook")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        return JSONResponse(list(sim.webhooks.values()))

    @r.get("/cdek/v2/webhooks/{uuid}")
    async def get_webhook(uuid: str, request: Request) -> JSONResponse:
        await sim.faults.check("webhook")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        hook = sim.webhooks.get(uuid)
        if hook is None:
            return _invalid("GET", [_err("v2_entity_not_found", f"Webhook {uuid} not found")], 404)
        return JSONResponse({"entity": dict(hook), "requests": [_request("GET", "SUCCESSFUL")]})

    @r.delete("/cdek/v2/webhooks/{uuid}")
    async def delete_webhook(uuid: str, request: Request) -> JSONResponse:
        await sim.faults.check("webhook")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        if sim.webhooks.pop(uuid, None) is None:
            return _invalid("DELETE", [_err("v2_entity_not_found", f"Webhook {uuid} not found")], 404)
        return JSONResponse({"entity": {"uuid": uuid}, "requests": [_request("DELETE", "SUCCESSFUL")]})

    @r.post("/cdek/v2/calculator/tarifflist")
    async def tarifflist(request: Request) -> JSONResponse:
        await sim.faults.check("tarifflist")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        errors, src, dst, weight = _calc_input(await _json_body(request))
        if errors:
            return JSONResponse({"tariff_codes": [], "errors": errors}, 400)
        codes = []
        for tariff_code, (name, mode) in sorted(TARIFFS.items()):
            price, lo, hi = tariff_quote(tariff_code, src, dst, weight)
            codes.append(
                {
                    "tariff_code": tariff_code,
                    "tariff_name": name,
                    "tariff_description": name,
                    "delivery_mode": mode,
                    "delivery_sum": _roubles(price),
                    "period_min": lo,
                    "period_max": hi,
                    "calendar_min": lo,
                    "calendar_max": hi,
                }
            )
        return JSONResponse({"tariff_codes": codes})

    @r.post("/cdek/v2/calculator/tariff")
    async def tariff(request: Request) -> JSONResponse:
        await sim.faults.check("tariff")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        body = await _json_body(request)
        errors, src, dst, weight = _calc_input(body)
        code = body.get("tariff_code") if isinstance(body, dict) else None
        if code in (None, ""):
            errors.append(_err("v2_field_is_empty", "Field is empty: tariff_code"))
        elif not isinstance(code, int) or code not in TARIFFS:
            errors.append(_err("v2_invalid_format", f"Invalid value of tariff_code: unknown tariff {code!r}"))
        if errors:
            return JSONResponse({"errors": errors}, 400)
        assert isinstance(code, int)  # an unknown or missing tariff_code is an error above
        price, lo, hi = tariff_quote(code, src, dst, weight)
        return JSONResponse(
            {
                "delivery_sum": _roubles(price),
                "period_min": lo,
                "period_max": hi,
                "calendar_min": lo,
                "calendar_max": hi,
                "weight_calc": weight,
                "services": [],
                "total_sum": _roubles(price),
                "currency": "RUB",
            }
        )

    @r.get("/cdek/v2/deliverypoints")
    async def deliverypoints(
        request: Request, city: str | None = None, city_code: str | None = None, postal_code: str | None = None
    ) -> JSONResponse:
        await sim.faults.check("deliverypoints")
        if (denied := sim.unauthorized(request)) is not None:
            return denied
        c = find_city(city, code=city_code, postal_code=postal_code)
        return JSONResponse(filter_points(pickup_points(c), request.query_params) if c is not None else [])

    # --- drive ------------------------------------------------------------------------------------
    @r.post("/sandbox/courier/orders/{uuid}/status", tags=["sandbox:courier"], summary="Act as CDEK: set an order's status")
    async def drive_status(uuid: str, cmd: StatusDrive) -> dict[str, Any]:
        code = cmd.code.strip().upper()
        if code not in STATUS_NAMES:
            raise HTTPException(422, f"unknown CDEK status {cmd.code!r}; known: {sorted(STATUS_NAMES)}")
        if cmd.city is not None and find_city(cmd.city) is None:
            raise HTTPException(422, f"unknown city {cmd.city!r}")
        order = await sim.set_status(uuid, code, cmd.city, cmd.status_reason_code)
        return sim.view(order)

    @r.post(
        "/sandbox/courier/orders/{uuid}/linked",
        tags=["sandbox:courier"],
        summary="Act as CDEK: open a return (refused parcel goes back) or reverse order for a direct one",
    )
    async def drive_linked(uuid: str, cmd: LinkedDrive) -> dict[str, Any]:
        direct = sim.orders.get(uuid)
        if direct is None:
            raise HTTPException(404, f"no CDEK order {uuid}")
        if direct.kind != "direct":
            raise HTTPException(409, f"order {uuid} is itself a {direct.kind} order")
        return sim.view(await sim.create_linked(direct, cmd.kind))

    @r.post("/sandbox/courier/orders/{uuid}/deliver-partial", tags=["sandbox:courier"],
            summary="Try-on: the recipient keeps some units, refuses the rest (a return order takes them back)")
    async def drive_partial(uuid: str, cmd: PartialDrive) -> dict[str, Any]:
        kept = []
        for k in cmd.kept:
            key = k.ware_key or k.sku
            if not key:
                raise HTTPException(422, "kept[]: ware_key or sku")
            kept.append((key, k.qty))
        order, back = await sim.deliver_partial(uuid, kept, cmd.payment)
        return {**sim.view(order), "delivery_detail": order.delivery_detail(),
                "return_order": sim.view(back) if back is not None else None}

    @r.post("/sandbox/courier/registries", tags=["sandbox:courier"], summary="Form a COD registry of what was collected")
    async def drive_registry() -> dict[str, Any]:
        registry = sim.form_registry()
        if registry is None:
            raise HTTPException(409, "no collected cash on delivery waits for a registry")
        return registry

    def cod_read(path: str, summary: str, answer: Any) -> None:
        """A read of the COD registries by ``date`` (YYYY-MM-DD)."""

        async def handler(request: Request, date: str = "") -> JSONResponse:
            await sim.faults.check("registries")
            if (denied := sim.unauthorized(request)) is not None:
                return denied
            if not _is_date(date):
                return _invalid("GET", [_err("v2_bad_request", "date: YYYY-MM-DD")])
            return JSONResponse(answer([reg for reg in sim.registries if reg["payment_date"] == date]))

        r.add_api_route(path, handler, methods=["GET"], summary=summary)

    cod_read("/cdek/v2/registries", "COD registries of a date (реестры наложенных платежей)",
             lambda regs: {"registries": [_registry_wire(reg) for reg in regs]})
    cod_read("/cdek/v2/payment", "Orders whose cash on delivery was transferred on a date",
             lambda regs: {"orders": [{"order_uuid": o["order_uuid"], "cdek_number": int(o["cdek_number"]), "number": o["number"]}
                                      for reg in regs for o in reg["orders"]]})

    @r.get("/sandbox/courier/orders", tags=["sandbox:courier"], summary="CDEK orders, statuses and webhook deliveries")
    async def drive_list() -> dict[str, Any]:
        return {"orders": [sim.view(o) for o in sim.orders.values()], "webhooks": list(sim.webhooks.values())}

    @r.post("/sandbox/courier/tokens/expire", tags=["sandbox:courier"], summary="Expire every issued CDEK token")
    async def drive_expire() -> dict[str, Any]:
        n = len(sim.tokens)
        sim.tokens = {t: 0.0 for t in sim.tokens}
        return {"expired": n}

    return r
