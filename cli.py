"""The `orkestr` command line (typer)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Coroutine

import typer

if TYPE_CHECKING:  # the commands import what they need when they run (a fast `orkestr --help`)
    from datetime import datetime, timedelta

    from rich.console import Console
    from sqlalchemy.ext.asyncio import AsyncEngine
    from temporalio.client import Client

    from adapters.history import ProblemOrder
    from adapters.story import Story
    from contracts.order import OrderSnapshot

app = typer.Typer(no_args_is_help=True, help="Orkestr: omnichannel order orchestration on Temporal.")


def _finish(code: int = 0) -> None:
    """Exit with the real status: the SDK's core runtime can crash at interpreter exit
    (temporalio/sdk-python#300), so flush and end the process deliberately."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)



_NO_STACK = "no `orkestr run` is running next to here (no live state file under the data dir)"


@app.callback()
def _join_running_stack(ctx: typer.Context) -> None:
    """Every command but `run` joins the stack `orkestr run` started next to it: the stack's state
    file (``<data dir>/state.json``) fills in every ``ORKESTR_*`` variable the environment does not set."""
    if ctx.invoked_subcommand != "run":
        join_running_stack()


def join_running_stack() -> dict[str, Any] | None:
    """Put a running stack's settings into ``os.environ`` (explicit variables win); its state, or None."""
    from devstack import read_state
    from settings import Settings, get_settings

    state = read_state(Settings().data_dir)
    if state is not None:
        for name, value in state.get("env", {}).items():
            os.environ.setdefault(name, str(value))
        get_settings.cache_clear()
    return state


@app.command()
def run(
    port_base: int = typer.Option(None, "--port-base", min=1024, max=65530, envvar="ORKESTR_PORT_BASE",
                                  help="move every port together: API N, sandbox N+1, Temporal N+2, Temporal UI "
                                       "N+3, worker metrics N+4 (and the URLs made of them); data under "
                                       ".orkestr/port-N"),
    sandbox_auto: bool = typer.Option(None, "--sandbox-auto/--no-sandbox-auto",
                                      help="the sandbox pays, assembles and delivers by itself "
                                           "(default: ORKESTR_SANDBOX_AUTO, true)"),
) -> None:
    """Start everything with embedded defaults, supervised: Temporal dev server + UI, PostgreSQL,
    migrations, the sandbox, the worker and the API. A crashed sandbox, worker or API is restarted;
    Ctrl-C or SIGTERM stops it all in order (sandbox, worker drained, API, Temporal, PostgreSQL).
    Every setting is an ORKESTR_* variable (README: Configuration)."""
    from devstack import run_all
    from settings import get_settings

    # through the environment, so the parts started as children see the same choice
    if port_base is not None:
        os.environ["ORKESTR_PORT_BASE"] = str(port_base)
    if sandbox_auto is not None:
        os.environ["ORKESTR_SANDBOX_AUTO"] = str(sandbox_auto).lower()
    get_settings.cache_clear()
    _finish(run_all(get_settings()))


@app.command()
def worker() -> None:
    """Run the Temporal worker (production: one or more per task queue). Exits 1 at once when its
    metrics port is taken or Temporal cannot be reached; SIGTERM drains it (ORKESTR_WORKER_SHUTDOWN_SECONDS)."""
    from worker import main as worker_main

    worker_main()


def _serve(app_path: str, host: str, port: int) -> None:
    """uvicorn with our logging (one format per process: uvicorn's loggers go through structlog);
    a port it cannot bind ends the process with status 1."""
    import uvicorn

    from observability import configure_logging
    from settings import get_settings

    s = get_settings()
    configure_logging(s.log_format, s.log_level)
    uvicorn.run(app_path, host=host, port=port, log_level=s.log_level.lower(), log_config=None, access_log=False)
    _finish(0)


@app.command()
def api() -> None:
    """Run the HTTP API."""
    from settings import get_settings

    s = get_settings()
    _serve("api.app:app", s.api_host, s.api_port)


@app.command()
def sandbox() -> None:
    """Run the simulated outside systems (ERP, acquiring, loyalty, couriers, POS, notifications)."""
    from settings import get_settings

    s = get_settings()
    _serve("sandbox.app:app", s.sandbox_host, s.sandbox_port)


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic) to ORKESTR_DATABASE_URL."""
    from adapters.db import migrate as do_migrate
    from settings import get_settings

    url = get_settings().database_url
    if not url:
        typer.echo(f"ORKESTR_DATABASE_URL is not set, and {_NO_STACK}", err=True)
        _finish(2)
    do_migrate(url)
    typer.echo("migrated")
    _finish(0)


# --- support and developer commands below (orders, replay, history) ---------------------------
# Exit codes: 0 done; 1 unexpected error (e.g. Temporal unreachable); 2 usage error (bad argument,
# unreadable file); 3 a history does not replay: non-determinism; 4 a history does not replay for
# another reason; 5 no such order; 6 nothing to retry (the order is not on hold / not failed).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NONDETERMINISM, EXIT_REPLAY_FAILED, EXIT_NOT_FOUND, EXIT_NOTHING = 0, 1, 2, 3, 4, 5, 6

order_app = typer.Typer(no_args_is_help=True, help="One order: show its story, retry what is on hold.")
orders_app = typer.Typer(no_args_is_help=True, help="Orders that need a person: stuck or failed.")
history_app = typer.Typer(no_args_is_help=True, help="Workflow histories: export for replay and bug reports.")
app.add_typer(order_app, name="order")
app.add_typer(orders_app, name="orders")
app.add_typer(history_app, name="history")

from sim.cli import rules_app, simulate  # noqa: E402 - the chain simulator and the sourcing rule set

app.command("simulate")(simulate)
app.add_typer(rules_app, name="rules")


def _run(coro_fn: Callable[..., Coroutine[Any, Any, int]], *args: Any, **kwargs: Any) -> None:
    """Run an async command body that returns an exit code; end the process with it."""
    import asyncio

    from rich.console import Console

    from observability import configure_logging
    from settings import get_settings

    s = get_settings()
    configure_logging(s.log_format, "WARNING" if s.log_level.upper() == "INFO" else s.log_level)
    try:
        code: int = asyncio.run(coro_fn(*args, **kwargs))
    except KeyboardInterrupt:
        code = 130
    except Exception as err:  # noqa: BLE001 - the CLI's last word: say what failed, exit non-zero
        Console(stderr=True).print(f"[red]error:[/red] {type(err).__name__}: {err}")
        code = EXIT_ERROR
    _finish(code)


async def _client() -> Client:
    from settings import get_settings
    from adapters.temporal import connect

    return await connect(get_settings())


def _engine() -> AsyncEngine | None:
    from adapters.db import make_engine
    from settings import get_settings

    url = get_settings().database_url
    return make_engine(url, pool_size=2) if url else None


async def _snapshot(client: Client, engine: AsyncEngine | None, order_id: str) -> OrderSnapshot | None:
    """The order's snapshot: the projection when there is a database, else the workflow's query."""
    if engine is not None:
        from adapters.orders_repo import OrdersRepo

        snap = await OrdersRepo(engine).get(order_id)
        if snap is not None:
            return snap
    from contracts.order import order_workflow_id
    from workflows.order import OrderWorkflow

    try:
        return await client.get_workflow_handle(order_workflow_id(order_id)).query(OrderWorkflow.snapshot)
    except Exception:  # noqa: BLE001 - no worker or a refused order: the history alone still tells the story
        return None


@order_app.command("show")
def order_show(
    order_id: str,
    role: str = typer.Option("developer", help="support: personal data masked; developer: everything"),
    as_json: bool = typer.Option(False, "--json", help="print the story as JSON"),
) -> None:
    """The order's status and story: every step, when, how long, what the outside systems answered,
    retries and failures, operator decisions."""
    if role not in ("support", "developer"):
        typer.echo("--role: support or developer", err=True)
        _finish(EXIT_USAGE)
    _run(_order_show, order_id, role, as_json)


async def _order_show(order_id: str, role: str, as_json: bool) -> int:
    import json

    from rich.console import Console

    from adapters.history import OrderNotFound, order_story
    from adapters.story import story_to_json

    console = Console()
    client, engine = await _client(), _engine()
    try:
        story = await order_story(client, order_id, await _snapshot(client, engine, order_id), role=role)
    except OrderNotFound:
        Console(stderr=True).print(f"[red]no order {order_id}[/red]")
        return EXIT_NOT_FOUND
    finally:
        if engine is not None:
            await engine.dispose()
    if as_json:
        console.print_json(json.dumps(story_to_json(story), ensure_ascii=False))
    else:
        render_story(console, story)
    return EXIT_OK


@order_app.command("retry")
def order_retry(
    order_id: str,
    by: str = typer.Option(..., "--by", help="who decides (recorded in the order's history)"),
    note: str = typer.Option("", help="why, for the next person reading the history"),
) -> None:
    """Resume an order's parked step (on hold after an outside system refused it), or reset a failed
    order workflow to its failed step. Nothing is charged, reserved or accrued twice."""
    _run(_order_retry, order_id, by, note)


async def _order_retry(order_id: str, by: str, note: str) -> int:
    from rich.console import Console

    from adapters.history import NothingToRetry, OrderNotFound, retry_order

    console = Console()
    try:
        result = await retry_order(await _client(), order_id, by=by, note=note)
    except OrderNotFound:
        Console(stderr=True).print(f"[red]no order {order_id}[/red]")
        return EXIT_NOT_FOUND
    except NothingToRetry as err:
        Console(stderr=True).print(f"[yellow]nothing to retry for {order_id}:[/yellow] {err}")
        return EXIT_NOTHING
    console.print(f"order {order_id}: {result.action} — {result.detail}")
    return EXIT_OK


@orders_app.command("stuck")
def orders_stuck(older_than: str = typer.Option("2h", help="e.g. 30m, 2h, 1d"),
                 limit: int = typer.Option(200, min=1, max=5000)) -> None:
    """Orders waiting too long at a step (no change for longer than --older-than)."""
    from adapters.history import parse_age

    try:
        age = parse_age(older_than)
    except ValueError as err:
        typer.echo(f"--older-than: {err}", err=True)
        _finish(EXIT_USAGE)
    _run(_orders_stuck, age, limit)


async def _orders_stuck(age: timedelta, limit: int) -> int:
    from rich.console import Console

    from adapters.history import stuck_orders

    engine = _engine()
    if engine is None:
        Console(stderr=True).print(f"[red]the projection is needed: ORKESTR_DATABASE_URL is not set, and {_NO_STACK}[/red]")
        return EXIT_USAGE
    try:
        problems = await stuck_orders(await _client(), engine, age, limit=limit)
    finally:
        await engine.dispose()
    render_problems(Console(), problems, f"Orders with no change for more than {age}")
    return EXIT_OK


@orders_app.command("failed")
def orders_failed(limit: int = typer.Option(200, min=1, max=5000)) -> None:
    """Every order that needs a person, with the reason: on hold (projection) or parked (Temporal), failing
    (an activity retried 3+ times, or the workflow code failing) and failed or terminated workflows."""
    _run(_orders_failed, limit)


async def _orders_failed(limit: int) -> int:
    from rich.console import Console

    from adapters.history import failed_orders

    engine = _engine()
    try:
        problems = await failed_orders(await _client(), engine, limit=limit)
    finally:
        if engine is not None:
            await engine.dispose()
    render_problems(Console(), problems, "Orders on hold, parked, failing or failed")
    return EXIT_OK


@app.command("replay")
def replay_cmd(
    order_id: str = typer.Argument(None, help="replay this order's histories (the order and its shipments)"),
    file: str = typer.Option(None, "--file", "-f", help="replay a saved history JSON instead"),
    workflows: str = typer.Option(None, help="module:Class[,...] to replay against instead of the worker's "
                                             "workflows (e.g. a candidate version)"),
) -> None:
    """Replay histories against the current workflow code; report non-determinism and where it diverged.
    Exit 0: replays cleanly; 3: non-deterministic; 4: another replay failure."""
    if bool(order_id) == bool(file):
        typer.echo("give an ORDER_ID or --file history.json (one of them)", err=True)
        _finish(EXIT_USAGE)
    _run(_replay, order_id, file, workflows)


async def _replay(order_id: str | None, file: str | None, spec: str | None) -> int:
    from pathlib import Path

    from rich.console import Console

    from adapters.history import OrderNotFound, load_history_file, order_histories, replay, replay_workflows

    console = Console(width=200)
    try:
        wfs = replay_workflows(spec)
    except (ImportError, AttributeError, ValueError) as err:
        Console(stderr=True).print(f"[red]--workflows {spec}: {err}[/red]")
        return EXIT_USAGE
    if file:
        try:
            histories = {Path(file).stem.split("__")[-1]: load_history_file(file)}
        except (OSError, ValueError) as err:
            Console(stderr=True).print(f"[red]cannot read {file}: {err}[/red]")
            return EXIT_USAGE
    else:
        try:
            histories = await order_histories(await _client(), order_id or "")
        except OrderNotFound:
            Console(stderr=True).print(f"[red]no order {order_id}[/red]")
            return EXIT_NOT_FOUND
    code = EXIT_OK
    for wf_id, history in histories.items():
        report = await replay(history, wf_id, wfs)
        if report.ok:
            console.print(f"[green]OK[/green] {wf_id} ({report.workflow_type}, {report.events} events): replays cleanly")
        elif report.nondeterministic:
            code = EXIT_NONDETERMINISM
            console.print(f"[red]NON-DETERMINISTIC[/red] {wf_id} ({report.workflow_type}, {report.events} events): "
                          f"diverged at {report.diverged_at}\n  {report.error}\n  If the change is deliberate, guard "
                          "it with workflow.patched(...) so running workflows keep their old path.")
        else:
            code = max(code, EXIT_REPLAY_FAILED) if code != EXIT_NONDETERMINISM else code
            console.print(f"[red]FAILED[/red] {wf_id} ({report.workflow_type}): {report.error}")
    return code


@history_app.command("export")
def history_export(
    order_id: str = typer.Argument(..., help="an order id, or a workflow id (order-…, fulfillment-…)"),
    output: str = typer.Option(None, "-o", "--output", help="file to write (default: stdout)"),
) -> None:
    """Write a workflow's event history as JSON (replay it with `orkestr replay --file`)."""
    _run(_history_export, order_id, output)


async def _history_export(ident: str, output: str | None) -> int:
    import json

    from rich.console import Console

    from adapters.history import OrderNotFound, history_json
    from contracts.order import order_workflow_id

    wf_id = ident if ident.startswith(("order-", "fulfillment-", "erp-sync-")) else order_workflow_id(ident)
    try:
        data = await history_json(await _client(), wf_id)
    except OrderNotFound:
        Console(stderr=True).print(f"[red]no workflow {wf_id}[/red]")
        return EXIT_NOT_FOUND
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
        Console(stderr=True).print(f"{wf_id}: {len(data['events'])} events written to {output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


@app.command("search-attributes")
def search_attributes() -> None:
    """Register the custom search attributes (OrderId, CustomerPhoneHash, OrderStatus, StoreId, Channel)
    on ORKESTR_TEMPORAL_NAMESPACE if missing (a cluster: needs operator rights)."""
    _run(_search_attributes)


async def _search_attributes() -> int:
    from adapters.history import ensure_search_attributes

    added = await ensure_search_attributes(await _client())
    typer.echo(f"added: {', '.join(added)}" if added else "all search attributes already registered")
    return EXIT_OK


@app.command("phone-hash")
def phone_hash_cmd(phone: str) -> None:
    """The CustomerPhoneHash of a phone number, for the Temporal web UI's search."""
    from adapters.orders_repo import phone_hash
    from settings import get_settings

    typer.echo(phone_hash(phone, get_settings().support_phone_salt))
    _finish(EXIT_OK)



# --- rendering for people (rich) -------------------------------------------------------------------------
def _when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt else "—"


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h" if seconds < 172800 else f"{seconds / 86400:.1f} d"


def render_story(console: Console, story: Story) -> None:
    from rich.table import Table

    c = story.customer
    console.print(f"[bold]Order {story.order_id}[/bold]  status: [bold]{story.order_status or '?'}[/bold]"
                  f"{'  (personal data masked)' if story.masked else ''}")
    if c:
        console.print(f"customer: {c.get('name', '')}  {c.get('phone', '')}  {c.get('email') or ''}")
    runs = Table(title="Workflows", title_justify="left")
    for col in ("workflow", "type", "status", "started", "closed", "failure"):
        runs.add_column(col)
    for r in story.workflows:
        runs.add_row(r.workflow_id, r.workflow_type, r.status, _when(r.started_at), _when(r.closed_at), r.failure or "")
    console.print(runs)
    steps = Table(title="Steps (from the event history)", title_justify="left", show_lines=False)
    for col in ("when", "workflow", "step", "took", "tries", "outcome", "answer / error"):
        steps.add_column(col, overflow="fold")
    for s in story.steps:
        if s.kind == "signal" and s.name == "shipment_update":
            continue  # the child's own steps are listed; the timeline carries these
        answer = ", ".join(f"{k}={v}" for k, v in s.answer.items() if k != "timer_id")
        if s.error:
            answer = f"[red]{s.error_type + ': ' if s.error_type else ''}{s.error}[/red]"
        if s.retried_because:
            answer += f" [yellow](retried after: {s.retried_because})[/yellow]"
        outcome = {"ok": "[green]ok[/green]", "failed": "[red]failed[/red]", "timed_out": "[red]timed out[/red]",
                   "running": "[yellow]running[/yellow]"}.get(s.outcome, s.outcome)
        label = s.name if s.kind in ("activity", "child_workflow", "timer") else f"{s.name} ({s.kind.replace('_', ' ')})"
        if s.kind == "signal" and s.source:
            label = f"{s.name} ← {s.source}"
        steps.add_row(_when(s.started_at), s.workflow_id.split("-", 1)[0], label,
                      _dur(s.duration_s) if s.kind != "signal" and (s.duration_s is not None or s.outcome == "running")
                      else "", str(s.attempts) if s.attempts > 1 else "",
                      outcome, answer)
    console.print(steps)
    if story.decisions:
        dec = Table(title="Decisions (updates)", title_justify="left")
        for col in ("when", "workflow", "decision", "by", "request", "outcome"):
            dec.add_column(col, overflow="fold")
        for d in story.decisions:
            req = ", ".join(f"{k}={v}" for k, v in d.request.items() if k != "by")
            dec.add_row(_when(d.at), d.workflow_id, d.name, d.by, req, f"{d.outcome}{': ' + d.answer if d.answer else ''}")
        console.print(dec)
    if story.timeline:
        tl = Table(title="Timeline (the order's own account)", title_justify="left")
        for col in ("when", "what", "message"):
            tl.add_column(col, overflow="fold")
        for e in story.timeline:
            tl.add_row(str(e.get("at", ""))[:19].replace("T", " "), e.get("kind", ""), e.get("message", ""))
        console.print(tl)


def render_problems(console: Console, problems: list[ProblemOrder], title: str) -> None:
    from rich.table import Table

    if not problems:
        console.print(f"{title}: none")
        return
    t = Table(title=f"{title}: {len(problems)}", title_justify="left")
    for col in ("order", "status", "since", "waiting at", "detail", "store"):
        t.add_column(col, overflow="fold")
    for p in problems:
        t.add_row(p.order_id, p.status, _when(p.since), p.waiting_at, p.detail, p.store_id or "")
    console.print(t)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
