"""Carrier status codes → ShipmentStatus, and the small pure helpers around them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.cdek import kopecks_to_roubles, parse_cdek_time, roubles_to_kopecks
from adapters.post import split_address, split_name
from adapters.wire.couriers import ShipmentStatus as S
from adapters.wire.couriers import TrackingEvent, cdek_status, latest_status, post_status


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ACCEPTED", S.created),
        ("CREATED", S.created),
        ("REMOVED", S.cancelled),
        ("RECEIVED_AT_SHIPMENT_WAREHOUSE", S.handed_over),
        ("READY_TO_SHIP_AT_SENDING_OFFICE", S.handed_over),
        ("TAKEN_BY_TRANSPORTER_FROM_SENDER_CITY", S.in_transit),
        ("SENT_TO_RECIPIENT_CITY", S.in_transit),
        ("ACCEPTED_IN_RECIPIENT_CITY", S.arrived),
        ("TAKEN_BY_COURIER", S.arrived),
        ("ACCEPTED_AT_PICK_UP_POINT", S.ready_for_pickup),
        ("DELIVERED", S.delivered),
        ("NOT_DELIVERED", S.not_delivered),
    ],
)
def test_cdek_status_table(code: str, expected: S) -> None:
    assert cdek_status(code) is expected


def test_cdek_status_tolerates_case_and_unknown_transit_codes() -> None:
    assert cdek_status(" delivered ") is S.delivered
    assert cdek_status("ACCEPTED_AT_TRANSIT_WAREHOUSE") is S.in_transit


@pytest.mark.parametrize(
    ("oper_type", "oper_attr", "expected"),
    [
        (1, 1, S.handed_over),  # Приём
        (8, 0, S.in_transit),  # Обработка: сортировка
        (8, 1, S.in_transit),  # покинуло место приёма
        (8, 3, S.in_transit),  # прибыло в сортировочный центр
        (8, 2, S.ready_for_pickup),  # прибыло в место вручения
        (2, 1, S.delivered),  # Вручение адресату
        (2, 2, S.returned),  # Вручение отправителю
        (3, 1, S.not_delivered),  # Возврат: истёк срок хранения
        (3, 4, S.not_delivered),  # Возврат: отказ адресата
        (5, 1, S.not_delivered),  # Невручение
        (14, 0, S.in_transit),  # other operations (customs...) read as transit
    ],
)
def test_post_status_table(oper_type: int, oper_attr: int, expected: S) -> None:
    assert post_status(oper_type, oper_attr) is expected


def test_latest_status() -> None:
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert latest_status([]) is S.created
    events = [
        TrackingEvent("DELIVERED", S.delivered, t0 + timedelta(hours=2)),
        TrackingEvent("CREATED", S.created, t0),
    ]
    assert latest_status(events) is S.delivered
    same_time = [TrackingEvent("ACCEPTED", S.created, t0), TrackingEvent("REMOVED", S.cancelled, t0)]
    assert latest_status(same_time) is S.cancelled  # a tie goes to the one reported last


def test_money_and_time_at_the_cdek_boundary() -> None:
    assert roubles_to_kopecks(1499.9) == 149_990
    assert roubles_to_kopecks("0.1") == 10
    assert kopecks_to_roubles(150_050) == 1500.5
    assert parse_cdek_time("2024-05-01T12:00:00+0000") == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_cdek_time("2024-05-01T15:00:00.000+03:00") == datetime(2024, 5, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "parts"),
    [
        ("ул. Тверская, д. 7, кв. 3", ("ул. Тверская", "7", "3")),
        ("Невский пр., 28", ("Невский пр.", "28", "")),
        ("Тверская 7", ("Тверская", "7", "")),
        ("ул. 8 Марта, д. 12к2, оф. 4", ("ул. 8 Марта", "12к2", "4")),
        ("Красная площадь", ("Красная площадь", "", "")),
    ],
)
def test_split_address(line: str, parts: tuple[str, str, str]) -> None:
    assert split_address(line) == parts


def test_split_name() -> None:
    assert split_name("Иванова Анна Петровна") == ("Иванова", "Анна Петровна")
    assert split_name("Мадонна") == ("Мадонна", "Мадонна")


@pytest.mark.parametrize("kind", ["return", "reverse"])
def test_a_cdek_return_or_reverse_order_delivered_is_back_with_us_not_delivered(kind: str) -> None:
    # CDEK's own return (a refused parcel going back) and reverse orders travel to the sender:
    # their DELIVERED is the parcel back with the sender, never the customer's delivery
    assert cdek_status("DELIVERED", kind=kind) is S.returned  # type: ignore[arg-type]
    assert cdek_status("TAKEN_BY_COURIER", kind=kind) is S.not_delivered  # type: ignore[arg-type]
    assert cdek_status("ACCEPTED_AT_PICK_UP_POINT", kind=kind) is S.not_delivered  # type: ignore[arg-type]
    assert cdek_status("REMOVED", kind=kind) is S.cancelled  # type: ignore[arg-type]


def test_a_client_return_delivered_is_the_store_receiving_it() -> None:
    assert cdek_status("DELIVERED", kind="client_return") is S.delivered
    assert cdek_status("DELIVERED") is S.delivered


def test_cdek_webhook_flags_decide_the_status() -> None:
    from adapters.cdek import CdekClient

    def hook(**attrs: object) -> dict[str, object]:
        base = {"cdek_number": "1100000002", "number": "SHP-1", "code": "DELIVERED", "status_code": "4",
                "status_date_time": "2026-11-29T10:00:00+0000", "city_name": "Москва", "deleted": False}
        return {"type": "ORDER_STATUS", "uuid": "u-1", "date_time": "2026-11-29T10:00:01+0000", "attributes": {**base, **attrs}}

    direct = CdekClient.parse_webhook(hook(is_return=False, is_reverse=False, is_client_return=False))
    assert (direct.kind, direct.event.status, direct.is_return) == ("direct", S.delivered, False)
    reverse = CdekClient.parse_webhook(hook(is_reverse=True, related_entities=[{"type": "direct_order", "uuid": "u-0", "cdek_number": "1100000001"}]))
    assert (reverse.kind, reverse.event.status, reverse.direct_order) == ("reverse", S.returned, "u-0")
    assert CdekClient.parse_webhook(hook(is_return=True)).event.status is S.returned
    assert CdekClient.parse_webhook(hook(deleted=True)).deleted is True
    with pytest.raises(ValueError, match="is_reverse"):
        CdekClient.parse_webhook(hook(is_reverse="yes"))
