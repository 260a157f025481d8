"""The worker: the one place where every client is built and every activity is registered.

``python -m worker`` (or ``orkestr worker``) runs it against ``ORKESTR_TEMPORAL_ADDRESS``;
tests call ``build_worker`` with their own client and settings.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, AsyncIterator, Callable

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.couriers import CourierActivities
from activities.delivery import DeliveryActivities
from activities.erp import ErpActivities
from activities.loyalty import LoyaltyActivities
from activities.notify import NotifyActivities
from activities.orders import ProjectionActivities
from activities.payments import PaymentActivities
from activities.pos import PosActivities
from activities.reservations import ReservationActivities
from activities.returns import ReturnActivities
from activities.stock import StockActivities
from activities.tasks import TaskActivities
from adapters.acquiring import AcquiringClient
from adapters.catalog import CatalogRepo
from adapters.couriers import CdekClient, CourierRegistry, RussianPostClient
from adapters.db import make_engine
from adapters.delivery import DeliveryRepo
from adapters.erp import ErpClient
from adapters.ledger import Ledger
from adapters.loyalty import LoyaltyClient
from adapters.notify import NotificationClient
from adapters.orders_repo import OrdersRepo
from adapters.pos import PosClient
from adapters.reservations_repo import ReservationsRepo
from adapters.tasks_repo import TasksRepo
from adapters.temporal import connect
from observability import make_activity_interceptor, serve_metrics, worker_runtime
from adapters.returns_repo import ReturnsRepo
from adapters.rules_store import RulesStore
from adapters.shortage_history import ShortageHistoryRepo
from settings import Settings, get_settings
from workflows.erp_sync import ErpStockSyncWorkflow
from workflows.registry import WORKFLOWS

log = structlog.get_logger("worker")


@dataclass
class Wiring:
    """Every client and activity object, built once from settings."""

    engine: AsyncEngine
    activities: list[Callable[..., Any]]
    local_activities: list[Callable[..., Any]]


@asynccontextmanager
async def wiring(settings: Settings, engine: AsyncEngine | None = None) -> AsyncIterator[Wiring]:
    async with AsyncExitStack() as stack:
        own_engine = engine is None
        engine = engine or make_engine(settings.database_url, pool_size=settings.db_pool_size)
        if own_engine:
            stack.push_async_callback(engine.dispose)

        def http(base_url: str) -> httpx.AsyncClient:
            client = httpx.AsyncClient(base_url=base_url, timeout=settings.http_timeout_s)
            stack.push_async_callback(client.aclose)
            return client

        public = settings.public_url.rstrip("/")
        ledger = Ledger(engine)
        catalog = CatalogRepo(engine)
        stock = StockActivities(ledger, rules=RulesStore(settings.rules_dir), history=ShortageHistoryRepo(engine))
        projection = ProjectionActivities(OrdersRepo(engine, settings.support_phone_salt))
        payments = PaymentActivities(
            AcquiringClient(http(settings.acquiring_url), user=settings.acquiring_user,
                            password=settings.acquiring_password),
            callback_url=f"{public}/callbacks/acquiring",
            return_url=settings.return_url(),
        )
        loyalty = LoyaltyActivities(LoyaltyClient(http(settings.loyalty_url), user=settings.loyalty_user,
                                                  password=settings.loyalty_password))
        notify = NotifyActivities(NotificationClient(http(settings.notify_url), token=settings.notify_token))
        pos = PosActivities(PosClient(http(settings.pos_url), token=settings.pos_token),
                            callback_url=f"{public}/callbacks/pos")
        courier_registry = CourierRegistry([
            CdekClient(http(settings.cdek_url), client_id=settings.cdek_client_id,
                       client_secret=settings.cdek_client_secret),
            RussianPostClient(http(settings.post_url), token=settings.post_token,
                              login=settings.post_login, password=settings.post_password),
        ])
        couriers = CourierActivities(courier_registry)
        returns = ReturnActivities(ReturnsRepo(engine), ledger, courier_registry)
        erp = ErpActivities(ErpClient(http(settings.erp_url), user=settings.erp_user, password=settings.erp_password),
                            catalog, ledger, engine, currency=settings.currency)
        tasks = TaskActivities(TasksRepo(engine))
        local_acts: list[Callable[..., Any]] = [stock.load_stock_view, stock.reserve_stock, stock.rehold_stock, stock.release_stock, stock.consume_stock,
                      projection.save_order, returns.register_return, returns.save_return, returns.settle_return_refund,
                      returns.restock_return]
        reservations = ReservationActivities(ReservationsRepo(engine), ledger)
        local_acts += [reservations.save_reservation, reservations.settle_reservation,
                       DeliveryActivities(DeliveryRepo(engine)).load_carrier_rules]
        acts: list[Callable[..., Any]] = [
            payments.register_payment, payments.payment_status, payments.capture_payment,
            payments.reverse_payment, payments.refund_payment, payments.decline_payment,
            loyalty.price_cart, loyalty.begin_loyalty, loyalty.commit_loyalty, loyalty.rollback_loyalty,
            loyalty.return_bonus, loyalty.activate_bonus,
            notify.notify_customer,
            pos.create_pos_task, pos.cancel_pos_task, pos.notify_store,
            couriers.book_shipment, couriers.cancel_shipment, couriers.track_shipment,
            erp.export_order, erp.update_erp_order, erp.post_sale, erp.post_return, erp.import_locations, erp.import_products,
            erp.import_prices, erp.import_stock_full, erp.import_stock_delta,
            tasks.open_task, tasks.reassign_task, tasks.close_task,
            returns.post_return_code,
        ]
        yield Wiring(engine=engine, activities=acts, local_activities=local_acts)


def cache_sandbox_bytecode(workflows: list[type] | None = None) -> list[str]:
    """Write the bytecode of the packages that hold the workflows, when the interpreter writes none itself.

    Temporal's workflow sandbox executes a workflow's module (and what it imports without pass-through)
    afresh for every workflow run, through the ordinary import machinery, which reads ``__pycache__``
    when it is there. Under ``PYTHONDONTWRITEBYTECODE`` (set on the development machine) an editable
    install has none, so every order and every shipment compiled the workflow sources again: a fifth of
    the worker's CPU per order (``make bench e2e --profile``). The ``.pyc`` files go where Python would
    put them (``__pycache__``, or ``PYTHONPYCACHEPREFIX``) and are checked against the sources as usual;
    an install that compiled them (``pip install`` of the wheel, the image) is left as it is. Returns the
    directories compiled."""
    if not sys.dont_write_bytecode:
        return []  # Python caches what it imports by itself
    import compileall
    from pathlib import Path

    done = []
    for folder in sorted({str(Path(sys.modules[cls.__module__].__file__ or ".").parent)
                          for cls in (workflows or WORKFLOWS)}):
        if compileall.compile_dir(folder, quiet=2):
            done.append(folder)
        else:  # a read-only install without bytecode: slower, not wrong
            log.warning("worker.bytecode_not_written", folder=folder)
    return done


def build_worker(client: Client, settings: Settings, wired: Wiring, *, task_queue: str | None = None) -> Worker:
    cache_sandbox_bytecode()
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=wired.activities + wired.local_activities,
        max_concurrent_activities=100,
        interceptors=[make_activity_interceptor()],
        # on shutdown: stop polling, let running activities finish this long, then cancel them
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
    )


async def bootstrap(client: Client, settings: Settings, *, schedules: bool = True, initial_sync: bool = True) -> None:
    """Start-up chores, all idempotent: the courier webhook, the ERP sync schedules, a first import."""

    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
    )
    from temporalio.common import WorkflowIDConflictPolicy

    from workflows.erp_sync import SyncInput

    async with httpx.AsyncClient(base_url=settings.cdek_url, timeout=settings.http_timeout_s) as http:
        cdek = CdekClient(http, client_id=settings.cdek_client_id, client_secret=settings.cdek_client_secret)
        await cdek.register_webhook(f"{settings.public_url.rstrip('/')}/callbacks/couriers/cdek/"
                                    f"{settings.courier_webhook_secret}")
    if schedules:
        try:
            await client.create_schedule(
                "erp-sync-full",
                Schedule(
                    action=ScheduleActionStartWorkflow(ErpStockSyncWorkflow.run, SyncInput(mode="full"),
                                                       id="erp-sync-full", task_queue=settings.task_queue),
                    spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(
                        every=timedelta(minutes=settings.erp_sync_full_every_minutes))]),
                    policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
                ),
            )
        except ScheduleAlreadyRunningError:
            pass
        await start_delta_sync(client, settings)
    if initial_sync:
        handle = await client.start_workflow(
            ErpStockSyncWorkflow.run, SyncInput(mode="full"), id="erp-sync-initial", task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        result = await handle.result()
        log.info("erp.initial_sync", **result.__dict__)


DELTA_SYNC_ID = "erp-sync-delta"


async def start_delta_sync(client: Client, settings: Settings) -> None:
    """The one long-running delta sync (workflows.erp_sync): started if missing, told the current interval
    if running (signal-with-start). A delta *schedule* left by an older version is removed."""
    from temporalio.service import RPCError, RPCStatusCode

    from workflows.erp_sync import SyncInput

    try:
        await client.get_schedule_handle(DELTA_SYNC_ID).delete()
        log.info("erp.delta_schedule_removed", replaced_by=f"workflow {DELTA_SYNC_ID}")
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    every = settings.erp_sync_delta_every_seconds
    await client.start_workflow(
        ErpStockSyncWorkflow.run, SyncInput(mode="delta", every_seconds=every), id=DELTA_SYNC_ID,
        task_queue=settings.task_queue, start_signal="set_interval", start_signal_args=[every])


class CannotServe(Exception):
    """The worker cannot do its job at all (a port taken, Temporal unreachable): exit non-zero at once."""


def bind_metrics(host: str, port: int) -> socket.socket:
    """The metrics socket, bound before anything else starts: a taken port ends the worker at once
    (an error naming the port) instead of leaving a worker that serves no metrics."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise CannotServe(f"metrics port {host}:{port} (ORKESTR_METRICS_PORT) is taken: {err.strerror}") from err
    sock.setblocking(False)
    return sock


async def run_worker(settings: Settings | None = None) -> None:
    """Serve the task queue until SIGTERM/SIGINT, then drain: stop polling, let running activities finish
    within ``worker_shutdown_seconds``, cancel the rest (Temporal retries them elsewhere)."""
    settings = settings or get_settings()
    metrics_sock = bind_metrics(settings.api_host, settings.metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sdk_metrics = f"127.0.0.1:{_free_port()}"  # the SDK's exporter, folded into our /metrics
    try:
        client = await asyncio.wait_for(connect(settings, runtime=worker_runtime(sdk_metrics)), 30)
    except (asyncio.TimeoutError, RuntimeError, OSError) as err:
        raise CannotServe(f"cannot connect to Temporal at {settings.temporal_address}: {err}") from err
    async with wiring(settings) as wired:
        worker = build_worker(client, settings, wired)
        metrics = asyncio.create_task(serve_metrics(metrics_sock, f"http://{sdk_metrics}/metrics", stop))
        running = asyncio.create_task(worker.run())
        log.info("worker.started", task_queue=settings.task_queue, temporal=settings.temporal_address,
                 metrics=f"http://{settings.api_host}:{settings.metrics_port}/metrics")
        chores = asyncio.create_task(bootstrap(client, settings, schedules=settings.erp_sync_schedules))
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({running, metrics, stopping, chores}, return_when=asyncio.FIRST_COMPLETED)
        while done == {chores} and chores.exception() is None:  # the chores are done: serve on
            done, _ = await asyncio.wait({running, metrics, stopping}, return_when=asyncio.FIRST_COMPLETED)
        failed = next((t for t in (running, metrics, chores) if t in done and t.exception() is not None), None)
        started = time.monotonic()
        log.info("worker.draining", timeout_s=settings.worker_shutdown_seconds,
                 reason="signal" if stopping in done else f"{failed.get_name() if failed else 'a task'} ended")
        chores.cancel()
        stop.set()
        await worker.shutdown()
        await asyncio.gather(running, metrics, chores, return_exceptions=True)
        stopping.cancel()
        log.info("worker.stopped", drained_s=round(time.monotonic() - started, 2))
        error = failed.exception() if failed is not None else None
        if error is not None:
            raise error
        if metrics in done:
            raise CannotServe("the metrics server stopped")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> None:
    """``python -m worker``: exit 0 after a clean stop, 1 when it cannot serve or fails."""
    from observability import configure_logging

    s = get_settings()
    configure_logging(s.log_format, s.log_level)
    code = 0
    try:
        asyncio.run(run_worker(s))
    except CannotServe as err:
        log.error("worker.cannot_serve", error=str(err))
        code = 1
    except Exception as err:  # noqa: BLE001 - the process's last word: say what failed, exit non-zero
        log.exception("worker.failed", error=f"{type(err).__name__}: {err}")
        code = 1
    # the SDK's core runtime can crash at interpreter exit (temporalio/sdk-python#300): end deliberately
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
