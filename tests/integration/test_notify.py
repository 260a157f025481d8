"""The notification adapter against the simulated SMS/e-mail gateway, over real HTTP on loopback."""

from __future__ import annotations

from typing import Any, AsyncIterator

import httpx
import pytest

from adapters.errors import ExternalRefusal, ExternalUnavailable
from adapters.notify import NotificationClient


@pytest.fixture
async def sb(make_sandbox: Any) -> AsyncIterator[Any]:
    async with make_sandbox() as sb:
        yield sb


@pytest.fixture
async def notify(sb: Any) -> AsyncIterator[NotificationClient]:
    async with httpx.AsyncClient(base_url=f"{sb.url}/notify", timeout=10) as http:
        yield NotificationClient(http, token="dev-notify-token")


async def test_sms_is_sent_once_per_key_and_listed_by_phone(notify: NotificationClient, drive: httpx.AsyncClient) -> None:
    first = await notify.send_sms(phone="+79160000001", text="Заказ ORD-1 оплачен", idempotency_key="order-ORD-1:paid")
    again = await notify.send_sms(phone="+79160000001", text="Заказ ORD-1 оплачен", idempotency_key="order-ORD-1:paid")
    assert again == first
    later = await notify.send_sms(phone="+79160000001", text="Заказ ORD-1 передан курьеру", idempotency_key="order-ORD-1:shipped")
    assert later != first
    await notify.send_sms(phone="+79160000002", text="Другой покупатель", idempotency_key="order-ORD-2:paid")

    listed = (await drive.get("/sandbox/notifications", params={"phone": "+79160000001"})).json()
    assert [(m["id"], m["channel"], m["text"]) for m in listed] == [
        (first, "sms", "Заказ ORD-1 оплачен"),
        (later, "sms", "Заказ ORD-1 передан курьеру"),
    ]
    assert all(m["to"] == "+79160000001" and m["at"] for m in listed)


async def test_email_is_idempotent_and_listed_by_address(notify: NotificationClient, drive: httpx.AsyncClient) -> None:
    args = dict(email="buyer@example.com", subject="Ваш заказ", text="Спасибо!", idempotency_key="order-ORD-3:paid:email")
    first = await notify.send_email(**args)
    assert await notify.send_email(**args) == first
    listed = (await drive.get("/sandbox/notifications", params={"email": "buyer@example.com"})).json()
    assert [(m["id"], m["channel"], m["subject"]) for m in listed] == [(first, "email", "Ваш заказ")]
    assert (await drive.get("/sandbox/notifications", params={"phone": "buyer@example.com"})).json() == []


async def test_refusals_and_faults(notify: NotificationClient, drive: httpx.AsyncClient, sb: Any) -> None:
    await notify.send_sms(phone="+79160000003", text="one", idempotency_key="k-1")
    with pytest.raises(ExternalRefusal) as conflict:
        await notify.send_sms(phone="+79160000003", text="another text", idempotency_key="k-1")
    assert conflict.value.code == "IdempotencyConflict"
    with pytest.raises(ExternalRefusal) as invalid:
        await notify.send_email(email="not-an-address", subject="s", text="t", idempotency_key="k-2")
    assert invalid.value.code == "HTTP422"
    async with httpx.AsyncClient(base_url=f"{sb.url}/notify", timeout=10) as http:
        with pytest.raises(ExternalRefusal) as denied:
            await NotificationClient(http, token="wrong").send_sms(phone="+79160000003", text="x", idempotency_key="k-3")
    assert denied.value.code == "Unauthorized"

    await drive.post("/sandbox/notify/faults", json={"fail_next": 1, "status": 502})
    with pytest.raises(ExternalUnavailable):
        await notify.send_sms(phone="+79160000003", text="two", idempotency_key="k-4")
    await notify.send_sms(phone="+79160000003", text="two", idempotency_key="k-4")
    listed = (await drive.get("/sandbox/notifications", params={"phone": "+79160000003"})).json()
    assert [m["text"] for m in listed] == ["one", "two"]
