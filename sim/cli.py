"""``orkestr simulate`` and ``orkestr rules show|diff|activate|history`` (wired in ``cli.py``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from adapters.rules_store import RulesStore

rules_app = typer.Typer(no_args_is_help=True, help="The sourcing rule set the worker loads: show, compare, activate.")

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _store(directory: str | None) -> RulesStore:
    from adapters.rules_store import RulesStore
    from settings import get_settings

    return RulesStore(directory or get_settings().rules_dir)


def _read_draft(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"error: cannot read {path}: {exc.strerror}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc


def simulate(
    days: int = typer.Option(30, min=1, max=365, help="simulated days"),
    warmup_days: int = typer.Option(7, min=0, help="first days not measured (the learned rules have no history yet)"),
    seed: int = typer.Option(1, help="same seed, same numbers"),
    configs: str = typer.Option("abcdef", help="configurations to run, e.g. 'af'"),
    workers: int = typer.Option(2, min=1, max=8, help="processes"),
    target_miss: float | None = typer.Option(None, min=0.001, max=0.5,
                                             help="the learned safety stock's target_miss in (d) and (f) (default 0.05)"),
    out: Path = typer.Option(Path("docs/simulation"), help="directory for simulation.json and simulation.png"),
    chart: bool = typer.Option(True, help="draw the PNG chart (needs matplotlib: pip install -e '.[sim]')"),
    replay_orders: str | None = typer.Option(None, "--replay-orders", metavar="FROM..TO",
                                             help="what-if: real orders created in [FROM, TO) from the order projection"),
    rules: Path | None = typer.Option(None, help="draft rule set (TOML) compared with the rules in force"),
    rules_dir: str | None = typer.Option(None, help="where the rules in force live (default ORKESTR_RULES_DIR)"),
) -> None:
    """The chain simulator: the share of online orders stores cannot assemble, configurations side by side.

    Without --replay-orders: the demo chain with generated demand, configurations (a)–(f). With
    --replay-orders FROM..TO --rules draft.toml: real orders from the projection through the rules
    in force and through the draft."""
    if replay_orders is not None:
        from sim.replay import replay_command

        code = replay_command(replay_orders, rules, rules_dir=rules_dir, seed=seed, out=out)
        sys.stdout.flush()
        raise typer.Exit(code)
    if warmup_days >= days:
        typer.echo("error: --warmup-days must be less than --days", err=True)
        raise typer.Exit(EXIT_USAGE)
    from sim.report import draw_chart, run_configurations, table, write_json
    from sim.world import Behaviour, pick_configurations

    try:
        policies = pick_configurations(list(configs))
        if target_miss is not None:
            from dataclasses import replace

            policies = [replace(p, learned_safety=replace(p.learned_safety, target_miss=target_miss))
                        if p.learned_safety is not None else p for p in policies]
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    behaviour = Behaviour()
    t0 = time.perf_counter()
    outcomes = run_configurations(policies, behaviour=behaviour, seed=seed, days=days, warmup_days=warmup_days,
                                  workers=workers)
    wall = time.perf_counter() - t0
    typer.echo(table(outcomes))
    typer.echo(f"\n{days} simulated days ({warmup_days} warm-up) × {len(outcomes)} configurations, seed {seed}: "
               f"{wall:.1f} s wall clock on {workers} process(es); per configuration "
               + ", ".join(f"({o.policy}) {o.seconds:.1f} s" for o in outcomes))
    write_json(outcomes, out / "simulation.json", seed=seed, behaviour=behaviour)
    typer.echo(f"wrote {out / 'simulation.json'}")
    if chart:
        draw_chart([o.summary() for o in outcomes], out / "simulation.png")
        typer.echo(f"wrote {out / 'simulation.png'}")


@rules_app.command("show")
def rules_show(version: int | None = typer.Option(None, help="a version from the history (default: in force)"),
               rules_dir: str | None = typer.Option(None)) -> None:
    """Print the rule set in force (or a past version)."""
    from domain.sourcing_rules import render_rules

    store = _store(rules_dir)
    try:
        rules = store.version(version) if version is not None else store.active()
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    if version is None and rules.version is None:
        typer.echo(f"# nothing activated in {store.dir}: today's defaults are in force")
    typer.echo(render_rules(rules), nl=False)


@rules_app.command("diff")
def rules_diff(draft: Path = typer.Argument(..., help="draft TOML"), rules_dir: str | None = typer.Option(None)) -> None:
    """What the draft changes against the rules in force (exit 0 either way; 2 if the draft is invalid)."""
    from domain.sourcing_rules import diff_rules, parse_rules

    try:
        new = parse_rules(_read_draft(str(draft)))
    except ValueError as exc:
        typer.echo(f"error: {draft}: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    active = _store(rules_dir).active()
    changes = diff_rules(active, new)
    if not changes:
        typer.echo(f"no change against version {active.version or 'defaults'}")
        return
    typer.echo(f"against version {active.version or 'defaults'}:")
    for key, old, value in changes:
        typer.echo(f"  {key}: {old} → {value}")


@rules_app.command("activate")
def rules_activate(draft: Path = typer.Argument(..., help="draft TOML"),
                   by: str = typer.Option(..., help="who switches it on"),
                   note: str | None = typer.Option(None, help="why (default: the draft's note)"),
                   rules_dir: str | None = typer.Option(None)) -> None:
    """Make the draft the rules in force (a new version in the history); workers pick it up at the next order."""
    store = _store(rules_dir)
    try:
        version = store.activate(_read_draft(str(draft)), by=by, note=note)
    except ValueError as exc:
        typer.echo(f"error: {draft}: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    typer.echo(f"activated version {version} ({store.active_path})")


@rules_app.command("history")
def rules_history(rules_dir: str | None = typer.Option(None)) -> None:
    """Every activated version: when, by whom, why."""
    store = _store(rules_dir)
    versions = store.history()
    if not versions:
        typer.echo(f"nothing activated in {store.dir}")
    for v in versions:
        typer.echo(f"{v.version:>4}  {v.activated_at}  {v.by:<20}  {v.note}")
