"""Killing the worker in the middle of an order and starting it again finishes the order,
with no double hold, capture or accrual (the worker is a real separate process here)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from typing import Any, AsyncIterator

import httpx
import pytest

from conftest import ServedApp, free_port, stack_settings
from helpers import fresh_sku, next_phone, order_body, pay, task_for

pytestmark = pytest.mark.e2e


class ProcessStack:
    """Sandbox and API in this process; the worker as a child process we can kill."""

    def __init__(self, dev_env: Any, pg_url: str) -> None:
        self.dev_env = dev_env
        self.api_port, self.sb_port = free_port(), free_port()
        self.api_url, self.sandbox_url = f"http://127.0.0.1:{self.api_port}", f"http://127.0.0.1:{self.sb_port}"
        sb = self.sandbox_url
        self.settings = stack_settings(
            database_url=pg_url, temporal_address=dev_env.client.service_client.config.target_host,
            task_queue=f"crash-{uuid.uuid4().hex[:8]}", public_url=self.api_url, sandbox_auto=False,
            erp_url=f"{sb}/erp", acquiring_url=f"{sb}/acquiring", loyalty_url=f"{sb}/loyalty",
            cdek_url=f"{sb}/cdek", post_url=f"{sb}/post", pos_url=f"{sb}/pos", notify_url=f"{sb}/notify",
            erp_sync_schedules=False, log_format="json", metrics_port=free_port(),
        )
        self.worker: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name, value in self.settings.model_dump().items():
            if value is None:  # unset (e.g. no port base): leave it unset, "None" is not a value
                continue
            env[f"ORKESTR_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    def start_worker(self) -> None:
        self.worker = subprocess.Popen([sys.executable, "-m", "worker"], env=self.env(),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(10)
        self.worker = None


@pytest.fixture
async def proc_stack(dev_env: Any, engine: Any, pg_url: str) -> AsyncIterator[Any]:
    from api.app import create_app as create_api
    from sandbox.app import create_app as create_sandbox
    from sandbox.common import SandboxConfig
    from workflows.erp_sync import ErpStockSyncWorkflow

    ps = ProcessStack(dev_env, pg_url)
    s = ps.settings
    sb_app = create_sandbox(SandboxConfig(auto=False, orkestr_url=ps.api_url, public_url=ps.sandbox_url,
                                          acquiring_callback_secret=s.acquiring_callback_secret,
                                          pos_callback_token=s.pos_callback_token,
                                          courier_webhook_secret=s.courier_webhook_secret, small_catalog=True))
    async with ServedApp(sb_app, port=ps.sb_port), \
            ServedApp(create_api(s, temporal=dev_env.client, engine=engine), port=ps.api_port), \
            httpx.AsyncClient(base_url=ps.api_url, timeout=30) as api, \
            httpx.AsyncClient(base_url=ps.sandbox_url, timeout=30) as sb:
        ps.start_worker()
        ps.api, ps.sandbox, ps.engine, ps.temporal = api, sb, engine, dev_env.client

        async def sync(mode: str = "delta") -> Any:
            from workflows.erp_sync import SyncInput

            return await dev_env.client.execute_workflow(ErpStockSyncWorkflow.run, SyncInput(mode=mode),
                                                         id=f"erp-sync-test-{uuid.uuid4()}", task_queue=s.task_queue)

        async def wait_order(order_id: str, status: str, timeout_s: float = 60) -> dict[str, Any]:
            body: dict[str, Any] = {}
            for _ in range(int(timeout_s / 0.2)):
                r = await api.get(f"/v1/orders/{order_id}")
                if r.status_code == 200 and (body := r.json())["status"] == status:
                    return body
                await asyncio.sleep(0.2)
            raise AssertionError(f"{order_id} did not reach {status}: {body.get('status')}")

        async def pos_tasks(location_id: str) -> list[dict[str, Any]]:
            data = (await sb.get(f"/sandbox/pos/{location_id}/tasks")).json()
            return data["tasks"] if isinstance(data, dict) else data

        ps.sync, ps.wait_order, ps.pos_tasks = sync, wait_order, pos_tasks
        first = asyncio.ensure_future(sync("full"))
        while not first.done():  # bounded: a worker that cannot start fails the test, it does not hang it
            await asyncio.wait({first}, timeout=0.5)
            if ps.worker is not None and ps.worker.poll() is not None and not first.done():
                first.cancel()
                raise AssertionError(f"the worker exited with {ps.worker.returncode} before the first sync")
        first.result()
        try:
            yield ps
        finally:
            if ps.worker is not None:
                ps.worker.send_signal(signal.SIGTERM)
                ps.worker.wait(20)


async def test_worker_killed_mid_order_finishes_it_without_doing_anything_twice(proc_stack: Any) -> None:
    ps = proc_stack
    sku = await fresh_sku(ps, {"MSK-003": 2})
    phone = next_phone()
    r = await ps.api.post("/v1/orders", json=order_body(sku, 1, phone=phone, bonus=2_000))
    assert r.status_code == 201, r.text
    order_id, total = r.json()["order_id"], r.json()["totals"]["total"]
    await pay(ps, order_id)
    task = await task_for(ps, "MSK-003", order_id)

    ps.kill_worker()  # mid-order: paid, waiting for the store
    r = await ps.sandbox.post(f"/sandbox/pos/MSK-003/tasks/{task['task_id']}/assembled")
    assert r.status_code == 200  # the signal waits in Temporal while no worker runs
    ps.start_worker()

    parcels: list[dict[str, Any]] = []
    for _ in range(300):
        data = (await ps.sandbox.get("/sandbox/courier/orders")).json()
        parcels = [o for o in (data["orders"] if isinstance(data, dict) else data)
                   if str(o.get("number", "")).startswith(f"fulfillment-{order_id}-")]
        if parcels:
            break
        await asyncio.sleep(0.1)
    assert len(parcels) == 1
    ps.kill_worker()  # again, after booking
    ps.start_worker()
    for code in ("RECEIVED_AT_SHIPMENT_WAREHOUSE", "DELIVERED"):
        r = await ps.sandbox.post(f"/sandbox/courier/orders/{parcels[0]['uuid']}/status", json={"code": code})
        assert r.status_code == 200
    order = await ps.wait_order(order_id, "completed")

    bank = (await ps.sandbox.get(f"/sandbox/acquiring/orders/{order['payment']['md_order']}")).json()
    bank_orders = (await ps.sandbox.get("/sandbox/acquiring/orders")).json()
    listing = bank_orders["orders"] if isinstance(bank_orders, dict) else bank_orders
    assert len([o for o in listing if o["order_number"] == f"order-{order_id}"]) == 1  # one hold
    deposits = [op for op in bank["operations"] if op["type"] == "deposited"]
    assert len(deposits) == 1 and deposits[0]["amount"] == total  # one capture, of the total
    cust = (await ps.sandbox.get(f"/sandbox/loyalty/customers/{phone}")).json()
    assert len([op for op in cust["operations"] if op["type"] == "accrual_pending"]) == 1  # one accrual
    assert len([op for op in cust["operations"] if op["type"] == "write_off"]) == 1
    data = (await ps.sandbox.get("/sandbox/courier/orders")).json()
    assert len([o for o in (data["orders"] if isinstance(data, dict) else data)
                if str(o.get("number", "")).startswith(f"fulfillment-{order_id}-")]) == 1  # one booking
