"""One process that mounts every simulated outside system (``/erp``, ``/acquiring``, ...).

``uvicorn sandbox.app:app`` serves it with settings from the environment;
tests build their own with ``create_app(SandboxConfig(...))``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI

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
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
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

    @app.get("/sandbox/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "systems": sorted(sims), "auto": config.auto}

    return app


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
