"""An operator's edit of an order's lines before assembly starts (``OrderWorkflow.edit_lines``).

The edit says the new quantity of each SKU it touches: ``qty`` 0 removes the line, a SKU the
order does not have yet adds it (the API fills its catalog name and price). Lines it does not
name stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.order import OrderLine, Totals


@dataclass(frozen=True)
class LineEdit:
    sku: str
    qty: int
    #: from the catalog (filled by the API); None: the SKU is unknown
    name: str | None = None
    unit_price: int | None = None


@dataclass(frozen=True)
class OrderEdit:
    lines: list[LineEdit]
    by: str
    reason: str = ""


@dataclass(frozen=True)
class EditOutcome:
    order_id: str
    n: int
    lines: list[OrderLine]
    totals: Totals
    message: str
    #: a new payment link when the order was awaiting payment and its total changed
    payment_url: str | None = None
    changes: list[str] = field(default_factory=list)
    #: a paid order made dearer: the difference to pay by ``payment_url``; the edit applies once paid
    pending_payment: int = 0


@dataclass(frozen=True)
class EditHold:
    """The order asks a shipment to stop its store before the lines change (edit ``n``)."""

    n: int


@dataclass(frozen=True)
class EditAnswer:
    """A shipment's answer to :class:`EditHold`: ``ok`` means its POS task is cancelled and it
    waits for the order's ``revise``; otherwise ``reason`` says why not (e.g. already assembled)."""

    shipment_id: str
    n: int
    ok: bool
    reason: str = ""
    #: what the shipment assembles and holds now (it may have moved or been revised since placement)
    lines: list[OrderLine] = field(default_factory=list)
    reservation_keys: list[str] = field(default_factory=list)
