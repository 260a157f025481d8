"""The README is how people run Orkestr: its commands, settings, examples and ports are checked literally
against the code where that can be done without starting the stack (tests/e2e/test_devstack.py runs
`orkestr run` itself): every `make` target exists, every `orkestr` command and option parses, every
setting and its default is the code's, the walk-through's SKU has the units its edit step needs and the
click & collect store exists, every URL path it curls is a real route, and the port table is the
port base's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from settings import PORT_OFFSETS, Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(lang: str = "sh") -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def section(title: str) -> str:
    start = README.index(title)
    nxt = README.find("\n## ", start + len(title))
    return README[start:nxt if nxt != -1 else None]


def test_readme_shows_the_two_commands() -> None:
    assert "make run" in README and "make test" in README


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


# --- settings -------------------------------------------------------------------------------------------
def config_table() -> dict[str, str]:
    rows = re.findall(r"^\| `(ORKESTR_[A-Z0-9_]+)` \| `([^`]*)` \|", section("## Configuration"), flags=re.M)
    return dict(rows)


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [f"ORKESTR_{name.upper()}" for name in Settings.model_fields if f"`ORKESTR_{name.upper()}`" not in README]
    assert missing == [], f"add these to the README's configuration table: {missing}"


def test_the_configuration_table_shows_the_code_defaults() -> None:
    table = config_table()
    assert set(table) == {f"ORKESTR_{n.upper()}" for n in Settings.model_fields}
    defaults = Settings(_env_file=None)
    for var, shown in table.items():
        field = var[len("ORKESTR_"):].lower()
        declared = Settings.model_fields[field].default
        value = "(empty)" if declared in (None, "") else str(declared)
        # derived settings show what they derive to with no variable set
        assert shown in (value, str(getattr(defaults, field))), f"{var}: README says {shown!r}, code has {value!r}"


def test_every_variable_the_readme_names_is_a_setting() -> None:
    names = set(re.findall(r"\bORKESTR_[A-Z0-9_]+\b", README))
    known = {f"ORKESTR_{n.upper()}" for n in Settings.model_fields}
    assert names - known == set()


# --- commands -------------------------------------------------------------------------------------------
def test_every_make_target_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), flags=re.M))
    used = set(re.findall(r"\bmake ([a-z][a-z-]*)", README))
    assert used and used - targets == set(), used - targets


def cli_commands() -> dict[str, Any]:
    import typer.main

    from cli import app

    group = typer.main.get_command(app)
    out: dict[str, Any] = {}
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        out[name] = cmd
        for sub, subcmd in getattr(cmd, "commands", {}).items():
            out[f"{name} {sub}"] = subcmd
    return out


def readme_cli_calls() -> list[str]:
    calls = re.findall(r"(?:\.venv/bin/)?\borkestr ((?:[a-z][a-z-]*)(?: [^`|\n]*)?)", README)
    return [c.strip() for c in calls]


def test_every_orkestr_command_and_option_in_the_readme_exists() -> None:
    commands = cli_commands()
    checked = 0
    for call in readme_cli_calls():
        words = call.split()
        name = words[0] if words[0] in commands else None
        if name is None:
            continue  # prose such as "orkestr run" inside a sentence is covered by the same table
        if len(words) > 1 and f"{words[0]} {words[1]}" in commands:
            name = f"{words[0]} {words[1]}"
        elif getattr(commands[name], "commands", None):
            pytest.fail(f"`orkestr {call}`: {words[0]} needs a subcommand ({sorted(commands[name].commands)})")
        options = {o for p in commands[name].params for o in (*p.opts, *p.secondary_opts)}
        for word in words:
            flag = word.split("=")[0].strip("[]`")
            if flag.startswith("--") and flag != "--help":
                assert flag in options, f"`orkestr {call}`: {flag} is not an option of `orkestr {name}`"
        checked += 1
    assert checked >= 10, checked


# --- the walk-through -----------------------------------------------------------------------------------
def test_python_json_tool_keeps_russian_readable() -> None:
    uses = re.findall(r"python3 -m json\.tool[^\n|]*", README)
    assert uses and all("--no-ensure-ascii" in u for u in uses), uses


def walkthrough() -> str:
    return section("## One order, by hand")


def test_the_walkthrough_sku_has_the_units_its_edit_step_needs() -> None:
    """The order is placed for one unit and an operator then makes it two, re-held where the shipment is:
    a Moscow courier order ships from the online warehouse, which must have two units to sell beyond its
    safety stock in the demo data (seed and size as `make run` has them). (P000001-38-BRN had one there,
    and the edit step failed.)"""
    from sandbox.demo_data import generate

    text = walkthrough()
    placed = re.search(r'"lines": \[\{"sku": "([^"]+)", "qty": (\d+)\}\],\n  "delivery"', text)
    edited = re.search(r'"lines": \[\{"sku": "([^"]+)", "qty": (\d+)\}\], "by"', text)
    assert placed and edited and placed.group(1) == edited.group(1)
    sku, need = placed.group(1), max(int(placed.group(2)), int(edited.group(2)))
    s = Settings(_env_file=None)
    data = generate(s.sandbox_seed, s.sandbox_products)
    sellable = {loc: q - data.location_index[loc].safety_stock for (k, loc), q in data.stock.items() if k == sku}
    assert sku in data.sku_index
    assert sellable.get("WH-ONLINE", 0) >= need, f"{sku}: {sellable}"


def test_the_stores_the_readme_names_exist() -> None:
    from sandbox.demo_data import generate

    s = Settings(_env_file=None)
    data = generate(s.sandbox_seed, s.sandbox_products)
    pickup = re.findall(r'"store_id": "([A-Z]{3}-\d{3})"', README)
    assert pickup, "the click & collect example names a store"
    for store in pickup:
        assert store in data.location_index and data.location_index[store].pickup, store
    for store in re.findall(r'StoreId="([A-Z]{3}-\d{3})"', README):
        assert store in data.location_index, store


def routes() -> list[re.Pattern[str]]:
    from api.app import create_app as api_app
    from sandbox.app import create_app as sandbox_app
    from sandbox.common import SandboxConfig

    out = []
    for app in (api_app(Settings(_env_file=None)), sandbox_app(SandboxConfig(small_catalog=True))):
        for path in app.openapi()["paths"]:
            out.append(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"))
    return out


def test_every_path_the_walkthrough_curls_is_a_route() -> None:
    known = routes()
    paths = re.findall(r"\$(API|SB)(/[^\s\"'?]*)", walkthrough())
    assert len(paths) >= 10
    for _, path in paths:
        concrete = re.sub(r"\$[A-Z]+", "X", path)
        assert any(p.match(concrete) for p in known), f"no route for {path}"


# --- ports ----------------------------------------------------------------------------------------------
def test_the_port_table_is_the_port_base() -> None:
    text = section("### Ports, and a second stack beside the first")
    rows = dict(re.findall(r"^\| [^|]+ \| N(?:\+(\d))? \| `(ORKESTR_[A-Z_]+)`", text, flags=re.M)[i][::-1]
                for i in range(5))
    expected = {"ORKESTR_API_PORT": "", "ORKESTR_SANDBOX_PORT": "1", "ORKESTR_TEMPORAL_ADDRESS": "2",
                "ORKESTR_TEMPORAL_UI_PORT": "3", "ORKESTR_METRICS_PORT": "4"}
    assert rows == expected
    assert {k: str(v or "") for k, v in PORT_OFFSETS.items()} == {
        "api_port": "", "sandbox_port": "1", "temporal_port": "2", "temporal_ui_port": "3", "metrics_port": "4"}
    s = Settings(_env_file=None, port_base=20000)
    assert s.data_dir.as_posix() == ".orkestr/port-20000" and ".orkestr/port-N/" in text


def test_the_quick_start_table_shows_the_default_ports() -> None:
    s = Settings(_env_file=None)
    quick = section("## Quick start")
    for url in (f"http://127.0.0.1:{s.api_port}/docs", f"http://127.0.0.1:{s.temporal_ui_port}",
                s.temporal_address, f"http://127.0.0.1:{s.sandbox_port}/docs",
                f"http://127.0.0.1:{s.metrics_port}/metrics"):
        assert url in quick, url
