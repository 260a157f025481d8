"""The `orkestr` command line (typer)."""

from __future__ import annotations

import os
import sys

import typer

app = typer.Typer(no_args_is_help=True, help="Orkestr: omnichannel order orchestration on Temporal.")


def _finish(code: int = 0) -> None:
    """Exit with the real status: the SDK's core runtime can crash at interpreter exit
    (temporalio/sdk-python#300), so flush and end the process deliberately."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@app.command()
def run() -> None:
    """Start everything with embedded defaults: Temporal dev server + UI, PostgreSQL, migrations,
    the sandbox, the worker and the API. Ctrl-C stops it all."""
    from devstack import run_all

    run_all()


@app.command()
def worker() -> None:
    """Run the Temporal worker (production: one or more per task queue)."""
    from worker import main as worker_main

    worker_main()


@app.command()
def api() -> None:
    """Run the HTTP API."""
    import uvicorn

    from settings import get_settings

    s = get_settings()
    uvicorn.run("api.app:app", host=s.api_host, port=s.api_port, log_level=s.log_level.lower())


@app.command()
def sandbox() -> None:
    """Run the simulated outside systems (ERP, acquiring, loyalty, couriers, POS, notifications)."""
    import uvicorn

    from settings import get_settings

    s = get_settings()
    uvicorn.run("sandbox.app:app", host=s.sandbox_host, port=s.sandbox_port, log_level=s.log_level.lower())


@app.command()
def migrate() -> None:
    """Apply database migrations (Alembic) to ORKESTR_DATABASE_URL."""
    from adapters.db import migrate as do_migrate
    from settings import get_settings

    url = get_settings().database_url
    if not url:
        typer.echo("ORKESTR_DATABASE_URL is not set", err=True)
        _finish(2)
    do_migrate(url)
    typer.echo("migrated")
    _finish(0)


# --- support and developer commands below (orders, replay, history) ---------------------------


def main() -> None:
    app()


if __name__ == "__main__":
    main()
