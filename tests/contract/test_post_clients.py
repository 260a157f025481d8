"""Contract: ``fs-pochta-api`` (a Russian Post client from PyPI: the "otpravka" REST API and the
SOAP tracking service through zeep) drives the post simulator unchanged.

Addresses are the library's class constants: ``Delivery.API_URL`` (set on the instance) and
``SingleTracker.WSDL`` (read by its constructor, so a one-line subclass names the sandbox's
``rtm34?wsdl``). zeep builds the tracking client from the sandbox's WSDL, as it does from the
real one, and sends the envelope itself.

``russian-post-tracking`` is not used: it is itself broken for this purpose. It hard-codes the
production WSDL address inside each method (``https://tracking.russianpost.ru/rtm34?wsdl``) and
builds on ``suds``, so it cannot be pointed at any other server without patching it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

pochta = pytest.importorskip("pochta", reason="the contract tests' clients install with the test extra (make venv)")

from pochta import Delivery, SingleTracker  # noqa: E402
from pochta.enums import MailCategory, MailType  # noqa: E402
from pochta.helpers import Order  # noqa: E402
from requests import HTTPError  # noqa: E402

TOKEN, LOGIN, PASSWORD = "dev-post-token", "orkestr", "orkestr"  # sandbox.post.DEV_*


def delivery(sb: Any) -> Delivery:
    client = Delivery(LOGIN, PASSWORD, TOKEN)
    client.API_URL = f"{sb.url}/post"
    return client


def tracker(sb: Any) -> SingleTracker:
    class SandboxTracker(SingleTracker):
        WSDL = f"{sb.url}/post/tracking/rtm34?wsdl"

    return SandboxTracker(LOGIN, PASSWORD, caching=False)


def parcel(order_num: str) -> Order:
    o = Order(mass=1500, order_num=order_num, fragile=False, mail_category=MailCategory.ORDINARY, mail_type=MailType.POSTAL_PARCEL)
    o.set_recipient(given_name="Анна", surname="Иванова", tel_address=79161234567)
    o.set_address(house_to="28", mail_direct=643, region_to="Санкт-Петербург", place_to="Санкт-Петербург",
                  street_to="Невский пр.", index_to=191186)
    return o


async def test_tariff_profile_create_search_delete(make_sandbox: Any) -> None:
    async with make_sandbox() as sb:
        client = delivery(sb)
        points = await asyncio.to_thread(client.settings.user_shipping_points)
        home = points[0]["operator-postcode"]
        assert home == "101000" and all(p["enabled"] for p in points)

        # no index-from: priced from the sender's profile, the same as naming its first point
        quote = await asyncio.to_thread(client.nogroup.calc_delivery_rate, index_to="191186", mass=1500,
                                        mail_category=MailCategory.ORDINARY, mail_type=MailType.POSTAL_PARCEL)
        named = await asyncio.to_thread(client.nogroup.calc_delivery_rate, index_from=home, index_to="191186", mass=1500,
                                        mail_category=MailCategory.ORDINARY, mail_type=MailType.POSTAL_PARCEL)
        assert quote == named and quote["total-rate"] > 0 and quote["total-vat"] == quote["total-rate"] * 20 // 100
        assert quote["delivery-time"]["min-days"] <= quote["delivery-time"]["max-days"]

        before = (await asyncio.to_thread(lambda: client.nogroup.counterpart_balance))["balance"]
        created = await asyncio.to_thread(client.orders.create_order, [parcel("CTR-P-1")])
        (item_id,) = created["result-ids"]
        after = (await asyncio.to_thread(lambda: client.nogroup.counterpart_balance))["balance"]
        assert before - after == quote["total-rate"] + quote["total-vat"]  # the order is charged with VAT

        found = await asyncio.to_thread(client.orders.search_order, "CTR-P-1")
        assert [f["id"] for f in found] == [item_id] and len(found[0]["barcode"]) == 14
        by_id = await asyncio.to_thread(client.orders.search_order_by_id, str(item_id))
        assert by_id["barcode"] == found[0]["barcode"] and by_id["order-num"] == "CTR-P-1"

        deleted = await asyncio.to_thread(client.orders.delete_order, [item_id])
        assert deleted["result-ids"] == [item_id]
        assert await asyncio.to_thread(client.orders.search_order, "CTR-P-1") == []
        assert (await asyncio.to_thread(lambda: client.nogroup.counterpart_balance))["balance"] == before  # credited back

        with pytest.raises(HTTPError) as missing:
            await asyncio.to_thread(client.orders.search_order_by_id, str(item_id))
        assert missing.value.response.status_code == 404 and missing.value.response.json()["code"] == "NOT_FOUND"


async def test_tracking_through_the_wsdl(make_sandbox: Any) -> None:
    async with make_sandbox() as sb, httpx.AsyncClient(base_url=sb.url) as drive:
        client = delivery(sb)
        (item_id,) = (await asyncio.to_thread(client.orders.create_order, [parcel("CTR-P-2")]))["result-ids"]
        barcode = (await asyncio.to_thread(client.orders.search_order_by_id, str(item_id)))["barcode"]
        for oper_type, oper_attr in ((1, 1), (8, 2), (2, 1)):  # Приём, прибыло в место вручения, Вручение адресату
            r = await drive.post(f"/sandbox/post/items/{barcode}/operations", json={"oper_type": oper_type, "oper_attr": oper_attr})
            assert r.status_code == 200, r.text

        # zeep unwraps OperationHistoryData{historyRecord*} into the list of records
        records = await asyncio.to_thread(tracker(sb).get_history, barcode)
        assert [(r["OperationParameters"]["OperType"]["Id"], r["OperationParameters"]["OperAttr"]["Id"]) for r in records] == [
            (1, 1), (8, 2), (2, 1)]
        assert records[-1]["OperationParameters"]["OperType"]["Name"] == "Вручение"
        assert records[-1]["AddressParameters"]["OperationAddress"]["Index"] == "191186"
        assert all(r["ItemParameters"]["Barcode"] == barcode for r in records)

        assert not await asyncio.to_thread(tracker(sb).get_history, "00000000000000")  # no operations yet


@pytest.mark.skip(
    reason="russian-post-tracking is itself broken for this: it hard-codes the production WSDL "
    "(https://tracking.russianpost.ru/rtm34?wsdl) inside each method and needs suds; not patched "
    "(see the module docstring)"
)
def test_russian_post_tracking_history() -> None:
    """What it would drive: ``RussianPostTracking(barcode, login, password).get_history()`` against
    ``rtm34?wsdl``, covered above by fs-pochta-api's ``SingleTracker``."""
