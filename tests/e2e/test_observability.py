"""Observability of the worker: activity logs carry the order's context, step durations and status
changes are counted, the SDK runtime's metrics and ours are served together on the worker's /metrics,
and tracing says clearly when it cannot be enabled."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import structlog
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from contracts.steps import StoreMessage
from observability import make_activity_interceptor, metrics_app, tracing_interceptors, worker_runtime

pytestmark = pytest.mark.e2e


@activity.defn(name="observability_ping")
async def ping(n: int) -> int:
    structlog.get_logger("test").info("ping.done", n=n)
    if n < 0:
        from temporalio.exceptions import ApplicationError

        raise ApplicationError("negative", type="Refused", non_retryable=True)
    return n + 1


@activity.defn(name="notify_store")
async def notify_store(msg: StoreMessage) -> None:
    return None


@workflow.defn(name="ObservabilityProbe", sandboxed=False)
class Probe:
    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.execute_activity("notify_store", StoreMessage(
            message_id="fulfillment-X-1:assemble:reminder:1", location_id="MSK-OBS", task_id="t", text="late"),
            start_to_close_timeout=timedelta(seconds=10))
        return await workflow.execute_activity("observability_ping", n, start_to_close_timeout=timedelta(seconds=10))


async def test_worker_metrics_and_activity_log_context(dev_env: Any, serve: Any) -> None:
    from conftest import free_port

    sdk_address = f"127.0.0.1:{free_port()}"
    client = await Client.connect(dev_env.client.service_client.config.target_host, runtime=worker_runtime(sdk_address))
    queue = f"obs-{uuid.uuid4().hex[:8]}"
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        async with Worker(client, task_queue=queue, workflows=[Probe], activities=[ping, notify_store],
                          interceptors=[make_activity_interceptor()]):
            assert await client.execute_workflow(Probe.run, 41, id=f"order-OBS{queue}", task_queue=queue) == 42
    line = next(e for e in logs if e["event"] == "ping.done")
    assert line["order_id"] == f"OBS{queue}" and line["workflow_id"] == f"order-OBS{queue}"
    assert line["activity"] == "observability_ping" and line["attempt"] == 1 and line["run_id"]

    async with serve(metrics_app(f"http://{sdk_address}/metrics")) as served, httpx.AsyncClient() as http:
        r = await http.get(f"{served.url}/metrics")
    assert r.status_code == 200
    assert 'orkestr_activity_seconds_count{activity="observability_ping",outcome="ok"}' in r.text
    assert "temporal_" in r.text  # the SDK runtime's own metrics (task latencies, pollers, ...)
    from test_dashboard import SDK_METRICS

    assert {m for m in SDK_METRICS if m not in r.text} == set()  # those docs/grafana-orkestr.json uses
    assert "orkestr_adapter_call_seconds" in r.text
    assert 'orkestr_sla_breaches_total{kind="assembly",location="MSK-OBS"} 1.0' in r.text


async def test_order_status_changes_and_refusals_are_counted(stack: Any) -> None:
    """After the other e2e tests in this session, the stack's worker has counted what it did."""
    from prometheus_client import REGISTRY

    from helpers import fresh_sku, order_body

    sku = await fresh_sku(stack, {"WH-ONLINE": 1})
    before = REGISTRY.get_sample_value("orkestr_order_status_changes_total",
                                       {"status": "awaiting_payment", "channel": "web"}) or 0
    r = await stack.api.post("/v1/orders", json=order_body(sku, 1))
    assert r.status_code == 201, r.text
    await stack.wait_order(r.json()["order_id"], "awaiting_payment")
    after = REGISTRY.get_sample_value("orkestr_order_status_changes_total",
                                      {"status": "awaiting_payment", "channel": "web"})
    assert after == before + 1
    assert (REGISTRY.get_sample_value("orkestr_activity_seconds_count",
                                      {"activity": "register_payment", "outcome": "ok"}) or 0) >= 1
    acquiring = [s for m in REGISTRY.collect() if m.name == "orkestr_adapter_call_seconds" for s in m.samples
                 if s.name.endswith("_count") and s.labels.get("system") == "acquiring" and s.labels["outcome"] == "ok"]
    assert acquiring and sum(s.value for s in acquiring) >= 1
    await stack.api.post(f"/v1/orders/{r.json()['order_id']}/cancel", json={"reason": "test over", "by": "test"})


def test_tracing_is_off_by_default_and_on_when_asked() -> None:
    assert tracing_interceptors(False) == []
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed: pip install -e '.[otel]'")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.contrib.opentelemetry import TracingInterceptor

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())  # no exporter: keep the test session's output clean

    assert [type(i) for i in tracing_interceptors(True)] == [TracingInterceptor]


def test_tracing_without_the_packages_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_otel(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry") or name == "temporalio.contrib.opentelemetry":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_otel)
    with structlog.testing.capture_logs() as logs:
        assert tracing_interceptors(True) == []
    err = next(e for e in logs if e["event"] == "otel.unavailable")
    assert err["log_level"] == "error" and "pip install 'orkestr[otel]'" in err["hint"]
