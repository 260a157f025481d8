"""The storefront / operator / support HTTP API (FastAPI). Thin: validate, start/signal/update/query.

``uvicorn api.app:app`` builds it from settings; tests use ``create_app(settings, temporal=..., engine=...)``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api import errors
from observability import RequestMetrics, refresh_orders_gauge
from offline_docs import mount_offline_docs
from api.routes import callbacks, delivery, history, orders, products, reports, reservations, returns, stock, tasks
from settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, temporal: Client | None = None,
               engine: AsyncEngine | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from adapters.db import make_engine
        from adapters.temporal import connect

        own_engine = engine is None
        app.state.engine = engine or make_engine(settings.database_url, pool_size=settings.db_pool_size)
        app.state.temporal = temporal or await connect(settings)
        yield
        if own_engine:
            await app.state.engine.dispose()

    app = FastAPI(
        title="Orkestr",
        version="0.1.0",
        description="Omnichannel order orchestration: orders, returns and reservations as durable workflows.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(RequestMetrics)
    mount_offline_docs(app)  # /docs and /redoc from a package: they work with no internet
    errors.install(app)
    for module in (orders, history, products, callbacks, stock, delivery, reports, tasks, returns, reservations):
        app.include_router(module.router)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        await refresh_orders_gauge(app.state.engine)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/payment-return", tags=["orders"], response_class=PlainTextResponse)
    async def payment_return() -> str:
        return "Спасибо! Статус заказа обновится, как только банк подтвердит оплату."

    return app


def __getattr__(name: str) -> Any:  # `uvicorn api.app:app` without building at import time
    if name == "app":
        from observability import configure_logging

        s = get_settings()
        configure_logging(s.log_format, s.log_level)
        return create_app(s)
    raise AttributeError(name)
