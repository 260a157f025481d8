"""Contract: ``django-atol`` (PyPI; MyBook's ATOL Online integration, API v4) drives the fiscal
simulator unchanged: its ``atol.core.AtolAPI`` takes the service's address from the Django
setting ``RECEIPTS_ATOL_BASE_URL`` (production ``https://online.atol.ru/possystem/v4``), which
the test points at the sandbox; nothing else changes. AtolAPI needs only Django settings and a
cache (no database): ``settings.configure`` with a local-memory cache. It is synchronous
(requests): each call runs in a worker thread.

What it holds the simulator to: getToken's ``{error, token}``, the receipt registration answer
``{uuid, status, error}``, a repeated ``external_id`` answered with error 33 **and HTTP 400**
carrying the first receipt's ``uuid`` (the client treats any status but 200/201/400/401 as an
outage), the report's ``status``/``payload``, and a refused receipt's error code 1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
import pytest

from conftest import wait_for

django = pytest.importorskip("django", reason="the contract tests' clients install with the test extra (make venv)")
pytest.importorskip("atol", reason="django-atol installs with the test extra (make venv)")


def atol_api(base_url: str) -> Any:
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=[],
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
            RECEIPTS_ATOL_LOGIN="orkestr-fiscal",
            RECEIPTS_ATOL_PASSWORD="orkestr",
            RECEIPTS_ATOL_GROUP_CODE="orkestr-group",
            RECEIPTS_ATOL_TAX_NAME="vat20",
            RECEIPTS_ATOL_TAX_SYSTEM="osn",
            RECEIPTS_ATOL_INN="7707083893",
            RECEIPTS_ATOL_COMPANY_EMAIL="shop@example.ru",
            RECEIPTS_ATOL_PAYMENT_ADDRESS="https://shop.example.ru",
            RECEIPTS_ATOL_PAYMENT_METHOD="full_prepayment",
            RECEIPTS_ATOL_PAYMENT_OBJECT="commodity",
            RECEIPTS_ATOL_CALLBACK_URL=None,
        )
        django.setup()
    from django.core.cache import cache

    cache.clear()  # a token cached for an earlier test's sandbox is not valid here
    from atol.core import AtolAPI

    settings.RECEIPTS_ATOL_BASE_URL = base_url
    return AtolAPI()


async def test_sell_repeat_report_refund_with_django_atol(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as raw:
        api = atol_api(f"{sb.url}/fiscal/possystem/v4")
        params = {"timestamp": dt.datetime.now(), "transaction_uuid": "ATOL-1:prepayment", "purchase_name": "Платье",
                  "purchase_price": "4990.00", "user_email": "anna@example.ru"}
        first = await asyncio.to_thread(lambda: api.sell(**params))
        again = await asyncio.to_thread(lambda: api.sell(**params))  # the same external_id: error 33, same uuid
        assert again.uuid == first.uuid

        async def done() -> Any:
            report = await asyncio.to_thread(api.report, first.uuid)
            return report if report.data["status"] == "done" else None

        report = await wait_for(done, timeout_s=5)
        assert report.data["payload"]["total"] == 4990.0 and report.data["payload"]["fiscal_document_number"]
        refund = await asyncio.to_thread(lambda: api.sell_refund(**{**params, "transaction_uuid": "ATOL-1:refund:1"}))
        receipts = (await raw.get("/sandbox/fiscal/receipts", params={"order": "ATOL-1"})).json()
        assert [(r["operation"], r["total"], r["uuid"]) for r in receipts] == [("sell", 499_000, first.uuid), ("sell_refund", 499_000, refund.uuid)]


async def test_a_refused_receipt_with_django_atol(make_sandbox: Any) -> None:
    from atol.exceptions import AtolReceiptNotProcessed

    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as raw:
        api = atol_api(f"{sb.url}/fiscal/possystem/v4")
        await raw.post("/sandbox/fiscal/reject-next", json={"count": 1, "text": "ФН переполнен"})
        receipt = await asyncio.to_thread(lambda: api.sell(timestamp=dt.datetime.now(), transaction_uuid="ATOL-2:prepayment",
                                                            purchase_name="Ремень", purchase_price=1500, user_phone="+79161234567"))
        await asyncio.sleep(0.5)  # fiscalised after FISCALISE_AFTER_S
        with pytest.raises(AtolReceiptNotProcessed):
            await asyncio.to_thread(api.report, receipt.uuid)
