"""The chain simulator: deterministic, a short run of every configuration, and the shortcut it
takes in building sourcing requests changes no plan. The runs use the demo chain's 100 stores
with a 500-product catalogue and 400 orders a day, so the module takes seconds, not minutes
(the 30-day run of the README is ``make simulate``)."""

from __future__ import annotations

import pytest

from domain.sourcing import SourcingRequest, source
from sim.engine import Simulation, run
from sim.world import CONFIGURATIONS, Behaviour, chain_from_demo


SMALL = Behaviour(online_orders_per_day=400)


@pytest.fixture(scope="module")
def chain():  # type: ignore[no-untyped-def]
    return chain_from_demo(products=500)


@pytest.fixture(scope="module")
def two_days(chain):  # type: ignore[no-untyped-def]
    return {k: run(chain, SMALL, p, seed=3, days=2, warmup_days=1).summary() for k, p in CONFIGURATIONS.items()}


def test_same_seed_same_numbers_and_another_seed_other_numbers(chain) -> None:  # type: ignore[no-untyped-def]
    policy = CONFIGURATIONS["f"]
    first = run(chain, SMALL, policy, seed=7, days=2, warmup_days=1).summary()
    again = run(chain, SMALL, policy, seed=7, days=2, warmup_days=1).summary()
    other = run(chain, SMALL, policy, seed=8, days=2, warmup_days=1).summary()
    first.pop("seconds"), again.pop("seconds"), other.pop("seconds")
    assert first == again
    assert first != other


def test_two_days_of_every_configuration(two_days) -> None:  # type: ignore[no-untyped-def]
    out = two_days
    for k, s in out.items():
        assert s["orders"] > 250, k  # ~400 orders a day, the second day measured
        assert s["still_open"] == 0, k
        assert abs(s["delivered_complete_share"] + s["partial_share"] + s["cancelled_share"] - 1) < 1e-3, k
        assert 0 < s["not_assemblable_share_of_store_orders"] < 1, k
    # without re-sourcing nothing moves; with it shipments move and fewer orders reach a person
    assert out["a"]["moved_share"] == 0 and out["e"]["moved_share"] > 0
    assert out["e"]["reached_person_share"] < out["a"]["reached_person_share"]
    # POS events: fewer units sold while the ledger still offered them
    assert out["c"]["shortage_causes"]["sold_meanwhile"] < out["a"]["shortage_causes"]["sold_meanwhile"]


def test_listing_only_the_locations_that_hold_the_cart_changes_no_plan(chain) -> None:  # type: ignore[no-untyped-def]
    sim = Simulation(chain, SMALL, CONFIGURATIONS["a"], seed=1, days=1, warmup_days=0)
    checked = 0
    for intent in sim.intents[:300]:
        from domain.sourcing import SourcingLine

        lines = [SourcingLine(i + 1, sku, q) for i, (sku, q) in enumerate(intent.lines)]
        short = sim._request(lines, intent.city, intent.pickup_store, intent.at)
        full = SourcingRequest(lines=short.lines, locations=sim.src, available=short.available,
                               destination=short.destination, mode=short.mode, pickup_store_id=short.pickup_store_id,
                               now=short.now, weights=short.weights)
        assert source(short) == source(full)
        checked += 1
    assert checked == 300


@pytest.mark.parametrize("args,words", [
    (["--configs", "az"], "unknown ['z']"),
    (["--days", "2", "--warmup-days", "2"], "--warmup-days"),
    (["--replay-orders", "yesterday", "--rules", "x.toml"], "--replay-orders"),
    (["--replay-orders", "2031-01-01..2031-01-02"], "--rules"),
])
def test_bad_simulate_arguments_are_refused_naming_the_option(args: list[str], words: str) -> None:
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["simulate", *args])
    assert result.exit_code == 2, result.output
    assert words in result.output


def test_table_json_and_chart(two_days, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from sim.report import draw_chart

    rows = list(two_days.values())
    draw_chart(rows, tmp_path / "chart.png")
    png = (tmp_path / "chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert json.loads(json.dumps(rows))[0]["config"] == "a"  # the JSON's rows are plain data


def test_the_printed_table_and_the_json_file(chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from sim.report import table, write_json

    out = run(chain, SMALL, CONFIGURATIONS["f"], seed=2, days=2, warmup_days=1)
    text = table([out])
    share = out.summary()["not_assemblable_share_of_store_orders"]
    assert "(f) all together" in text and f"{share * 100:.1f} %" in text
    write_json([out], tmp_path / "s.json", seed=2, behaviour=SMALL)
    doc = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert doc["seed"] == 2 and doc["reference"] == {"seed_case_before": 0.43, "seed_case_after": 0.26}
    assert doc["configurations"][0]["orders"] == out.orders and doc["behaviour"]["online_orders_per_day"] == 400
