"""Contract: ``ozonapi-async`` (PyPI; a maintained async Ozon Seller API client whose pydantic
models follow Ozon's documentation) drives the Ozon simulator unchanged but for its base URL
(``SellerAPIConfig.base_url``, production ``https://api-seller.ozon.ru``). Every answer is
validated by the client's own models: a field the real API always sends and the simulator
left out fails the call. Its own retries are turned off (``max_retries=0``) so a 429 reaches
the test as the client's ``APITooManyRequestsError``.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
from typing import Any

import httpx
import pytest

ozonapi = pytest.importorskip("ozonapi", reason="the contract tests' clients install with the test extra (make venv)")

from ozonapi.seller import SellerAPI, SellerAPIConfig  # noqa: E402
from ozonapi.seller.schemas.fbs import (  # noqa: E402
    PostingFBSCancelRequest,
    PostingFBSGetRequest,
    PostingFBSPackageLabelRequest,
    PostingFBSUnfulfilledListV3Filter,
    PostingFBSUnfulfilledListV3Request,
)
from ozonapi.seller.schemas.fbs_assembly_and_labeling import (  # noqa: E402
    FBSPostingProductExemplarSetRequest,
    FBSPostingProductExemplarStatusRequest,
    PostingFBSShipRequest,
)
from ozonapi.seller.schemas.prices_and_stocks import ProductsStocksRequest  # noqa: E402

from domain.marking import generate_marking_code, gtin_from_barcode  # noqa: E402
from sandbox.demo_data import marked, shared  # noqa: E402

DATA = shared(42, 2000, True)
MARKED = next(s for p in DATA.products if marked(p.category) for s in p.skus)
WH = 1020000001


def api(sb: Any) -> SellerAPI:
    config = SellerAPIConfig(base_url=f"{sb.url}/ozon", max_retries=0, log_level="ERROR", log_use_async=False)
    return SellerAPI(client_id="orkestr-ozon", api_key="ozon-api-key", config=config)


async def test_posting_lifecycle_with_the_ozon_client(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as raw:
        number = (await raw.post("/sandbox/ozon/postings", json={"items": [{"offer_id": MARKED.sku, "quantity": 1}]})).json()["posting_number"]
        async with api(sb) as ozon:
            now = dt.datetime.now(dt.timezone.utc)
            listed = await ozon.posting_fbs_unfulfilled_list_v3(PostingFBSUnfulfilledListV3Request(
                filter=PostingFBSUnfulfilledListV3Filter(cutoff_from=now - dt.timedelta(days=1), cutoff_to=now + dt.timedelta(days=2)),
                limit=100))
            assert listed.result.count == 1 and listed.result.postings[0].posting_number == number
            posting = (await ozon.posting_fbs_get(PostingFBSGetRequest(posting_number=number))).result
            sku = posting.products[0].sku
            assert posting.products[0].offer_id == MARKED.sku and posting.requirements.products_requiring_mandatory_mark == [sku]
            code = generate_marking_code(gtin_from_barcode(MARKED.barcode), random.Random(5)).text()
            await ozon.fbs_posting_product_exemplar_set(FBSPostingProductExemplarSetRequest.model_validate({
                "posting_number": number, "multi_box_qty": 1,
                "products": [{"product_id": sku, "exemplars": [{"marks": [{"mark": code, "mark_type": "mandatory_mark"}]}]}]}))
            status = await ozon.fbs_posting_product_exemplar_status(FBSPostingProductExemplarStatusRequest(posting_number=number))
            assert status.status == "ship_available"
            shipped = await ozon.posting_fbs_ship(PostingFBSShipRequest.model_validate({
                "posting_number": number, "packages": [{"products": [{"product_id": sku, "quantity": 1}]}]}))
            assert shipped.result == [number]
            label = await ozon.posting_fbs_package_label(PostingFBSPackageLabelRequest(posting_number=[number]))
            assert label.content_type == "application/pdf" and base64.b64decode(label.file_content).startswith(b"%PDF")
            other = (await raw.post("/sandbox/ozon/postings", json={"items": [{"offer_id": MARKED.sku, "quantity": 1}]})).json()["posting_number"]
            cancelled = await ozon.posting_fbs_cancel(PostingFBSCancelRequest(cancel_reason_id=352, posting_number=other))
            assert cancelled.result is True


async def test_stocks_and_rate_limit_with_the_ozon_client(make_sandbox: Any) -> None:
    from ozonapi.seller.core.exceptions import APITooManyRequestsError

    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as raw:
        async with api(sb) as ozon:
            answer = await ozon.products_stocks(ProductsStocksRequest.model_validate(
                {"stocks": [{"offer_id": MARKED.sku, "stock": 3, "warehouse_id": WH}]}))
            assert answer.result[0].updated and answer.result[0].errors == []
            await raw.post("/sandbox/ozon/faults", json={"fail_next": 1, "status": 429, "operations": ["stocks"]})
            with pytest.raises(APITooManyRequestsError):
                await ozon.products_stocks(ProductsStocksRequest.model_validate(
                    {"stocks": [{"offer_id": MARKED.sku, "stock": 2, "warehouse_id": WH}]}))
