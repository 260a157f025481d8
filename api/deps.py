"""Annotated dependencies: the Temporal client, the engine, the repositories and the services (all
built from what the lifespan made: nothing at import)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from adapters.catalog import CatalogRepo
from adapters.ledger import Ledger
from adapters.orders_repo import IdempotencyRepo, OrdersRepo
from services.delivery import DeliveryService
from services.orders import OrderService
from services.reservations import ReservationService
from services.returns import ReturnService
from services.tasks import TaskService
from settings import Settings


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _temporal(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


def _engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


SettingsDep = Annotated[Settings, Depends(_settings)]
TemporalDep = Annotated[Client, Depends(_temporal)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]


def _orders(request: Request) -> OrdersRepo:
    return OrdersRepo(request.app.state.engine, request.app.state.settings.support_phone_salt)


def _catalog(engine: EngineDep) -> CatalogRepo:
    return CatalogRepo(engine)


def _ledger(engine: EngineDep) -> Ledger:
    return Ledger(engine)


def _idempotency(engine: EngineDep) -> IdempotencyRepo:
    return IdempotencyRepo(engine)


OrdersDep = Annotated[OrdersRepo, Depends(_orders)]
CatalogDep = Annotated[CatalogRepo, Depends(_catalog)]
LedgerDep = Annotated[Ledger, Depends(_ledger)]
IdempotencyDep = Annotated[IdempotencyRepo, Depends(_idempotency)]


def _order_service(request: Request) -> OrderService:
    return OrderService(request.app.state.temporal, request.app.state.engine, request.app.state.settings)


def _return_service(request: Request) -> ReturnService:
    return ReturnService(request.app.state.temporal, request.app.state.engine, request.app.state.settings)


def _reservation_service(request: Request) -> ReservationService:
    return ReservationService(request.app.state.temporal, request.app.state.engine, request.app.state.settings)


def _task_service(request: Request) -> TaskService:
    return TaskService(request.app.state.temporal, request.app.state.engine)


def _delivery_service(engine: EngineDep) -> DeliveryService:
    return DeliveryService(engine)


OrderServiceDep = Annotated[OrderService, Depends(_order_service)]
ReturnServiceDep = Annotated[ReturnService, Depends(_return_service)]
ReservationServiceDep = Annotated[ReservationService, Depends(_reservation_service)]
TaskServiceDep = Annotated[TaskService, Depends(_task_service)]
DeliveryServiceDep = Annotated[DeliveryService, Depends(_delivery_service)]
