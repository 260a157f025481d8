"""The acquiring adapter against the simulated gateway, over real HTTP on loopback.

The merchant side (Orkestr's callback endpoint) is a tiny FastAPI app served with ``serve``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any, AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI, Request

from adapters.acquiring import AcquiringClient
from adapters.errors import ExternalRefusal, ExternalUnavailable
from adapters.wire.acquiring import BundleItem, callback_checksum, verify_callback
from contracts.order import PaymentState

SECRET = "dev-callback-secret"  # SandboxConfig's default acquiring_callback_secret
USER, PASSWORD = "orkestr-api", "orkestr"


class Merchant:
    """Collects the gateway's callbacks (query parameters of each GET)."""

    def __init__(self) -> None:
        self.callbacks: list[dict[str, str]] = []
        self.url = ""
        self.app = FastAPI()

        @self.app.get("/callbacks/acquiring")
        async def callback(request: Request) -> dict[str, bool]:
            self.callbacks.append(dict(request.query_params))
            return {"ok": True}

    @property
    def callback_url(self) -> str:
        return f"{self.url}/callbacks/acquiring"

    def of(self, md_order: str) -> list[dict[str, str]]:
        return [c for c in self.callbacks if c.get("mdOrder") == md_order]


async def eventually(check: Callable[[], Any], *, timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy (bounded in time and count)."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05) + 1):
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
async def merchant(serve: Any) -> AsyncIterator[Merchant]:
    m = Merchant()
    async with serve(m.app) as served:
        m.url = served.url
        yield m


@pytest.fixture
async def sb(make_sandbox: Any, merchant: Merchant) -> AsyncIterator[Any]:
    async with make_sandbox(orkestr_url=merchant.url) as sb:
        yield sb


@pytest.fixture
async def acquiring(sb: Any) -> AsyncIterator[AcquiringClient]:
    async with httpx.AsyncClient(base_url=f"{sb.url}/acquiring", timeout=10) as http:
        yield AcquiringClient(http, user=USER, password=PASSWORD)


BUNDLE = [
    BundleItem(position_id=1, item_code="SKU-DRESS-38", name="Платье миди", quantity=2, item_price=100_000, item_amount=200_000),
    BundleItem(position_id=2, item_code="SKU-BELT", name="Ремень", quantity=1, item_price=100_000, item_amount=100_000),
]
AMOUNT = 300_000


async def register(acquiring: AcquiringClient, merchant: Merchant, order_number: str, **kw: Any) -> Any:
    args: dict[str, Any] = dict(
        order_number=order_number,
        amount=AMOUNT,
        currency="RUB",
        description=f"Order {order_number}",
        return_url="https://shop.example/paid",
        fail_url="https://shop.example/failed",
        callback_url=merchant.callback_url,
        session_timeout_secs=1200,
        phone="+79161234567",
        email="buyer@example.com",
        bundle=BUNDLE,
    )
    args.update(kw)
    return await acquiring.register_preauth(**args)


async def pay(drive: httpx.AsyncClient, md_order: str, outcome: str = "approve") -> dict[str, Any]:
    resp = await drive.post(f"/sandbox/acquiring/orders/{md_order}/pay", json={"outcome": outcome})
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_hold_capture_partially_then_refund_in_two_parts(
    acquiring: AcquiringClient, merchant: Merchant, drive: httpx.AsyncClient, sb: Any
) -> None:
    reg = await register(acquiring, merchant, "ORD-1001")
    assert reg.form_url == f"{sb.url}/acquiring/payment/merchants/sandbox/payment_ru.html?mdOrder={reg.md_order}"
    page = await drive.get(reg.form_url)
    assert page.status_code == 200 and "ORD-1001" in page.text and "3000.00 RUB" in page.text

    before = await acquiring.status(md_order=reg.md_order)
    assert (before.state, before.approved, before.masked_pan) == (PaymentState.registered, 0, None)

    await pay(drive, reg.md_order)
    approved = await eventually(lambda: merchant.of(reg.md_order))
    assert approved[0]["operation"] == "approved" and approved[0]["status"] == "1"
    assert approved[0]["amount"] == str(AMOUNT) and approved[0]["orderNumber"] == "ORD-1001"
    assert verify_callback(approved[0], SECRET)

    held = await acquiring.status(md_order=reg.md_order)
    assert held.state == PaymentState.held and held.approved == AMOUNT and held.deposited == 0
    assert held.masked_pan and "**" in held.masked_pan and held.currency == "RUB"

    await acquiring.deposit(md_order=reg.md_order, amount=250_000, idempotency_key="ORD-1001:deposit")
    await acquiring.refund(md_order=reg.md_order, amount=40_000, idempotency_key="ORD-1001:refund:1")
    await acquiring.refund(
        md_order=reg.md_order,
        amount=60_000,
        idempotency_key="ORD-1001:refund:2",
        bundle=[BundleItem(position_id=1, item_code="SKU-DRESS-38", name="Платье миди", quantity=1, item_price=60_000, item_amount=60_000)],
    )
    st = await acquiring.status(order_number="ORD-1001")
    assert st.md_order == reg.md_order
    assert (st.state, st.deposited, st.refunded) == (PaymentState.captured, 250_000, 100_000)

    with pytest.raises(ExternalRefusal) as too_much:
        await acquiring.refund(md_order=reg.md_order, amount=150_001, idempotency_key="ORD-1001:refund:3")
    assert too_much.value.code == "5"
    await acquiring.refund(md_order=reg.md_order, amount=150_000, idempotency_key="ORD-1001:refund:4")
    assert (await acquiring.status(md_order=reg.md_order)).state == PaymentState.refunded

    cbs = await eventually(lambda: (lambda c: c if len(c) == 5 else None)(merchant.of(reg.md_order)))
    assert [(c["operation"], c["amount"]) for c in cbs] == [
        ("approved", "300000"), ("deposited", "250000"), ("refunded", "40000"), ("refunded", "60000"), ("refunded", "150000"),
    ]
    assert all(verify_callback(c, SECRET) and c["status"] == "1" for c in cbs)
    order = (await drive.get(f"/sandbox/acquiring/orders/{reg.md_order}")).json()
    assert [op["type"] for op in order["operations"]] == ["approved", "deposited", "refunded", "refunded", "refunded"]
    # the gateway records the merchant's answer once it has read it
    for _ in range(100):
        order = (await drive.get(f"/sandbox/acquiring/orders/{reg.md_order}")).json()
        if all(cb["state"] != "pending" for cb in order["callbacks"]):
            break
        await asyncio.sleep(0.05)
    assert [(cb["state"], cb["http_status"]) for cb in order["callbacks"]] == [("delivered", 200)] * 5


async def test_register_twice_with_same_order_number_returns_the_same_order(
    acquiring: AcquiringClient, merchant: Merchant, drive: httpx.AsyncClient
) -> None:
    first = await register(acquiring, merchant, "ORD-2001")
    again = await register(acquiring, merchant, "ORD-2001")
    assert again == first
    orders = (await drive.get("/sandbox/acquiring/orders")).json()
    assert [o["md_order"] for o in orders if o["order_number"] == "ORD-2001"] == [first.md_order]

    with pytest.raises(ExternalRefusal) as other_amount:
        await register(acquiring, merchant, "ORD-2001", amount=AMOUNT + 100, bundle=[])
    assert other_amount.value.code == "1"


async def test_repeated_deposit_and_refund_with_the_same_key_move_money_once(
    acquiring: AcquiringClient, merchant: Merchant, drive: httpx.AsyncClient
) -> None:
    reg = await register(acquiring, merchant, "ORD-3001")
    await pay(drive, reg.md_order)
    for _ in range(2):
        await acquiring.deposit(md_order=reg.md_order, amount=0, idempotency_key="ORD-3001:deposit")
    for _ in range(3):
        await acquiring.refund(md_order=reg.md_order, amount=10_000, idempotency_key="ORD-3001:refund:1")
    st = await acquiring.status(md_order=reg.md_order)
    assert (st.deposited, st.refunded) == (AMOUNT, 10_000)

    # a new key is a new request: a second deposit is refused by state, not silently repeated
    with pytest.raises(ExternalRefusal) as again:
        await acquiring.deposit(md_order=reg.md_order, amount=0, idempotency_key="ORD-3001:deposit:other")
    assert again.value.code == "7"
    # the same key on a different request is refused, not executed
    with pytest.raises(ExternalRefusal) as reused:
        await acquiring.refund(md_order=reg.md_order, amount=20_000, idempotency_key="ORD-3001:refund:1")
    assert reused.value.code == "5"

    order = (await drive.get(f"/sandbox/acquiring/orders/{reg.md_order}")).json()
    assert [op["type"] for op in order["operations"]] == ["approved", "deposited", "refunded"]
    assert (order["deposited"], order["refunded"]) == (AMOUNT, 10_000)


async def test_reverse_releases_the_hold_once(
    acquiring: AcquiringClient, merchant: Merchant, drive: httpx.AsyncClient
) -> None:
    reg = await register(acquiring, merchant, "ORD-3501")
    await pay(drive, reg.md_order)
    await acquiring.reverse(md_order=reg.md_order, idempotency_key="ORD-3501:reverse")
    await acquiring.reverse(md_order=reg.md_order, idempotency_key="ORD-3501:reverse")
    assert (await acquiring.status(md_order=reg.md_order)).state == PaymentState.reversed
    with pytest.raises(ExternalRefusal) as late:
        await acquiring.deposit(md_order=reg.md_order, amount=0, idempotency_key="ORD-3501:deposit")
    assert late.value.code == "7"
    cbs = await eventually(lambda: (lambda c: c if len(c) == 2 else None)(merchant.of(reg.md_order)))
    assert [(c["operation"], c["status"]) for c in cbs] == [("approved", "1"), ("reversed", "1")]


async def test_declined_payment(acquiring: AcquiringClient, merchant: Merchant, drive: httpx.AsyncClient) -> None:
    reg = await register(acquiring, merchant, "ORD-4001")
    await pay(drive, reg.md_order, "decline")
    cb = (await eventually(lambda: merchant.of(reg.md_order)))[0]
    assert (cb["operation"], cb["status"]) == ("approved", "0") and verify_callback(cb, SECRET)
    st = await acquiring.status(md_order=reg.md_order)
    assert st.state == PaymentState.declined and st.approved == 0 and st.action_code != 0
    with pytest.raises(ExternalRefusal) as refused:
        await acquiring.deposit(md_order=reg.md_order, amount=0, idempotency_key="ORD-4001:deposit")
    assert refused.value.code == "7"
    assert (await drive.post(f"/sandbox/acquiring/orders/{reg.md_order}/pay", json={"outcome": "approve"})).status_code == 409


async def test_session_timeout_declines_and_calls_back(
    acquiring: AcquiringClient, merchant: Merchant, drive: httpx.AsyncClient
) -> None:
    reg = await register(acquiring, merchant, "ORD-5001", session_timeout_secs=1)
    cb = (await eventually(lambda: merchant.of(reg.md_order), timeout=6))[0]
    assert (cb["operation"], cb["status"]) == ("declinedByTimeout", "0") and verify_callback(cb, SECRET)
    st = await acquiring.status(md_order=reg.md_order)
    assert st.state == PaymentState.declined and st.action_code == -2007
    assert (await drive.post(f"/sandbox/acquiring/orders/{reg.md_order}/pay", json={"outcome": "approve"})).status_code == 409


async def test_payment_page_buttons(acquiring: AcquiringClient, merchant: Merchant, drive: httpx.AsyncClient) -> None:
    reg = await register(acquiring, merchant, "ORD-5501")
    resp = await drive.post(
        "/acquiring/payment/merchants/sandbox/payment_ru.html", data={"mdOrder": reg.md_order, "outcome": "approve"}
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == f"https://shop.example/paid?orderId={reg.md_order}"
    assert (await acquiring.status(md_order=reg.md_order)).state == PaymentState.held
    page = await drive.get(reg.form_url)
    assert "<button" not in page.text and "held" in page.text


async def test_auto_mode_approves_by_itself(make_sandbox: Any, merchant: Merchant) -> None:
    async with make_sandbox(auto=True, auto_delay_s=0.1, orkestr_url=merchant.url) as sb:
        async with httpx.AsyncClient(base_url=f"{sb.url}/acquiring", timeout=10) as http:
            client = AcquiringClient(http, user=USER, password=PASSWORD)
            reg = await register(client, merchant, "ORD-6001")
            cb = (await eventually(lambda: merchant.of(reg.md_order), timeout=5))[0]
            assert (cb["operation"], cb["status"]) == ("approved", "1")
            assert (await client.status(md_order=reg.md_order)).state == PaymentState.held


async def test_refusals_bad_credentials_and_bundle(acquiring: AcquiringClient, merchant: Merchant, sb: Any) -> None:
    async with httpx.AsyncClient(base_url=f"{sb.url}/acquiring", timeout=10) as http:
        intruder = AcquiringClient(http, user=USER, password="wrong")
        with pytest.raises(ExternalRefusal) as denied:
            await register(intruder, merchant, "ORD-7001")
        assert denied.value.code == "5"
    with pytest.raises(ExternalRefusal) as bad_bundle:
        await register(acquiring, merchant, "ORD-7002", amount=AMOUNT - 1)
    assert bad_bundle.value.code == "5" and "orderBundle" in bad_bundle.value.message
    with pytest.raises(ExternalRefusal) as unknown:
        await acquiring.status(md_order="00000000-0000-0000-0000-000000000000")
    assert unknown.value.code == "6"


def test_checksum_matches_an_independently_computed_vector() -> None:
    params = {
        "mdOrder": "9231a838-ac68-4a3e-bddb-d9781433d852",
        "orderNumber": "ORD-1001",
        "operation": "deposited",
        "status": "1",
        "amount": "250000",
    }
    signed = "amount;250000;mdOrder;9231a838-ac68-4a3e-bddb-d9781433d852;operation;deposited;orderNumber;ORD-1001;status;1;"
    expected = hmac.new(b"s3cr3t", signed.encode(), hashlib.sha256).hexdigest().upper()
    assert callback_checksum(params, "s3cr3t") == expected
    signed_params = {**params, "checksum": expected, "sign_alias": "alias"}
    assert callback_checksum(signed_params, "s3cr3t") == expected  # checksum and sign_alias are not signed
    assert verify_callback(signed_params, "s3cr3t")
    assert verify_callback({**params, "checksum": expected.lower()}, "s3cr3t")
    assert not verify_callback({**signed_params, "amount": "250001"}, "s3cr3t")
    assert not verify_callback(signed_params, "another-secret")
    assert not verify_callback(params, "s3cr3t")


async def test_injected_faults_make_the_adapter_raise_unavailable(
    acquiring: AcquiringClient, merchant: Merchant, drive: httpx.AsyncClient, sb: Any
) -> None:
    reg = await register(acquiring, merchant, "ORD-8001")
    resp = await drive.post(
        "/sandbox/acquiring/faults", json={"fail_next": 1, "status": 503, "operations": ["getOrderStatusExtended"]}
    )
    assert resp.status_code == 200
    with pytest.raises(ExternalUnavailable):
        await acquiring.status(md_order=reg.md_order)
    assert (await acquiring.status(md_order=reg.md_order)).state == PaymentState.registered

    await drive.post("/sandbox/acquiring/faults", json={"latency_ms": 1000})
    async with httpx.AsyncClient(base_url=f"{sb.url}/acquiring", timeout=0.2) as http:
        impatient = AcquiringClient(http, user=USER, password=PASSWORD)
        with pytest.raises(ExternalUnavailable):
            await impatient.status(md_order=reg.md_order)
    await drive.post("/sandbox/acquiring/faults", json={})
    faults = (await drive.get("/sandbox/acquiring/faults")).json()
    assert faults["injected"] == 1


async def test_decline_closes_an_unpaid_order_and_is_refused_once_paid(
    acquiring: AcquiringClient, merchant: Merchant, drive: httpx.AsyncClient
) -> None:
    reg = await register(acquiring, merchant, "ORD-1501")
    await acquiring.decline(md_order=reg.md_order)
    await acquiring.decline(md_order=reg.md_order)  # a repeat (a retried activity) succeeds
    closed = await acquiring.status(md_order=reg.md_order)
    assert closed.state == PaymentState.declined and closed.approved == 0
    resp = await drive.post(f"/sandbox/acquiring/orders/{reg.md_order}/pay", json={"outcome": "approve"})
    assert resp.status_code == 409  # the customer can no longer pay the closed link
    assert merchant.of(reg.md_order) == []  # the merchant asked: no callback

    paid = await register(acquiring, merchant, "ORD-1502")
    await pay(drive, paid.md_order)
    with pytest.raises(ExternalRefusal) as refused:
        await acquiring.decline(md_order=paid.md_order)
    assert refused.value.code == "7" and "оплачен" in refused.value.message  # language=ru
    assert (await acquiring.status(md_order=paid.md_order)).state == PaymentState.held
