"""Operator commands through typer's runner: tool run and list, and the examples'
`onward ledger` (contributed through their goal module's `CLI_COMMANDS`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from onward.cli.contributed import register_contributed
from onward.cli.ops import register
from onward.config import get_settings
from onward.goals.catalog import GoalCatalog


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("ONWARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    register_contributed(app, GoalCatalog.discover().cli_commands)
    yield app
    get_settings.cache_clear()


def test_tool_run_writes_the_ledger_once(app: typer.Typer) -> None:
    runner = CliRunner()
    args = json.dumps({"sku": "MUG-1", "quantity": 1})
    first = runner.invoke(app, ["tool", "run", "reserve_inventory", "--args", args, "--key", "c:1"])
    again = runner.invoke(app, ["tool", "run", "reserve_inventory", "--args", args, "--key", "c:1"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output) == json.loads(again.output)
    shown = runner.invoke(app, ["ledger", "--table", "reservations", "--json"])
    rows = json.loads(shown.output)["reservations"]
    assert len(rows) == 1 and rows[0]["sku"] == "MUG-1"


def test_tool_run_refuses_bad_input_clearly(app: typer.Typer) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["tool", "run", "no_such_tool"])
    assert unknown.exit_code == 2 and "no tool named `no_such_tool`" in unknown.output
    bad = runner.invoke(app, ["tool", "run", "find_events", "--args", '{"city": 3}'])
    assert bad.exit_code == 2 and "invalid arguments" in bad.output
    not_object = runner.invoke(app, ["tool", "run", "find_events", "--args", "[1]"])
    assert not_object.exit_code == 2 and "JSON object" in not_object.output
    table = runner.invoke(app, ["ledger", "--table", "nope"])
    assert table.exit_code == 2 and "no ledger table" in table.output


def test_tool_list_names_bundled_tools(app: typer.Typer) -> None:
    out = CliRunner().invoke(app, ["tool", "list"]).output
    assert "create_invoice" in out and "confirm" in out


def test_bad_configuration_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from onward.cli.main import app as onward_app

    monkeypatch.setenv("ONWARD_LLM_CONCURRENCY", "zero")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(onward_app, ["doctor"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "invalid configuration: ONWARD_LLM_CONCURRENCY" in result.output
    assert "Traceback" not in result.output
