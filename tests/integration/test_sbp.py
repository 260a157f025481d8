"""SBP (the fast payment system) through the Sber-style gateway: one stage, a dynamic QR, no hold,
refunds for every later reduction; over real HTTP on loopback."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from adapters.acquiring import AcquiringClient
from adapters.errors import ExternalRefusal, ExternalUnavailable
from conftest import wait_for
from adapters.wire.acquiring import BundleItem, verify_callback
from contracts.order import PaymentState

SECRET = "dev-callback-secret"


def items(total: int) -> list[BundleItem]:
    return [BundleItem(position_id=1, name="Платье", quantity=1, item_code="P1", item_price=total, item_amount=total,
                       tax_type=6, payment_method="full_prepayment", payment_object="commodity")]


async def register(client: AcquiringClient, number: str, amount: int, callback_url: str, *, two_stage: bool = False) -> str:
    fn = client.register_preauth if two_stage else client.register
    reg = await fn(order_number=number, amount=amount, currency="RUB", description=f"Заказ {number}",
                   return_url="https://shop.example/ok", fail_url="https://shop.example/fail",
                   callback_url=callback_url, session_timeout_secs=1200, bundle=items(amount))
    return reg.md_order


async def test_sbp_payment_then_partial_refunds(make_sandbox: Any, serve: Any) -> None:
    got: list[dict[str, str]] = []
    merchant = FastAPI()

    @merchant.get("/callbacks/acquiring")
    async def cb(request: Request) -> dict[str, bool]:
        got.append(dict(request.query_params))
        return {"ok": True}

    async with serve(merchant) as m, make_sandbox() as sb, \
            httpx.AsyncClient(base_url=f"{sb.url}/acquiring/", timeout=5) as http, httpx.AsyncClient(base_url=sb.url) as raw:
        bank = AcquiringClient(http, user="orkestr-api", password="orkestr")
        md = await register(bank, "SBP-1", 799_000, f"{m.url}/callbacks/acquiring")
        qr = await bank.sbp_qr(md_order=md, image=True)
        assert qr.payload.startswith("https://qr.nspk.ru/") and "sum=799000" in qr.payload
        assert qr.png is not None and qr.png.startswith(b"\x89PNG")
        assert (await bank.sbp_qr(md_order=md)).qr_id == qr.qr_id  # asked again: the same QR
        assert await bank.sbp_status(md_order=md, qr_id=qr.qr_id) == "STARTED"
        # the customer pays in the bank app
        assert (await raw.post(f"/sandbox/acquiring/orders/{md}/pay", json={"outcome": "approve"})).status_code == 200
        status = await bank.status(md_order=md)
        assert (status.state, status.deposited, status.payment_way, status.masked_pan) == (PaymentState.captured, 799_000, "SBP_C2B", None)
        assert await bank.sbp_status(md_order=md, qr_id=qr.qr_id) == "ACCEPTED"
        # no hold: a "smaller capture" or a release does not exist for SBP
        with pytest.raises(ExternalRefusal) as err:
            await bank.deposit(md_order=md, amount=500_000, idempotency_key="SBP-1:capture")
        assert err.value.code == "7" and "refund" in err.value.message
        with pytest.raises(ExternalRefusal):
            await bank.reverse(md_order=md, idempotency_key="SBP-1:reverse")
        # a shortage (one item, 299 000) then a partial buyout (200 000) are refunds
        await bank.refund(md_order=md, amount=299_000, idempotency_key="SBP-1:refund:1")
        await bank.refund(md_order=md, amount=200_000, idempotency_key="SBP-1:refund:2")
        await bank.refund(md_order=md, amount=200_000, idempotency_key="SBP-1:refund:2")  # a retry moves nothing
        status = await bank.status(md_order=md)
        assert (status.deposited, status.refunded) == (799_000, 299_000 + 200_000)
        with pytest.raises(ExternalRefusal):  # 799 000 − 499 000 = 300 000 left
            await bank.refund(md_order=md, amount=300_001, idempotency_key="SBP-1:refund:3")

        async def three() -> Any:
            return [c for c in got if c["mdOrder"] == md] if len(got) >= 3 else None

        callbacks = await wait_for(three, timeout_s=5)
    assert [(c["operation"], c["status"], c["amount"]) for c in callbacks] == [
        ("deposited", "1", "799000"), ("refunded", "1", "299000"), ("refunded", "1", "200000")]
    assert all(verify_callback(c, SECRET) for c in callbacks)


async def test_sbp_needs_a_one_stage_order_and_can_be_closed(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=f"{sb.url}/acquiring/", timeout=5) as http:
        bank = AcquiringClient(http, user="orkestr-api", password="orkestr")
        held = await register(bank, "SBP-2", 100_000, "http://127.0.0.1:9/cb", two_stage=True)
        with pytest.raises(ExternalRefusal) as err:
            await bank.sbp_qr(md_order=held)
        assert err.value.code == "7"
        md = await register(bank, "SBP-3", 100_000, "http://127.0.0.1:9/cb")
        qr = await bank.sbp_qr(md_order=md)
        resp = await http.post("payment/rest/sbp/c2b/qr/dynamic/reject.do",
                               data={"userName": "orkestr-api", "password": "orkestr", "mdOrder": md, "qrId": qr.qr_id})
        assert resp.json()["errorCode"] == "0"
        assert await bank.sbp_status(md_order=md, qr_id=qr.qr_id) == "REJECTED"
        assert (await bank.status(md_order=md)).state == PaymentState.declined


async def test_sbp_faults(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=f"{sb.url}/acquiring/", timeout=5) as http, \
            httpx.AsyncClient(base_url=sb.url) as raw:
        bank = AcquiringClient(http, user="orkestr-api", password="orkestr")
        md = await register(bank, "SBP-4", 100_000, "http://127.0.0.1:9/cb")
        await raw.post("/sandbox/acquiring/faults", json={"fail_next": 1, "status": 502, "operations": ["sbp/c2b/qr/dynamic/get"]})
        with pytest.raises(ExternalUnavailable):
            await bank.sbp_qr(md_order=md)
        assert (await bank.sbp_qr(md_order=md)).qr_id
