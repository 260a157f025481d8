"""One settings object for Orkestr, read once at start-up (prefix ``ORKESTR_``).

Defaults are the embedded ones used by ``make run``: everything on loopback, the
sandbox standing in for every outside system. Production sets the URLs and
credentials of the real systems through the environment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SANDBOX_DEFAULT = "http://127.0.0.1:8100"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORKESTR_", env_file=".env", extra="ignore")

    # --- runtime ---------------------------------------------------------------------------
    env: Literal["dev", "prod"] = "dev"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"
    data_dir: Path = Path(".orkestr")

    # --- Temporal ----------------------------------------------------------------------------
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    #: start the embedded dev server in `orkestr run` (off when pointing at a cluster)
    temporal_embedded: bool = True
    task_queue: str = "orkestr"
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

    # --- business defaults -----------------------------------------------------------------
    currency: str = "RUB"
    payment_window_minutes: int = 20
    payment_poll_minutes: int = 5
    return_window_days: int = 14
    #: a return whose goods reach neither a carrier nor the store within this many days is abandoned
    return_receipt_days: int = 14
    return_inspection_reminder_hours: int = 24
    #: models.refunds.DeliveryRefundPolicy: refund delivery with the return of the last unit, or never
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

    def sandbox_url(self) -> str:
        return f"http://{self.sandbox_host}:{self.sandbox_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
