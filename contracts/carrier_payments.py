"""What a carrier reports after handing a parcel over: units kept and refused (try-on, partial
buyout), money collected on delivery, and the carrier's cash-on-delivery registry it is settled
by. Kopecks throughout."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeptUnits:
    ware_key: str  # our SKU (``ware_key`` of the CDEK item)
    ordered: int
    kept: int

    @property
    def refused(self) -> int:
        return self.ordered - self.kept


@dataclass(frozen=True)
class DeliveryOutcome:
    """A delivered order as the carrier reports it (CDEK: ``GET /v2/orders/{uuid}`` after
    DELIVERED — items' ``delivery_amount``, ``delivery_detail.payment_info``)."""

    external_id: str  # the carrier's order uuid
    delivered: bool
    items: tuple[KeptUnits, ...] = ()
    collected: int = 0  # kopecks the courier / point took from the recipient
    payment_type: str | None = None  # CASH | CARD when something was collected
    delivered_on: str | None = None  # YYYY-MM-DD
    #: the carrier's return order taking the refused units back, when there are any
    return_order_id: str | None = None

    @property
    def partial(self) -> bool:
        return any(i.refused for i in self.items)


@dataclass(frozen=True)
class CodRegistryLine:
    tracking_number: str  # cdek_number
    collected: int  # payment_sum: what was taken from the recipient
    fee: int  # agent_commission_sum: the carrier's fee for transferring it
    transferred: int  # transfer_sum = collected − fee


@dataclass(frozen=True)
class CodRegistry:
    """The carrier's cash-on-delivery registry («реестр наложенных платежей»): one transfer to
    the seller covering several orders."""

    number: str
    payment_date: str  # YYYY-MM-DD
    total: int  # kopecks transferred
    payment_order: str
    lines: tuple[CodRegistryLine, ...]
