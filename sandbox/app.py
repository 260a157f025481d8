"""One process that mounts every simulated outside system (``/erp``, ``/acquiring``, ...).

``uvicorn sandbox.app:app`` serves it with settings from the environment;
tests build their own with ``create_app(SandboxConfig(...))``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.common import Background, SandboxConfig

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
]
# SIMULATORS-END


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    import importlib

    config = config or config_from_settings()
    bg = Background()
    sims: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        for sim in sims.values():
            start = getattr(sim, "start", None)
            if start is not None:
                await start()
        yield
        await bg.close()

    app = FastAPI(title="Orkestr sandbox: simulated ERP, acquiring, loyalty, couriers, POS, notifications", lifespan=lifespan)
    for module_name, class_name in SIMULATORS:
        module = importlib.import_module(f"sandbox.{module_name}")
        sim = getattr(module, class_name)(config, bg)
        sims[module_name] = sim
        app.include_router(module.router(sim))
        app.include_router(sim.faults.router())
    app.state.sims = sims
    app.state.config = config
    _wire_errors(app, [importlib.import_module(f"sandbox.{m}") for m, _c in SIMULATORS])

    @app.get("/sandbox/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "systems": sorted(sims), "auto": config.auto}

    return app


def _wire_errors(app: FastAPI, modules: list[Any]) -> None:
    """Errors on a system's wire paths (an unknown route, a wrong method, an injected fault, a
    malformed parameter) answer in that system's own error shape, as its clients expect: each
    module may define ``WIRE_PREFIXES`` and ``wire_error(path, status, message) -> Response``.
    Drive endpoints (``/sandbox/...``) keep FastAPI's ``{"detail": ...}``."""
    shapers = [(prefix, m.wire_error) for m in modules for prefix in getattr(m, "WIRE_PREFIXES", ())]

    def shaper(path: str) -> Any:
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
    )


def __getattr__(name: str) -> Any:  # `uvicorn sandbox.app:app` without building at import time
    if name == "app":
        return create_app()
    raise AttributeError(name)
