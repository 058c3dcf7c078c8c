"""Operator commands of the `onward` CLI: tools, bench."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from onward.config import get_settings

if TYPE_CHECKING:
    from onward.agent.mcp import McpServerListing
    from onward.agent.specs import GoalSpec

console = Console()
tool_app = typer.Typer(no_args_is_help=True, help="Run tools on their own for manual checks.")


@tool_app.command("run")
def tool_run(
    name: str = typer.Argument(..., help="Tool name, e.g. find_events."),
    args: str = typer.Option("{}", "--args", help="Arguments as a JSON object."),
    key: str = typer.Option("manual:cli", "--key", help="Idempotency key (conversation:call)."),
) -> None:
    """Run one tool with JSON arguments, outside any conversation."""
    from onward.exceptions import ToolArgumentsError, UnknownToolError
    from onward.goals.catalog import GoalCatalog
    from onward.tools.context import ToolContext

    catalog = GoalCatalog.discover(get_settings().goal_modules)
    try:
        parsed = json.loads(args)
        if not isinstance(parsed, dict):
            raise ValueError("--args must be a JSON object")
        tool = catalog.tool(name)
    except (ValueError, UnknownToolError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    conversation, _, call = key.partition(":")
    ctx = ToolContext(conversation_id=conversation, call_id=call or "cli", attempt=1)
    try:
        result = asyncio.run(tool.invoke(parsed, ctx))  # pyright: ignore[reportUnknownArgumentType]
    except ToolArgumentsError as exc:
        console.print(f"[red]invalid arguments: {exc}[/red]")
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(result, indent=2, default=str))


@tool_app.command("list")
def tool_list(
    mcp: bool = typer.Option(True, "--mcp/--no-mcp", help="List MCP servers' tools live."),
) -> None:
    """List every goal's tools with their origin and approval policy.

    MCP servers are asked for their tools now, as a conversation would at its start.
    """
    from onward.goals.catalog import GoalCatalog

    catalog = GoalCatalog.discover(get_settings().goal_modules)
    specs = [catalog.spec(name) for name in sorted(catalog.goals)]
    listings = asyncio.run(_list_mcp(specs)) if mcp else {}
    view = Table("goal", "tool", "origin", "approval", "description")
    for spec in specs:
        for row in _tool_rows(spec, listings):
            view.add_row(*row)
    console.print(view)


async def _list_mcp(specs: list[GoalSpec]) -> dict[str, McpServerListing]:
    from onward.activities.mcp import McpActivities
    from onward.store.transcripts import transcript_store

    servers = {m.model_dump_json(): m for spec in specs for m in spec.mcp_servers}
    settings = get_settings()
    activities = McpActivities(settings, transcript_store(settings))
    async with activities.running():
        found = await asyncio.gather(
            *(activities.list_server(m, "cli:tool-list") for m in servers.values())
        )
    return dict(zip(servers, found, strict=True))


def _tool_rows(
    spec: GoalSpec, listings: dict[str, McpServerListing]
) -> list[tuple[str, str, str, str, str]]:
    from onward.agent.mcp import merge_tools

    by_name = {
        m.name: listings[m.model_dump_json()]
        for m in spec.mcp_servers
        if m.model_dump_json() in listings
    }
    tools, problems = merge_tools(spec, by_name)
    rows = [
        (
            spec.name,
            t.name,
            t.origin,
            t.approval,
            t.description.splitlines()[0] if t.description else "",
        )
        for t in tools
    ]
    for m in spec.mcp_servers:
        listing = by_name.get(m.name)
        if listing is None:
            rows.append((spec.name, "(not listed)", f"mcp:{m.name}", "", "run without --no-mcp"))
        elif listing.error is not None:
            rows.append((spec.name, "(unavailable)", f"mcp:{m.name}", "", listing.error))
    rows += [(spec.name, "(left out)", "mcp", "", problem) for problem in problems]
    return rows


def bench() -> None:
    """Run the benchmark suite (`bench/` in a source checkout)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "bench" / "__main__.py").exists():
        console.print("[red]`onward bench` runs from a source checkout (bench/ not found)[/red]")
        raise typer.Exit(2)
    raise typer.Exit(subprocess.call([sys.executable, "-m", "bench"], cwd=root))


def register(app: typer.Typer) -> None:
    app.command()(bench)
    app.add_typer(tool_app, name="tool")
