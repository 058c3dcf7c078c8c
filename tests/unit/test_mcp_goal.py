"""The bundled `clock-and-git` goal: offered in the goal picker, and its MCP tools
listed with their origin by `onward tool list` (which asks the real servers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from onward.api.app import create_app
from onward.cli import ops as cli_ops
from onward.config import get_settings
from tests.api.conftest import ALICE, api_settings
from tests.conftest import make_settings


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    monkeypatch.setenv("ONWARD_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(cli_ops.console, "width", 240)  # one row per tool, unwrapped
    get_settings.cache_clear()
    app = typer.Typer()
    cli_ops.register(app)
    yield app
    get_settings.cache_clear()


def rows(output: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.split("│")[1:-1]] for line in output.splitlines() if "│" in line
    ]


async def test_the_goal_picker_offers_clock_and_git(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), api_settings=api_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as http:
        goals = {g["name"]: g for g in (await http.get("/v1/goals", headers=ALICE)).json()["goals"]}
    goal = goals["clock-and-git"]
    assert "time zones" in goal["description"] and "git" in goal["description"]
    assert "Tokyo" in goal["starter_prompt"]


def test_tool_list_shows_each_tools_origin(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["tool", "list"])
    assert result.exit_code == 0, result.output
    table = {(r[0], r[1]): r for r in rows(result.output)}
    assert table[("clock-and-git", "convert_time")][2:4] == ["mcp:time", "auto"]
    assert table[("clock-and-git", "git_log")][2:4] == ["mcp:git", "auto"]
    assert table[("clock-and-git", "git_commit")][2:4] == ["mcp:git", "confirm"]
    assert table[("clock-and-git", "git_reset")][2:4] == ["mcp:git", "deny"]
    assert table[("purchase", "charge_card")][2] == "python"


def test_tool_list_without_mcp_names_the_servers_it_did_not_ask(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["tool", "list", "--no-mcp"])
    assert result.exit_code == 0, result.output
    listed = [r[1:3] for r in rows(result.output) if r[0] == "clock-and-git"]
    assert listed == [["(not listed)", "mcp:time"], ["(not listed)", "mcp:git"]]
