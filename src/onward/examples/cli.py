"""The examples' `onward` commands: `onward ledger` and `onward chaos`.

They come with the examples because they are about them: the ledger is where the
bundled goals record their side effects, and a chaos run drives the bundled goals and
compares their ledgers. The examples' goal module names them in `CLI_COMMANDS`, so the
CLI adds them the way it would a user package's commands.
"""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console
from rich.table import Table

from onward.config import get_settings
from onward.examples.ledger import ledger_tables

console = Console()


def ledger(
    table: str | None = typer.Option(None, "--table", "-t", help="Only this table."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show the side-effect ledger (invoices, reports, tickets, emails, …)."""
    tables = ledger_tables(get_settings())
    if table is not None:
        if table not in tables:
            console.print(f"[red]no ledger table {table!r}; known: {', '.join(tables)}[/red]")
            raise typer.Exit(2)
        tables = {table: tables[table]}
    if as_json:
        typer.echo(json.dumps(tables, indent=2, default=str))
        return
    for name, rows in tables.items():
        view = Table(title=f"{name} ({len(rows)})")
        columns = list(rows[0]) if rows else ["(empty)"]
        for column in columns:
            view.add_column(column, overflow="fold")
        for row in rows:
            view.add_row(*(str(row.get(c, "")) for c in columns))
        console.print(view)


def chaos(
    conversations: int = typer.Option(10, "--conversations", "-k", min=1),
    kills: int = typer.Option(5, "--kills", "-m", min=0),
    seed: int = typer.Option(1, "--seed", "-s"),
    timeout_s: float = typer.Option(900, "--timeout", help="Give up after this many seconds."),
    target: str = typer.Option(
        "worker",
        "--target",
        "-t",
        help="`worker`: kill the worker. `api`: kill the API while clients create, send "
        "and approve through it with retries and Idempotency-Keys.",
    ),
) -> None:
    """SIGKILL the worker (or the API) at random moments; check nothing is lost or doubled."""
    if target not in ("worker", "api"):
        console.print(f"[red]--target must be `worker` or `api`, not {target!r}[/red]")
        raise typer.Exit(2)
    if target == "api":
        from onward.examples.chaos.api import api_report_table, run_api_chaos

        api_report = asyncio.run(run_api_chaos(conversations, kills, seed, timeout_s))
        console.print(api_report_table(api_report))
        differences, ok = api_report.differences, api_report.ok
    else:
        from onward.examples.chaos.worker import report_table, run_chaos

        report = asyncio.run(run_chaos(conversations, kills, seed, timeout_s))
        console.print(report_table(report))
        differences, ok = report.differences, report.ok
    for line in differences:
        console.print(f"[red]{line}[/red]", markup=False)
    if not ok:
        raise typer.Exit(1)
    console.print("[green]no acknowledged input lost, no side effect doubled[/green]")
