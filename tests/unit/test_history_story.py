"""The order story (adapters/story.py) built from the golden histories: steps, failures, decisions, masking."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.story import build_story, iter_strings, mask_story, story_to_json

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
SNAPSHOT = {"status": "completed", "customer": {"phone": "+79161234567", "name": "Анна Петрова",
                                                 "email": "anna@example.ru"},
            "delivery": {"method": "courier", "address": {"region": "RU-MOW", "city": "Москва",
                                                          "line": "ул. Тверская, 1", "postcode": "125009"}},
            "timeline": [{"at": "2026-11-23T09:00:00Z", "kind": "placed", "message": "Анна Петрова, +79161234567"}]}


def story(scenario: str, order: str):  # type: ignore[no-untyped-def]
    files = sorted(HISTORIES.glob(f"{scenario}__*.json"))
    assert files, f"no golden histories for {scenario}: run `make histories`"
    return build_story(order, {f.stem.split("__")[1]: json.loads(f.read_text()) for f in files}, SNAPSHOT)


def test_courier_refusal_and_retry_are_in_the_story() -> None:
    s = story("fulfillment_courier_refused_then_retried", "GOLD-CDEKHOLD")
    assert {r.workflow_type for r in s.workflows} == {"OrderWorkflow", "FulfillmentWorkflow"}
    bookings = [x for x in s.steps if x.name == "book_shipment"]
    assert [b.outcome for b in bookings] == ["failed", "ok"]
    assert bookings[0].error_type == "CourierRefused" and "Адрес получателя не найден" in (bookings[0].error or "")
    assert bookings[1].answer["tracking_number"] == "1000" and bookings[1].duration_s is not None
    register = next(x for x in s.steps if x.name == "register_payment")
    assert register.answer["md_order"] == "md-1"
    retry = next(d for d in s.decisions if d.name == "retry")
    assert retry.by == "operator:golden" and retry.request["note"] == "адрес исправлен" and retry.outcome == "accepted"
    times = [x.started_at for x in s.steps if x.started_at]
    assert times == sorted(times)


def test_support_view_masks_personal_data_everywhere() -> None:
    masked = story_to_json(mask_story(story("order_happy", "GOLD-HAPPY")))
    text = "\n".join(iter_strings(masked))
    for secret in ("+79161234567", "79161234567", "Анна Петрова", "Петрова", "anna@example.ru", "ул. Тверская, 1"):
        assert secret not in text, secret
    assert masked["customer"] == {"phone": "+7***4567", "name": "А*** П***", "email": "a***@example.ru"}
    assert masked["delivery"]["address"]["city"] == "Москва" and masked["masked"] is True
    plain = story_to_json(story("order_happy", "GOLD-HAPPY"))
    assert plain["customer"]["phone"] == "+79161234567"


def test_an_expired_payment_shows_the_polls_and_the_compensations() -> None:
    s = story("order_payment_expired", "GOLD-EXPIRED")
    names = [x.name for x in s.steps]
    assert names.count("payment_status") >= 4 and "rollback_loyalty" in names
    assert any(x.kind == "timer" and x.name == "wait 5 min" and x.outcome == "fired" for x in s.steps)
    assert s.workflows[0].status == "completed"
