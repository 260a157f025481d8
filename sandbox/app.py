"""One process that mounts every simulated outside system (``/erp``, ``/acquiring``, ...).

``uvicorn sandbox.app:app`` serves it with settings from the environment;
tests build their own with ``create_app(SandboxConfig(...))``.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import structlog

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from offline_docs import mount_offline_docs
from sandbox.common import Background, SandboxConfig
from sandbox.state import FLUSH_EVERY_S, Outbox, Persisted, RetryPolicy, StateStore

log = structlog.get_logger("sandbox")

# Each simulator: (module, state class name). The module provides `router(sim)`.
# SIMULATORS-START
SIMULATORS: list[tuple[str, str]] = [
    ("erp", "ErpSim"),
    ("pos", "PosSim"),
    ("acquiring", "AcquiringSim"),
    ("loyalty", "LoyaltySim"),
    ("notify", "NotifySim"),
    ("cdek", "CdekSim"),
    ("post", "PostSim"),
    ("fiscal", "FiscalSim"),
    ("ozon", "OzonSim"),
    ("wildberries", "WildberriesSim"),
]
# SIMULATORS-END


#: the first path segment of a request (``/cdek/...``, ``/sandbox/courier/...``) → the system whose
#: state it may change (saved before the answer goes out)
PATH_SYSTEMS = {"courier": "cdek", "notifications": "notify"}


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    import importlib

    config = config or config_from_settings()
    store = StateStore(config.state_path)
    outbox = Outbox(
        store,
        RetryPolicy(
            first_delay_s=config.callback_first_delay_s,
            max_delay_s=config.callback_max_delay_s,
            max_attempts=config.callback_max_attempts,
            window_s=config.callback_window_s,
        ),
    )
    bg = Background(outbox)
    sims: dict[str, Any] = {}

    def save(everything: bool = False) -> None:
        """Write what changed in the systems marked changed (all of them: ``everything``)."""
        names = set(sims) if everything else set(bg.dirty)
        bg.dirty -= names
        for name in names:
            sim = sims.get(name)
            if isinstance(sim, Persisted):
                store.save(name, sim)

    async def flush_forever() -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                save()
            except Exception:  # keep flushing; the next round may succeed
                log.exception("sandbox.state_save_failed")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for sim in sims.values():
            start = getattr(sim, "start", None)
            if start is not None:
                await start()
        outbox.resume()
        bg.spawn(flush_forever())
        yield
        await bg.close()
        await outbox.close()
        save(everything=True)
        store.close()

    app = FastAPI(title="Orkestr sandbox: simulated ERP, acquiring, loyalty, couriers, POS, notifications", lifespan=lifespan)
    for module_name, class_name in SIMULATORS:
        module = importlib.import_module(f"sandbox.{module_name}")
        sim = getattr(module, class_name)(config, bg)
        if isinstance(sim, Persisted) and (state := store.load(module_name)) is not None:
            sim.restore(state)
            log.info("sandbox.state_restored", system=module_name, path=str(config.state_path))
        sims[module_name] = sim
        app.include_router(module.router(sim))
        app.include_router(sim.faults.router())
    mount_offline_docs(app)  # /docs and /redoc with no internet
    app.state.sims = sims
    app.state.config = config
    app.state.outbox = outbox
    _wire_errors(app, [importlib.import_module(f"sandbox.{m}") for m, _c in SIMULATORS])

    @app.middleware("http")
    async def save_before_answering(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            parts = request.url.path.strip("/").split("/")
            name = parts[1] if parts[0] == "sandbox" and len(parts) > 1 else parts[0]
            name = PATH_SYSTEMS.get(name, name)
            bg.dirty.update([name] if name in sims else sims)
            save()
        return response

    @app.get("/sandbox/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "systems": sorted(sims), "auto": config.auto, "state": str(config.state_path or "memory")}

    @app.get("/sandbox/outbox", tags=["sandbox"], summary="Callbacks and webhooks still being retried")
    async def pending() -> list[dict[str, Any]]:
        return outbox.pending()

    return app


def _wire_errors(app: FastAPI, modules: list[Any]) -> None:
    """Errors on a system's wire paths (an unknown route, a wrong method, an injected fault, a
    malformed parameter) answer in that system's own error shape, as its clients expect: each
    module may define ``WIRE_PREFIXES`` and ``wire_error(path, status, message) -> Response``.
    Drive endpoints (``/sandbox/...``) keep FastAPI's ``{"detail": ...}``."""
    shapers = [(prefix, m.wire_error) for m in modules for prefix in getattr(m, "WIRE_PREFIXES", ())]

    def shaper(path: str) -> Callable[[str, int, str], Response] | None:
        return next((fn for prefix, fn in shapers if path.startswith(prefix)), None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        fn = shaper(request.url.path)
        if fn is None:
            return await http_exception_handler(request, exc)
        return fn(request.url.path, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        fn = shaper(request.url.path)
        if fn is None:
            return await request_validation_exception_handler(request, exc)
        fields = "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        return fn(request.url.path, 400, f"Invalid request: {fields}")


def config_from_settings() -> SandboxConfig:
    from settings import get_settings

    s = get_settings()
    return SandboxConfig(
        auto=s.sandbox_auto,
        auto_delay_s=s.sandbox_auto_delay_s,
        orkestr_url=s.public_url,
        public_url=s.sandbox_url(),
        acquiring_callback_secret=s.acquiring_callback_secret,
        pos_callback_token=s.pos_callback_token,
        courier_webhook_secret=s.courier_webhook_secret,
        seed=s.sandbox_seed,
        products=s.sandbox_products,
        state_path=s.sandbox_state_path(),
    )


def __getattr__(name: str) -> Any:  # `uvicorn sandbox.app:app` without building at import time
    if name == "app":
        return create_app()
    raise AttributeError(name)
