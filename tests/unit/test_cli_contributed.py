"""Goal modules contribute `onward` commands (`CLI_COMMANDS`), as they contribute
routes: the bundled examples bring `onward ledger` and `onward chaos` that way."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from onward.cli.contributed import register_contributed
from onward.exceptions import UserError
from onward.goals.catalog import GoalCatalog

MODULE = "tests.unit.contributing_goals"


def test_a_goal_modules_commands_show_up_and_run() -> None:
    catalog = GoalCatalog.discover([MODULE])
    assert "greeter" in catalog.goals
    app = typer.Typer()
    app.command()(lambda: None)  # typer runs a lone command without its name
    register_contributed(app, catalog.cli_commands)
    runner = CliRunner()
    shown = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "greet" in shown.output and "rooms" in shown.output
    assert runner.invoke(app, ["greet", "Ana"]).output == "hello, Ana\n"
    assert runner.invoke(app, ["rooms", "list"]).output == "lobby, garden\n"


def test_the_catalog_keeps_commands_when_goals_are_added() -> None:
    catalog = GoalCatalog.discover([MODULE])
    assert catalog.with_goals([]).cli_commands == catalog.cli_commands
    assert f"{MODULE}:greet" in catalog.cli_commands


def test_onward_help_lists_the_examples_commands() -> None:
    from onward.cli.main import app

    shown = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "ledger" in shown.output and "chaos" in shown.output
    assert "side-effect ledger" in shown.output


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        (f"{MODULE}:NOT_A_COMMAND", "not a command"),
        (f"{MODULE}:missing", "was not found"),
        ("tests.unit.no_such_module:greet", "was not found"),
        (f"{MODULE}:GREETER", "not a command"),
    ],
)
def test_a_reference_to_no_command_is_a_clear_error(ref: str, reason: str) -> None:
    with pytest.raises(UserError, match=reason):
        register_contributed(typer.Typer(), [ref])
