"""One settings object for Orkestr, read once at start-up (prefix ``ORKESTR_``).

Defaults are the embedded ones used by ``make run``: everything on loopback, the
sandbox standing in for every outside system. Production sets the URLs and
credentials of the real systems through the environment or secret files
(``ORKESTR_SECRETS_DIR``: one file per setting, named like the variable, e.g.
``/run/secrets/orkestr_erp_password``).

Ports and the URLs made of them move together: ``ORKESTR_PORT_BASE=N`` puts the API on N,
the sandbox on N+1, Temporal on N+2, its web UI on N+3 and the worker's metrics on N+4, and
every URL that is not set explicitly follows (``public_url`` follows the API port, the seven
system URLs follow the sandbox). A variable set explicitly always wins.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SANDBOX_DEFAULT = "http://127.0.0.1:8100"
#: port = base + offset under ORKESTR_PORT_BASE (README: "Ports")
PORT_OFFSETS = {"api_port": 0, "sandbox_port": 1, "temporal_port": 2, "temporal_ui_port": 3, "metrics_port": 4}
#: the outside systems the sandbox simulates: setting -> path under the sandbox's URL
SANDBOX_SYSTEMS = {"erp_url": "erp", "acquiring_url": "acquiring", "loyalty_url": "loyalty", "cdek_url": "cdek",
                   "post_url": "post", "pos_url": "pos", "notify_url": "notify"}
#: secrets with a development default: production refuses to start with that default
DEV_SECRETS = ("erp_password", "acquiring_password", "acquiring_callback_secret", "loyalty_password",
               "cdek_client_secret", "post_token", "post_password", "pos_token", "notify_token",
               "courier_webhook_secret", "pos_callback_token", "support_phone_salt")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORKESTR_", env_file=".env", extra="ignore")

    # --- runtime ---------------------------------------------------------------------------
    env: Literal["dev", "prod"] = "dev"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    #: where `orkestr run` keeps PostgreSQL, Temporal and its state file (under a port base:
    #: ``.orkestr/port-<base>``, so two stacks side by side keep apart)
    data_dir: Path = Path(".orkestr")
    #: moves every port and the URLs made of them (see the module docstring); empty: the defaults
    port_base: int | None = Field(default=None, ge=1024, le=65530)
    #: a directory of secret files, one per setting (``orkestr_erp_password``...): Docker/Kubernetes secrets
    secrets_dir: Path | None = None

    # --- Temporal ----------------------------------------------------------------------------
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    #: start the embedded dev server in `orkestr run` (off when pointing at a cluster)
    temporal_embedded: bool = True
    task_queue: str = "orkestr"
    #: a stopping worker lets running activities finish for this long, then cancels them
    worker_shutdown_seconds: int = 10
    otel_enabled: bool = False

    # --- PostgreSQL --------------------------------------------------------------------------
    #: empty: `orkestr run` starts the embedded PostgreSQL under data_dir/pg
    database_url: str = ""
    db_pool_size: int = 10

    # --- API -----------------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    #: how outside systems reach Orkestr's callback endpoints
    public_url: str = "http://127.0.0.1:8000"
    metrics_port: int = 9464

    # --- the sandbox (simulated outside systems) ---------------------------------------------------
    sandbox_enabled: bool = True
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = 8100
    sandbox_auto: bool = True
    sandbox_auto_delay_s: float = 3.0
    sandbox_seed: int = 42
    sandbox_products: int = 2000
    #: the sandbox's state file; empty: ``{data_dir}/sandbox.db``; ``memory``: not kept
    sandbox_state: str = ""
    #: the sandbox's URL as a browser sees it (the payment page of ``payment_url``); empty: from host and port
    sandbox_public_url: str = ""

    # --- outside systems -------------------------------------------------------------------
    erp_url: str = f"{SANDBOX_DEFAULT}/erp"
    erp_user: str = "orkestr"
    erp_password: str = "orkestr"

    acquiring_url: str = f"{SANDBOX_DEFAULT}/acquiring"
    acquiring_user: str = "orkestr-api"
    acquiring_password: str = "orkestr"
    #: shared secret for the callback checksum (HMAC-SHA256)
    acquiring_callback_secret: str = "dev-callback-secret"

    loyalty_url: str = f"{SANDBOX_DEFAULT}/loyalty"
    loyalty_user: str = "orkestr"
    loyalty_password: str = "orkestr"

    cdek_url: str = f"{SANDBOX_DEFAULT}/cdek"
    cdek_client_id: str = "orkestr"
    cdek_client_secret: str = "orkestr"

    post_url: str = f"{SANDBOX_DEFAULT}/post"
    post_token: str = "dev-post-token"
    post_login: str = "orkestr"
    post_password: str = "orkestr"

    pos_url: str = f"{SANDBOX_DEFAULT}/pos"
    pos_token: str = "dev-pos-token"

    notify_url: str = f"{SANDBOX_DEFAULT}/notify"
    notify_token: str = "dev-notify-token"

    #: secret segment in the courier webhook URL (CDEK webhooks carry no signature)
    courier_webhook_secret: str = "dev-courier-secret"
    #: shared token the store POS presents when it reports events
    pos_callback_token: str = "dev-pos-callback-token"

    http_timeout_s: float = 10.0
    #: where the bank sends the customer's browser after paying; empty: ``{public_url}/v1/payment-return``
    payment_return_url: str = ""

    # --- business defaults -----------------------------------------------------------------
    currency: str = "RUB"
    payment_window_minutes: int = 20
    payment_poll_minutes: int = 5
    #: Russian Post tracking is polled (it has no webhooks): every N minutes; empty: 2 in dev, 240 in prod
    post_poll_minutes: int | None = Field(default=None, ge=1)
    return_window_days: int = 14
    #: a return whose goods reach neither a carrier nor the store within this many days is abandoned
    return_receipt_days: int = 14
    return_inspection_reminder_hours: int = 24
    #: domain.refunds.DeliveryRefundPolicy: refund delivery with the return of the last unit, or never
    return_delivery_refund: Literal["when_all_returned", "never"] = "when_all_returned"
    pickup_window_days: int = 3
    assembly_sla_ship_minutes: int = 120
    assembly_sla_pickup_minutes: int = 30
    #: create the ERP sync schedules at worker start-up (the initial import runs regardless)
    erp_sync_schedules: bool = True
    erp_sync_full_every_minutes: int = 60
    erp_sync_delta_every_seconds: int = 60
    #: the sourcing rule set the worker loads (``active.toml`` + ``history/``; ``orkestr rules``)
    rules_dir: str = "rules"

    support_phone_salt: str = Field(default="orkestr-dev-salt")

    def sandbox_state_path(self) -> str | None:
        """Where the sandbox keeps its state across restarts (``sandbox.state``): the
        ``sandbox_state`` setting, else ``{data_dir}/sandbox.db``; ``memory`` keeps nothing."""
        if self.sandbox_state.strip().lower() == "memory":
            return None
        return self.sandbox_state.strip() or str(self.data_dir / "sandbox.db")

    @model_validator(mode="after")
    def _derive(self) -> "Settings":
        """Ports from the port base, URLs from ports, in that order; what was set explicitly stays."""
        given = set(self.model_fields_set)

        def derive(name: str, value: Any) -> None:
            if name not in given:
                object.__setattr__(self, name, value)

        if self.port_base is not None:
            for name, offset in PORT_OFFSETS.items():
                if name != "temporal_port":
                    derive(name, self.port_base + offset)
            if "temporal_address" not in given:
                derive("temporal_address", f"127.0.0.1:{self.port_base + PORT_OFFSETS['temporal_port']}")
            derive("data_dir", Path(".orkestr") / f"port-{self.port_base}")
        derive("public_url", f"http://{_reachable(self.api_host)}:{self.api_port}")
        for name, path in SANDBOX_SYSTEMS.items():
            derive(name, f"http://{_reachable(self.sandbox_host)}:{self.sandbox_port}/{path}")
        derive("post_poll_minutes", 2 if self.env == "dev" else 240)
        if self.env == "prod":
            left = [f"ORKESTR_{name.upper()}" for name in DEV_SECRETS
                    if getattr(self, name) == type(self).model_fields[name].default]
            if left:
                raise ValueError(f"production needs real secrets: {', '.join(left)} still have their "
                                 "development defaults (set them in the environment or ORKESTR_SECRETS_DIR)")
        return self

    def sandbox_url(self) -> str:
        """The sandbox's base URL as a browser sees it (payment pages)."""
        return self.sandbox_public_url.rstrip("/") or f"http://{_reachable(self.sandbox_host)}:{self.sandbox_port}"

    def return_url(self) -> str:
        return self.payment_return_url or f"{self.public_url.rstrip('/')}/v1/payment-return"

    @property
    def temporal_port(self) -> int:
        return int(self.temporal_address.rpartition(":")[2])


def _reachable(host: str) -> str:
    """A bind address as a client dials it (0.0.0.0 / :: listen everywhere; dial loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment (and ``ORKESTR_SECRETS_DIR``) once."""
    secrets = os.environ.get("ORKESTR_SECRETS_DIR") or None
    return Settings(_secrets_dir=secrets)
