"""Annotated dependencies: the Temporal client, the engine and the repositories (built in the lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from adapters.catalog import CatalogRepo
from adapters.ledger import Ledger
from adapters.orders_repo import IdempotencyRepo, OrdersRepo
from settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _temporal(request: Request) -> Client:
    return request.app.state.temporal


def _engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


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
