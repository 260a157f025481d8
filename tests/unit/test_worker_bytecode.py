"""The workflow sandbox imports the workflow modules afresh for every run: with no bytecode cached (an
editable install under PYTHONDONTWRITEBYTECODE) each run compiled their sources again. The worker writes
that bytecode once (worker.cache_sandbox_bytecode); a replay in the sandbox then compiles no workflow
source. Run in a child interpreter with a bytecode prefix of its own, so the tree's caches play no part."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, importlib._bootstrap_external as ext, json, sys
from pathlib import Path
compiled = []
original = ext.SourceLoader.source_to_code
def counting(self, data, path, *a, **k):
    compiled.append(str(path))
    return original(self, data, path, *a, **k)
ext.SourceLoader.source_to_code = counting

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
import worker

async def replay():
    history = Path("tests/histories/order_happy__order-GOLD-HAPPY.json").read_text()
    replayer = Replayer(workflows=worker.WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(WorkflowHistory.from_json("order-GOLD-HAPPY", history))

def workflow_sources():
    return sorted({p for p in compiled if "/workflows/" in p})

compiled.clear(); asyncio.run(replay()); before = workflow_sources()
written = worker.cache_sandbox_bytecode()
compiled.clear(); asyncio.run(replay()); after = workflow_sources()
print(json.dumps({"before": before, "written": written, "after": after}))
sys.stdout.flush()
import os; os._exit(0)
"""


def test_a_sandboxed_run_compiles_no_workflow_source_once_the_worker_cached_it(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}
    run = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert any(p.endswith("workflows/order.py") for p in result["before"]), result  # compiled for the run
    assert result["written"] == [str(ROOT / "workflows")]
    assert result["after"] == [], result  # read from the cache the worker wrote
    assert list((tmp_path / "pycache").rglob("order.cpython-*.pyc"))
