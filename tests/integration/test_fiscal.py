"""The fiscal simulator (ATOL Online-shaped) and FiscalClient over real HTTP on loopback."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from adapters.errors import ExternalRefusal, ExternalUnavailable
from adapters.fiscal import FiscalClient
from conftest import wait_for
from contracts.fiscal import PaymentKind, PaymentMethod, ReceiptItem, ReceiptOperation, ReceiptPayment, ReceiptRequest
from domain.marking import generate_marking_code, parse_marking_code

COMPANY = {"inn": "7707083893", "sno": "osn", "payment_address": "https://shop.example.ru", "email": "shop@example.ru"}
GTIN = "04642000000015"  # the demo catalogue's first barcode 4642000000015 as GTIN-14 (check digit 5)


@asynccontextmanager
async def fiscal_env(make_sandbox: Any, version: str = "v5") -> AsyncIterator[tuple[Any, FiscalClient, httpx.AsyncClient]]:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=f"{sb.url}/fiscal/possystem/{version}/", timeout=5) as http, \
            httpx.AsyncClient(base_url=sb.url, timeout=5) as raw:
        client = FiscalClient(http, login="orkestr-fiscal", password="orkestr", group_code="orkestr-group",
                              company=COMPANY, api_version=version)
        yield sb, client, raw


def prepaid_receipt(order: str, code: str) -> ReceiptRequest:
    # a dress (marked, 4 990.00) and a belt (not marked, 2 × 750.50): 4 990.00 + 1 501.00 = 6 491.00
    return ReceiptRequest(
        external_id=f"{order}:prepayment",
        operation=ReceiptOperation.SELL,
        items=(
            ReceiptItem("Платье", 499_000, 1, 499_000, PaymentMethod.FULL_PREPAYMENT, marking_code=code),
            ReceiptItem("Ремень", 75_050, 2, 150_100, PaymentMethod.FULL_PREPAYMENT),
        ),
        payments=(ReceiptPayment(PaymentKind.ELECTRONIC, 649_100),),
        customer_email="anna@example.ru",
    )


async def done(client: FiscalClient, receipt_uuid: str) -> Any:
    async def check() -> Any:
        report = await client.report(receipt_uuid)
        return report if report.status != "wait" else None

    return await wait_for(check, timeout_s=5)


@pytest.mark.parametrize("version", ["v5", "v4"])
async def test_two_receipts_of_a_prepaid_marked_order(make_sandbox: Any, version: str) -> None:
    code = generate_marking_code(GTIN, random.Random(7))
    async with fiscal_env(make_sandbox, version) as (_sb, client, raw):
        first = await client.register(prepaid_receipt("ORD1", code.text()))
        report = await done(client, first.uuid)
        assert report.status == "done" and report.total == 649_100 and report.fiscal_document_number
        # the goods reach the customer: full settlement offsetting the prepayment (payment type 2)
        settle = ReceiptRequest(
            external_id="ORD1:settlement", operation=ReceiptOperation.SELL,
            items=tuple(ReceiptItem(i.name, i.price, i.quantity, i.amount, PaymentMethod.FULL_PAYMENT, marking_code=i.marking_code)
                        for i in prepaid_receipt("ORD1", code.text()).items),
            payments=(ReceiptPayment(PaymentKind.PREPAID, 649_100),), customer_email="anna@example.ru")
        second = await client.register(settle)
        assert (await done(client, second.uuid)).status == "done"
        receipts = (await raw.get("/sandbox/fiscal/receipts", params={"order": "ORD1"})).json()
    assert [r["external_id"] for r in receipts] == ["ORD1:prepayment", "ORD1:settlement"]
    assert [r["items"][0]["payment_method"] for r in receipts] == ["full_prepayment", "full_payment"]
    assert [r["payments"] for r in receipts] == [[{"type": 1, "sum": 649_100}], [{"type": 2, "sum": 649_100}]]
    assert all(r["total"] == 499_000 + 2 * 75_050 for r in receipts)
    # the marked unit carries its code (v4: tag 1162 without the crypto tail), the belt none
    assert [r["items"][0]["marking_code"] for r in receipts] == [code.identity] * 2
    assert [r["items"][1]["marking_code"] for r in receipts] == [None, None]
    expected_object = 33 if version == "v5" else "commodity"
    assert receipts[0]["items"][0]["payment_object"] == expected_object


async def test_refund_receipt_of_a_returned_unit(make_sandbox: Any) -> None:
    code = generate_marking_code(GTIN, random.Random(8))
    async with fiscal_env(make_sandbox) as (_sb, client, raw):
        await client.register(prepaid_receipt("ORD2", code.text()))
        refund = ReceiptRequest(
            external_id="ORD2:refund:1", operation=ReceiptOperation.SELL_REFUND,
            items=(ReceiptItem("Платье", 499_000, 1, 499_000, PaymentMethod.FULL_PAYMENT, marking_code=code.text()),),
            payments=(ReceiptPayment(PaymentKind.ELECTRONIC, 499_000),), customer_phone="+79161234567")
        reg = await client.register(refund)
        assert (await done(client, reg.uuid)).total == 499_000
        receipts = (await raw.get("/sandbox/fiscal/receipts", params={"order": "ORD2"})).json()
    assert [(r["operation"], r["total"]) for r in receipts] == [("sell", 649_100), ("sell_refund", 499_000)]
    assert receipts[1]["items"][0]["marking_code"] == parse_marking_code(code.text()).identity


async def test_repeat_is_the_same_receipt(make_sandbox: Any) -> None:
    code = generate_marking_code(GTIN, random.Random(9))
    async with fiscal_env(make_sandbox) as (_sb, client, raw):
        first = await client.register(prepaid_receipt("ORD3", code.text()))
        again = await client.register(prepaid_receipt("ORD3", code.text()))
        assert again.uuid == first.uuid and again.repeated and not first.repeated
        assert len((await raw.get("/sandbox/fiscal/receipts", params={"order": "ORD3"})).json()) == 1


async def test_bad_receipts_are_refused_naming_the_field(make_sandbox: Any) -> None:
    async with fiscal_env(make_sandbox) as (_sb, client, raw):
        good = prepaid_receipt("ORD4", generate_marking_code(GTIN, random.Random(1)).text())
        # payments that do not cover the total
        short = ReceiptRequest(good.external_id, good.operation, good.items, (ReceiptPayment(PaymentKind.ELECTRONIC, 100),), "a@b.ru")
        with pytest.raises(ExternalRefusal) as err:
            await client.register(short)
        assert err.value.code == "32" and "receipt.payments" in err.value.message
        # a marked unit with a code whose GTIN check digit is wrong (…15 → …16)
        bad_code = generate_marking_code(GTIN, random.Random(2)).text().replace(GTIN, GTIN[:-1] + "6")
        body = client.wire(good)
        body["receipt"]["items"][0]["mark_code"] = {"gs1m": bad_code}
        token = (await raw.post("/fiscal/possystem/v5/getToken", json={"login": "orkestr-fiscal", "pass": "orkestr"})).json()["token"]
        resp = await raw.post("/fiscal/possystem/v5/orkestr-group/sell", json=body, headers={"Token": token})
        assert resp.status_code == 400
        assert resp.json()["error"]["code"] == 32 and "items[0].mark_code" in resp.json()["error"]["text"] and "gtin" in resp.json()["error"]["text"]
        assert (await raw.get("/sandbox/fiscal/receipts", params={"order": "ORD4"})).json() == []


async def test_credentials_token_and_faults(make_sandbox: Any) -> None:
    async with fiscal_env(make_sandbox) as (sb, client, raw):
        wrong = FiscalClient(client._http, login="orkestr-fiscal", password="nope", group_code="orkestr-group", company=COMPANY)
        with pytest.raises(ExternalRefusal) as err:
            await wrong.register(prepaid_receipt("ORD5", generate_marking_code(GTIN, random.Random(3)).text()))
        assert err.value.code == "12"
        # an expired token is renewed once, then the receipt goes through
        client._token = "expired"
        reg = await client.register(prepaid_receipt("ORD5", generate_marking_code(GTIN, random.Random(4)).text()))
        assert reg.uuid
        await raw.post("/sandbox/fiscal/faults", json={"fail_next": 1, "status": 503, "operations": ["sell"]})
        with pytest.raises(ExternalUnavailable):
            await client.register(prepaid_receipt("ORD6", generate_marking_code(GTIN, random.Random(5)).text()))
        # the fault is spent: the same receipt goes through now (nothing half-created before)
        assert (await client.register(prepaid_receipt("ORD6", generate_marking_code(GTIN, random.Random(5)).text()))).repeated is False
        # the fiscal drive refuses the next receipt: it ends "fail" with the reason
        await raw.post("/sandbox/fiscal/reject-next", json={"count": 1, "text": "ФН переполнен"})
        failed = await client.register(prepaid_receipt("ORD7", generate_marking_code(GTIN, random.Random(6)).text()))
        report = await done(client, failed.uuid)
        assert report.status == "fail" and report.error_text == "ФН переполнен"
        with pytest.raises(ExternalRefusal) as err:
            await client.report("00000000-0000-0000-0000-000000000000")
        assert err.value.code == "34"


async def test_callback_goes_to_the_service_url(make_sandbox: Any, serve: Any) -> None:
    got: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/fiscal-callback")
    async def hook(request: Request) -> dict[str, bool]:
        got.append(await request.json())
        return {"ok": True}

    async with serve(app) as receiver, fiscal_env(make_sandbox) as (_sb, client, _raw):
        receipt = prepaid_receipt("ORD8", generate_marking_code(GTIN, random.Random(10)).text())
        receipt = ReceiptRequest(receipt.external_id, receipt.operation, receipt.items, receipt.payments,
                                 receipt.customer_email, callback_url=f"{receiver.url}/fiscal-callback")
        reg = await client.register(receipt)

        async def arrived() -> bool:
            return bool(got)

        await wait_for(arrived, timeout_s=5)
    assert got[0]["uuid"] == reg.uuid and got[0]["status"] == "done" and got[0]["payload"]["total"] == 6491.0
