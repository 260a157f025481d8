"""What the workflows call is what the worker runs: every activity a workflow module references
(``call(PaymentActivities.register_payment, …)``, ``local(StockActivities.reserve_stock, …)``) is
registered by ``worker.wiring`` — as a local activity when called with ``local``, as a remote one
otherwise — and the worker registers nothing no workflow calls. The parents' signal contracts
(``workflows/parents.py``) are handled by the workflows that start shipments."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine

from settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def referenced_activities() -> dict[str, set[str]]:
    """{activity name: {"local"|"remote", …}} over every ``<X>Activities.<method>`` in workflows/."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "workflows").glob("*.py")):
        module = importlib.import_module(f"workflows.{path.stem}")
        tree = ast.parse(path.read_text(), filename=str(path))
        local_args = {id(call.args[0]) for call in ast.walk(tree) if isinstance(call, ast.Call)
                      and isinstance(call.func, ast.Name) and call.func.id == "local" and call.args}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id.endswith("Activities")):
                continue
            method = getattr(getattr(module, node.value.id), node.attr)
            definition = getattr(method, "__temporal_activity_definition")
            found.setdefault(definition.name, set()).add("local" if id(node) in local_args else "remote")
    return found


async def registered_activities() -> tuple[set[str], set[str]]:
    from worker import wiring

    engine = create_async_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")  # never connected
    try:
        async with wiring(Settings(database_url="postgresql://nobody@127.0.0.1:1/none"), engine) as wired:
            def names(acts: list[Any]) -> set[str]:
                return {getattr(a, "__temporal_activity_definition").name for a in acts}

            return names(wired.activities), names(wired.local_activities)
    finally:
        await engine.dispose()


async def test_every_activity_a_workflow_calls_is_registered_as_it_is_called() -> None:
    used = referenced_activities()
    remote, local = await registered_activities()
    assert len(used) > 30, sorted(used)  # the scan sees the workflows' calls
    for name, kinds in sorted(used.items()):
        assert kinds == ({"local"} if name in local else {"remote"}), (name, kinds)
        assert name in local or name in remote, f"{name} is called by a workflow but not registered by worker.py"
    assert set(used) == remote | local, f"registered but called by no workflow: {sorted((remote | local) - set(used))}"


def test_no_workflow_calls_an_activity_or_a_signal_by_name() -> None:
    for path in sorted((ROOT / "workflows").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("call", "local",
                                                                                                   "signal"):
                args = [a for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                assert not args, f"{path.name}:{node.lineno} names a step by string"


def test_the_parents_handle_the_signals_their_children_send() -> None:
    from workflows.order import OrderWorkflow
    from workflows.parents import OrderParent, ShipmentParent
    from workflows.returns import ReturnWorkflow

    def signals(cls: type) -> dict[str, Any]:
        out = {}
        for attr in dir(cls):
            definition = getattr(getattr(cls, attr), "__temporal_signal_definition", None)
            if definition is not None:
                out[definition.name] = definition
        return out

    contract = signals(OrderParent)
    assert set(contract) == {"shipment_update", "shortage_reported", "edit_answer", "step_parked", "cancel_order"}
    assert set(contract) <= set(signals(OrderWorkflow))
    assert set(signals(ShipmentParent)) <= set(signals(ReturnWorkflow))
