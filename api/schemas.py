"""Request and response schemas of the storefront API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.order import Channel, DeliveryMethod, PaymentMethod

PHONE = r"^\+?[0-9]{10,15}$"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerIn(Strict):
    phone: str = Field(pattern=PHONE, description="digits, optionally with a leading +, e.g. +79161234567")
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, pattern=EMAIL, max_length=254)


class AddressIn(Strict):
    region: str = Field(min_length=2, max_length=16, description="ISO 3166-2 code, e.g. RU-MOW")
    city: str = Field(min_length=1, max_length=100)
    line: str = Field(min_length=1, max_length=300)
    postcode: str = Field(pattern=r"^[0-9]{6}$")


class DeliveryIn(Strict):
    method: DeliveryMethod
    address: AddressIn | None = None
    store_id: str | None = Field(default=None, max_length=32)
    carrier: str | None = Field(default=None, pattern=r"^(cdek|post)$")

    @model_validator(mode="after")
    def _needs(self) -> "DeliveryIn":
        if self.method == DeliveryMethod.pickup:
            if not self.store_id:
                raise ValueError("store_id is required for pickup")
        elif self.address is None:
            raise ValueError(f"address is required for {self.method.value} delivery")
        return self


class LineIn(Strict):
    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=1, le=99)


class PaymentIn(Strict):
    method: PaymentMethod = PaymentMethod.card


class OrderIn(Strict):
    channel: Channel
    customer: CustomerIn
    lines: list[LineIn] = Field(min_length=1, max_length=50)
    delivery: DeliveryIn
    payment: PaymentIn = PaymentIn()
    bonus_to_spend: int = Field(default=0, ge=0, description="kopecks of bonus to write off")
    promo_code: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _pay_on_pickup_only_at_a_store(self) -> "OrderIn":
        if self.payment.method == PaymentMethod.on_pickup and self.delivery.method != DeliveryMethod.pickup:
            raise ValueError("payment.method on_pickup needs delivery.method pickup (paid at the store's till)")
        return self


class TotalsOut(BaseModel):
    subtotal: int
    discount: int
    bonus_spent: int
    delivery: int
    total: int
    currency: str


class OrderCreated(BaseModel):
    order_id: str
    status: str
    totals: TotalsOut | None
    payment_url: str | None
    links: dict[str, str]


class CancelIn(Strict):
    reason: str = Field(min_length=1, max_length=500)
    by: str = Field(default="customer", pattern=r"^(customer|operator|store)$")


class Page(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class ReservationIn(Strict):
    """Click & reserve: hold items at a store, pay at the till when collecting."""

    channel: Channel = Channel.web
    store_id: str = Field(min_length=1, max_length=32)
    customer: CustomerIn
    lines: list[LineIn] = Field(min_length=1, max_length=20)
    hold_minutes: float | None = Field(
        default=None, gt=0, le=60 * 24 * 14,
        description="a shorter hold than the store's pickup window (e.g. the store tablet holding an item for an hour)")


class ReservationCreated(BaseModel):
    reservation_id: str
    status: str
    store_id: str
    amount: int
    currency: str
    links: dict[str, str]
