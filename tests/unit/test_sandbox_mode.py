"""`ONWARD_WORKFLOW_SANDBOX=auto`: no sandbox for onward's own workflow code, Temporal's
sandbox as soon as a goal runs graph code from outside onward inside the workflow."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from onward.agent import graphs
from onward.agent.graphs import TurnDriver, foreign_graphs
from onward.config import Settings, WorkflowSandbox
from onward.goals.catalog import GoalCatalog
from onward.worker import sandbox_mode, workflow_runner


async def user_turn(driver: TurnDriver) -> None:
    driver.reply("hello from a user's graph")


def settings_with(tmp_path: Path, sandbox: WorkflowSandbox) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, workflow_sandbox=sandbox)  # type: ignore[call-arg]


def test_auto_runs_onwards_own_goals_without_the_sandbox(tmp_path: Path) -> None:
    settings = settings_with(tmp_path, "auto")
    goals = GoalCatalog.discover(settings.goal_modules).goals
    assert goals["research-graph"].graph  # a bundled goal that runs a graph in the workflow
    assert foreign_graphs() == []
    assert sandbox_mode(settings) == "off"
    assert isinstance(workflow_runner(settings), UnsandboxedWorkflowRunner)


def test_auto_sandboxes_when_a_user_graph_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graphs, "_GRAPHS", dict(graphs._GRAPHS))  # pyright: ignore[reportPrivateUsage]
    graphs.register_graph("user-graph", user_turn)
    settings = settings_with(tmp_path, "auto")
    assert foreign_graphs() == ["user-graph"]
    assert sandbox_mode(settings) == "shared"
    assert isinstance(workflow_runner(settings), SandboxedWorkflowRunner)


@pytest.mark.parametrize("mode", ["shared", "isolated", "off"])
def test_an_explicit_mode_is_kept(
    mode: WorkflowSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graphs, "_GRAPHS", dict(graphs._GRAPHS))  # pyright: ignore[reportPrivateUsage]
    graphs.register_graph("user-graph", user_turn)
    assert sandbox_mode(settings_with(tmp_path, mode)) == mode
