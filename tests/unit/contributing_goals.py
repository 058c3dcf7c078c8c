"""A user's goal module that comes with `onward` commands (`CLI_COMMANDS`): a command
function and a command group, as a goal package would contribute them."""

from __future__ import annotations

import typer

from onward.goals.base import Goal

GREETER = Goal(name="greeter", description="Says hello.", instructions="Greet the user.")

CLI_COMMANDS = (
    "tests.unit.contributing_goals:greet",
    "tests.unit.contributing_goals:rooms_app",
)

rooms_app = typer.Typer(name="rooms", help="The greeter's rooms.", no_args_is_help=True)


def greet(name: str = typer.Argument("world")) -> None:
    """Say hello from a goal module's own command."""
    typer.echo(f"hello, {name}")


@rooms_app.command("list")
def list_rooms() -> None:
    """List the rooms."""
    typer.echo("lobby, garden")


NOT_A_COMMAND = 3
