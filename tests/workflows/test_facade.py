"""`Onward(goals=[...])`: a user's goal, defined in a module of its own, run end to end
with no environment variable and no registration, next to other deployments."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from temporalio.testing import WorkflowEnvironment

from onward import Goal, Onward
from onward.agent.decisions import CallTools, Finish, ToolCall
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.exceptions import UnknownGoalError
from onward.testing import ScriptedModel

USER_MODULE = '''
from onward import Goal, tool

@tool
def convert(amount: float, rate: float) -> float:
    """Convert an amount at an exchange rate."""
    return round(amount * rate, 2)

@tool(approval="confirm")
def transfer(amount: float) -> str:
    """Send money (needs a human's yes)."""
    return f"sent {amount}"

MONEY = Goal(
    name="facade-money",
    description="Convert and send money.",
    instructions="Convert first, then send.",
    tools=[convert, transfer],
)
'''


def _load(tmp_path: Path) -> ModuleType:
    """The user's module, imported from a file: not on sys.path, named nowhere."""
    path = tmp_path / "facade_user_goal.py"
    path.write_text(textwrap.dedent(USER_MODULE))
    spec = importlib.util.spec_from_file_location("facade_user_goal", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_a_user_goal_runs_end_to_end_through_the_facade(
    ts_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    goal = _load(tmp_path).MONEY
    assert isinstance(goal, Goal)
    model = ScriptedModel(
        [
            CallTools(
                calls=[ToolCall(call_id="c", tool="convert", args={"amount": 10, "rate": 1.5})]
            ),
            CallTools(calls=[ToolCall(call_id="t", tool="transfer", args={"amount": 15.0})]),
            Finish(answer="Sent 15.0."),
        ]
    )
    app = Onward(goals=[goal], model=model, settings=settings)
    assert sorted(app.catalog.goals) == ["facade-money"]  # only what it was given
    async with app.running(ts_env.client) as convs:
        cid = await convs.start("facade-money", first_message="send 10 at 1.5")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        assert [a.tool for a in snap.pending_approvals] == ["transfer"]
        await convs.decide(cid, "t", "approve", snap.pending_approvals[0].args_hash)
        done = await convs.wait_for(cid, lambda s: s.answer is not None)
        assert done.answer == "Sent 15.0."
        await convs.end(cid, "done")
        result = await convs.result(cid)
    assert [(r.tool, r.result) for r in result.tool_calls] == [
        ("convert", 15.0),
        ("transfer", "sent 15.0"),
    ]
    # The goal lives in this deployment only: the default (discovered) catalog of the
    # same process does not know it.
    with pytest.raises(UnknownGoalError, match="facade-money"):
        await Conversations(ts_env.client, settings).start("facade-money")


async def test_two_deployments_in_one_process_do_not_share_goals(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    first = Onward(
        goals=[Goal(name="facade-a", description="a", instructions="i")],
        model=ScriptedModel([Finish(answer="from a")]),
        settings=settings,
    )
    second = Onward(
        goals=[Goal(name="facade-b", description="b", instructions="i")],
        model=ScriptedModel([]),
        settings=settings,
    )
    with pytest.raises(UnknownGoalError, match="facade-a"):
        second.catalog.get("facade-a")
    with pytest.raises(UnknownGoalError, match="facade-b"):
        await first.conversations(ts_env.client).start("facade-b")
    async with first.running(ts_env.client) as convs:
        cid = await convs.start("facade-a", first_message="hi")
        snap = await convs.wait_for(cid, lambda s: s.answer is not None)
    assert snap.answer == "from a"


def test_the_api_offers_the_goals_it_was_given(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from onward.api.settings import ApiSettings

    app = Onward(
        goals=[Goal(name="facade-api", description="d", instructions="i")],
        model=ScriptedModel([]),
        settings=settings,
    ).api(api_settings=ApiSettings(api_tokens={"t0ken-for-tests": "alice"}))
    with TestClient(app) as http:
        listed = http.get("/v1/goals", headers={"Authorization": "Bearer t0ken-for-tests"})
    assert listed.status_code == 200, listed.text
    assert [g["name"] for g in listed.json()["goals"]] == ["facade-api"]


def test_the_readme_example_runs(tmp_path: Path) -> None:
    """The README's goal example, as written, in a fresh interpreter."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("### Defining a goal", 1)[1].split("```python", 1)[1].split("```")[0]
    assert len(example.strip().splitlines()) <= 25
    script = tmp_path / "example.py"
    script.write_text(example)
    env = {**os.environ, "ONWARD_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("Done.")
