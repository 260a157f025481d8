"""Stand-ins for the tooling tests: refusing variants of the World's activities and the ERP imports."""

from __future__ import annotations

from typing import Any, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from fakes import World
from contracts.steps import BookedShipment, ErpOrderExport, ErrorType, ImportResult, ShipmentBookingRequest


def refusing(world: World, *, erp_refusals: int = 0, courier_refusals: int = 0) -> list[Callable[..., Any]]:
    """The World's activities, but the ERP export / courier booking refuse the first N calls
    (a business refusal: non-retryable, so the workflow parks the step)."""
    acts = world.activities()
    left = {"export_order": erp_refusals, "book_shipment": courier_refusals}

    def name(a: Any) -> str:
        return getattr(a, "__temporal_activity_definition").name

    by_name = {name(a): a for a in acts}

    @activity.defn(name="export_order")
    async def export_order(req: ErpOrderExport) -> None:
        world.calls["export_order_attempts"] += 1
        if left["export_order"] > 0:
            left["export_order"] -= 1
            raise ApplicationError("erp refused export_order: Контрагент заблокирован", "blocked",
                                   type=ErrorType.ERP_REFUSED, non_retryable=True)
        await by_name["export_order"](req)

    @activity.defn(name="book_shipment")
    async def book_shipment(req: ShipmentBookingRequest) -> BookedShipment:
        world.calls["book_shipment_attempts"] += 1
        if left["book_shipment"] > 0:
            left["book_shipment"] -= 1
            raise ApplicationError("cdek refused create_order: Адрес получателя не найден", "v2_entity_invalid",
                                   type=ErrorType.COURIER_REFUSED, non_retryable=True)
        return await by_name["book_shipment"](req)

    replaced = {"export_order": export_order, "book_shipment": book_shipment}
    return [replaced.get(name(a), a) for a in acts]


def erp_imports() -> list[Callable[..., Any]]:
    @activity.defn(name="import_locations")
    async def import_locations() -> ImportResult:
        return ImportResult(rows=12)

    @activity.defn(name="import_products")
    async def import_products() -> ImportResult:
        return ImportResult(rows=40)

    @activity.defn(name="import_prices")
    async def import_prices() -> ImportResult:
        return ImportResult(rows=80)

    @activity.defn(name="import_stock_full")
    async def import_stock_full() -> ImportResult:
        return ImportResult(rows=480, version=7)

    @activity.defn(name="import_stock_delta")
    async def import_stock_delta() -> ImportResult:
        return ImportResult(rows=3, version=9)

    return [import_locations, import_products, import_prices, import_stock_full, import_stock_delta]
