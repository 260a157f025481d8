"""Client of the acquiring bank (Sber-style payment gateway, REST ``*.do`` methods).

Wire shape: ``/work/shared/reference/acquiring.md``. The client's base URL is the gateway root
(``settings.acquiring_url``, e.g. ``http://127.0.0.1:8100/acquiring``); methods are posted to
``payment/rest/<method>.do`` form-encoded with ``userName`` + ``password``.

Idempotency:

* ``register_preauth``: the ``orderNumber`` is the key. The gateway refuses a repeated number
  with errorCode 1; the client then looks the order up by number and returns the existing
  ``md_order`` (refusing if that order was registered for another amount or currency).
* ``deposit`` / ``reverse`` / ``refund`` send ``X-Idempotency-Key`` (the newer gateway's header):
  a repeat with the same key gets the first answer and moves no money.

SBP (the fast payment system) is a one-stage payment: :meth:`register` (``register.do``), then
:meth:`sbp_qr` (``sbp/c2b/qr/dynamic/get.do``: the QR and its ``https://qr.nspk.ru/…`` link) and
:meth:`sbp_status`; paid means captured, so there is no hold to deposit or reverse (the gateway
refuses both with errorCode 7) and every later reduction is :meth:`refund`. ``PaymentStatus.payment_way``
says which kind an order was paid with (``SBP_C2B`` / ``CARD``).

Any ``errorCode`` other than ``"0"`` becomes :class:`ExternalRefusal` with ``code=errorCode``;
transport errors and 5xx become :class:`ExternalUnavailable` (``adapters.http.request``).
"""

from __future__ import annotations

import base64
import json
from functools import partialmethod
from typing import Any

import httpx

from adapters.errors import ExternalRefusal
from adapters.http import request
from adapters.wire.acquiring import (
    CURRENCY_ALPHA,
    CURRENCY_NUMERIC,
    BundleItem,
    PaymentRegistration,
    PaymentStatus,
    SbpQr,
    payment_state,
)

SYSTEM = "acquiring"

#: 54-FZ codes the gateway expects in ``itemAttributes`` (FFD tags 1214 / 1212)
PAYMENT_METHOD_CODES = {
    "full_prepayment": "1",
    "prepayment": "2",
    "advance": "3",
    "full_payment": "4",
    "partial_payment": "5",
    "credit": "6",
    "credit_payment": "7",
}
PAYMENT_OBJECT_CODES = {
    "commodity": "1",
    "excise": "2",
    "job": "3",
    "service": "4",
    "payment": "10",
    "another": "13",
}

#: the sandbox gateway's payment page, relative to the client's base URL
SANDBOX_PAYMENT_PAGE = "payment/merchants/sandbox/payment_ru.html?mdOrder={md_order}"


def order_bundle(items: list[BundleItem]) -> str:
    """``orderBundle`` JSON for ``register*.do`` / ``refund.do``."""
    return json.dumps(
        {
            "cartItems": {
                "items": [
                    {
                        "positionId": str(i.position_id),
                        "name": i.name,
                        "quantity": {"value": i.quantity, "measure": "шт"},
                        "itemCode": i.item_code,
                        "itemPrice": i.item_price,
                        "itemAmount": i.item_amount,
                        "tax": {"taxType": i.tax_type},
                        "itemAttributes": {
                            "attributes": [
                                {"name": "paymentMethod", "value": PAYMENT_METHOD_CODES.get(i.payment_method, i.payment_method)},
                                {"name": "paymentObject", "value": PAYMENT_OBJECT_CODES.get(i.payment_object, i.payment_object)},
                            ]
                        },
                    }
                    for i in items
                ]
            }
        },
        ensure_ascii=False,
    )


class AcquiringClient:
    """Async client of the payment gateway.

    ``payment_page_url``: template of the payment page address with ``{md_order}``, used to
    rebuild ``form_url`` when a repeated registration is answered with the existing order (the
    gateway only returns ``formUrl`` on the first registration). Relative templates are resolved
    against the client's base URL; the default is the sandbox's page
    (``{base}/payment/merchants/sandbox/payment_ru.html?mdOrder={md_order}``). For the real
    gateway pass its page, e.g. ``"https://.../payment/merchants/<merchant>/payment_ru.html?mdOrder={md_order}"``.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        user: str,
        password: str,
        payment_page_url: str = SANDBOX_PAYMENT_PAGE,
    ) -> None:
        self._http = http
        self._user = user
        self._password = password
        self._payment_page_url = payment_page_url

    # --- plumbing ----------------------------------------------------------------------------

    async def _call(
        self, operation: str, params: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        # ``language`` (ISO 639-1): the gateway's messages reach operators, who read Russian
        data = {"userName": self._user, "password": self._password, "language": "ru"}
        data.update({k: str(v) for k, v in params.items() if v is not None})
        headers = {"X-Idempotency-Key": idempotency_key} if idempotency_key else None
        resp = await request(self._http, SYSTEM, operation, "POST", f"payment/rest/{operation}.do", data=data, headers=headers)
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ExternalRefusal(SYSTEM, operation, f"HTTP {resp.status_code}: {resp.text[:200]}", code=f"HTTP{resp.status_code}")
        code = str(body.get("errorCode", "0"))
        if code != "0" or resp.status_code >= 400:
            raise ExternalRefusal(SYSTEM, operation, str(body.get("errorMessage", f"HTTP {resp.status_code}")), code=code)
        return body

    def _form_url(self, md_order: str) -> str:
        url = self._payment_page_url.format(md_order=md_order)
        return str(self._http.base_url.join(url))

    @staticmethod
    def _numeric(currency: str) -> str:
        try:
            return CURRENCY_NUMERIC[currency.upper()]
        except KeyError:
            raise ValueError(f"unsupported currency {currency!r}") from None

    # --- operations --------------------------------------------------------------------------

    async def _register(
        self,
        method: str,
        *,
        order_number: str,
        amount: int,
        currency: str,
        description: str,
        return_url: str,
        fail_url: str,
        callback_url: str,
        session_timeout_secs: int,
        phone: str | None = None,
        email: str | None = None,
        bundle: list[BundleItem],
    ) -> PaymentRegistration:
        """Register an order with ``method`` (``registerPreAuth`` or ``register``). Idempotent
        by ``order_number``: a repeat (errorCode 1) is answered with the existing order, unless
        it was registered for another amount or currency."""
        numeric = self._numeric(currency)
        params: dict[str, Any] = {
            "orderNumber": order_number,
            "amount": amount,
            "currency": numeric,
            "returnUrl": return_url,
            "failUrl": fail_url,
            "description": description,
            "sessionTimeoutSecs": session_timeout_secs,
            "dynamicCallbackUrl": callback_url,
            "phone": phone,
            "email": email,
            "orderBundle": order_bundle(bundle) if bundle else None,
        }
        try:
            body = await self._call(method, params)
        except ExternalRefusal as exc:
            if exc.code != "1":
                raise
            existing = await self.status(order_number=order_number)
            if existing.amount != amount or existing.currency != currency.upper():
                raise ExternalRefusal(
                    SYSTEM,
                    method,
                    f"order number {order_number} is registered for {existing.amount} {existing.currency}",
                    code="1",
                ) from exc
            return PaymentRegistration(md_order=existing.md_order, form_url=self._form_url(existing.md_order))
        return PaymentRegistration(md_order=str(body["orderId"]), form_url=str(body["formUrl"]))

    #: ``registerPreAuth.do``: a two-stage payment (the amount will be held); idempotent by
    #: ``order_number`` (see :meth:`_register`)
    register_preauth = partialmethod(_register, "registerPreAuth")
    #: ``register.do``: a one-stage payment (paid means captured), the kind an SBP payment needs;
    #: idempotent by ``order_number`` like :attr:`register_preauth`
    register = partialmethod(_register, "register")

    async def deposit(self, *, md_order: str, amount: int, idempotency_key: str) -> None:
        """Capture ``amount`` of the hold (0 = all of it)."""
        await self._call("deposit", {"orderId": md_order, "amount": amount}, idempotency_key=idempotency_key)

    async def reverse(self, *, md_order: str, idempotency_key: str) -> None:
        """Release the hold (only before a deposit)."""
        await self._call("reverse", {"orderId": md_order}, idempotency_key=idempotency_key)

    async def decline(self, *, md_order: str) -> None:
        """``decline.do``: close an order nobody has paid yet (its payment link stops working).
        Refused (errorCode 7) once the customer has paid; a repeat succeeds."""
        await self._call("decline", {"orderId": md_order})

    async def refund(
        self, *, md_order: str, amount: int, idempotency_key: str, bundle: list[BundleItem] | None = None
    ) -> None:
        """Refund ``amount`` of what was deposited; ``bundle`` lists the refunded items (receipt)."""
        params: dict[str, Any] = {"orderId": md_order, "amount": amount}
        if bundle:
            params["orderBundle"] = order_bundle(bundle)
        await self._call("refund", params, idempotency_key=idempotency_key)

    async def status(self, *, md_order: str | None = None, order_number: str | None = None) -> PaymentStatus:
        """``getOrderStatusExtended.do`` by gateway id or by our order number."""
        if not md_order and not order_number:
            raise ValueError("md_order or order_number is required")
        params = {"orderId": md_order} if md_order else {"orderNumber": order_number}
        body = await self._call("getOrderStatusExtended", params)
        attributes = {a.get("name"): a.get("value") for a in body.get("attributes") or []}
        info = body.get("paymentAmountInfo") or {}
        card = body.get("cardAuthInfo") or {}
        currency = str(body.get("currency", "643"))
        return PaymentStatus(
            md_order=str(md_order or attributes.get("mdOrder") or ""),
            order_number=str(body.get("orderNumber", order_number or "")),
            state=payment_state(int(body["orderStatus"])),
            approved=int(info.get("approvedAmount", 0)),
            deposited=int(info.get("depositedAmount", 0)),
            refunded=int(info.get("refundedAmount", 0)),
            action_code=int(body.get("actionCode", 0)),
            action_description=str(body.get("actionCodeDescription", "")),
            # ``pan`` is the documented field (masked by the gateway); ``maskedPan`` its older twin
            masked_pan=card.get("pan") or card.get("maskedPan") or None,
            amount=int(body.get("amount", 0)),
            currency=CURRENCY_ALPHA.get(currency, currency),
            payment_way=str(body.get("paymentWay") or ""),
        )

    async def sbp_qr(self, *, md_order: str, image: bool = False, size_px: int = 300) -> SbpQr:
        """``sbp/c2b/qr/dynamic/get.do``: the SBP QR of a one-stage order (the link always, the PNG
        when ``image``). Asked again, the gateway answers the same ``qrId``."""
        body = await self._call("sbp/c2b/qr/dynamic/get", {
            "mdOrder": md_order, "qrFormat": "image" if image else "matrix", "qrWidth": size_px, "qrHeight": size_px})
        rendered = body.get("renderedQr")
        return SbpQr(qr_id=str(body["qrId"]), payload=str(body["payload"]),
                     png=base64.b64decode(rendered) if rendered else None)

    async def sbp_status(self, *, md_order: str, qr_id: str) -> str:
        """``sbp/c2b/qr/status.do``: STARTED (waiting), ACCEPTED (paid) or REJECTED."""
        body = await self._call("sbp/c2b/qr/status", {"mdOrder": md_order, "qrId": qr_id})
        return str(body.get("qrStatus", ""))
