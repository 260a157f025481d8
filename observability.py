"""Logging (structlog: JSON in production, pretty in a terminal) and Prometheus metrics."""

from __future__ import annotations

import logging
import sys

import structlog
from prometheus_client import Counter, Histogram

ADAPTER_CALLS = Histogram(
    "orkestr_adapter_call_seconds",
    "Latency of calls to outside systems",
    ["system", "operation", "outcome"],
)
ORDERS_BY_STATUS = Counter(
    "orkestr_order_status_changes_total", "Order status changes", ["status", "channel"]
)
STEP_DURATION = Histogram(
    "orkestr_activity_seconds", "Activity execution time", ["activity", "outcome"]
)
SLA_BREACHES = Counter("orkestr_sla_breaches_total", "SLA breaches", ["kind", "location"])


def configure_logging(fmt: str = "auto", level: str = "INFO") -> None:
    """Configure structlog once per process. ``auto`` is pretty on a TTY and JSON elsewhere."""
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer = (
        structlog.dev.ConsoleRenderer()
        if fmt == "console"
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper())
    for noisy in ("httpx", "httpcore"):  # every request is already logged by adapters.http
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
