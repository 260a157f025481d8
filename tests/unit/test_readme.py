"""The README is how people run Orkestr: it must show the two commands and every setting."""

from __future__ import annotations

from pathlib import Path

from settings import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_readme_shows_the_two_commands() -> None:
    assert "make run" in README and "make test" in README


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [f"ORKESTR_{name.upper()}" for name in Settings.model_fields if f"`ORKESTR_{name.upper()}`" not in README]
    assert missing == [], f"add these to the README's configuration table: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in ci
