"""The bare workflow of ``python -m bench e2e``: what Temporal itself needs for an order's step mix.

``BareOrderWorkflow`` executes a *plan*, a list of steps taken from a real order's history at run
time (``bench.e2e.plan_from_history``), with nothing else:

- ``"activity"``: a no-op activity (``bench_noop``) through the server's task queue;
- ``"local"``: the same no-op as a local activity;
- ``"answer"``: from here on the ``placement`` Update returns (as an order's does once it is priced,
  held and its payment registered);
- ``"child"``: the next plan of ``plan["children"]`` as a child ``BareOrderWorkflow``, awaited.

So it has the order's activities, local activities, children and Update, in the order's sequence,
and none of its signals, search-attribute upserts, timers, I/O or business code. The workflow keeps
the project's defaults (the sandboxed runner, the pydantic data converter) so the difference to a
real order is Orkestr's own cost.

``python -m bench.bare --address HOST:PORT --task-queue Q`` runs a worker for it until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

WORKFLOW = "BareOrderWorkflow"
STEPS = ("activity", "local", "answer", "child")
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60))


@activity.defn(name="bench_noop")
async def noop(step: int) -> int:
    """Nothing: the cost of an activity is then Temporal's and the SDK's alone."""
    return step


@workflow.defn(name=WORKFLOW)
class BareOrderWorkflow:
    def __init__(self) -> None:
        self._answered = False

    @workflow.run
    async def run(self, plan: dict[str, Any]) -> int:
        children = list(plan.get("children", []))
        n = 0
        for i, step in enumerate(plan["steps"]):
            if step == "activity":
                await workflow.execute_activity("bench_noop", i, start_to_close_timeout=timedelta(seconds=30),
                                                retry_policy=_RETRY)
            elif step == "local":
                await workflow.execute_local_activity("bench_noop", i, start_to_close_timeout=timedelta(seconds=15),
                                                      retry_policy=_RETRY)
            elif step == "answer":
                self._answered = True
            elif step == "child":
                child = children[n]
                n += 1
                await workflow.execute_child_workflow(WORKFLOW, child, id=f"{workflow.info().workflow_id}-{n}")
        self._answered = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return len(plan["steps"])

    @workflow.update
    async def placement(self) -> str:
        await workflow.wait_condition(lambda: self._answered)
        return "placed"


async def serve(address: str, namespace: str, task_queue: str) -> None:
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Worker

    client = await asyncio.wait_for(
        Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter), 30)
    worker = Worker(client, task_queue=task_queue, workflows=[BareOrderWorkflow], activities=[noop],
                    max_concurrent_activities=100, graceful_shutdown_timeout=timedelta(seconds=2))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(worker.run())
    print("bare worker polling", task_queue, flush=True)
    await asyncio.wait({running, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if not running.done():
        await worker.shutdown()
    await running


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    code = 0
    try:
        asyncio.run(serve(args.address, args.namespace, args.task_queue))
    except Exception as err:  # noqa: BLE001 - the harness reads the message and the status
        print(f"bare worker failed: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        code = 1
    sys.stdout.flush()
    os._exit(code)  # the SDK's core runtime can crash at interpreter exit (temporalio/sdk-python#300)


if __name__ == "__main__":
    main()
