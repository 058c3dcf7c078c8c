"""The bundled `clock-and-git` goal against `mcp-server-time` and `mcp-server-git` from
PyPI, run as real stdio subprocesses by the worker, on the real dev server."""

from __future__ import annotations

import subprocess
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.testing import WorkflowEnvironment

from onward.agent.approvals import args_hash
from onward.agent.decisions import AskUser, CallTools, Decision, Finish, ToolCall
from onward.agent.mcp import ACTIVITY_MCP_CALL, ACTIVITY_MCP_LIST
from onward.agent.messages import NoticeMessage, ToolResultMessage
from onward.examples.mcp_tools import CLOCK_AND_GIT
from onward.goals.base import Goal
from onward.models.base import ModelRequest
from onward.testing import ScriptedModel
from onward.tools.mcp import McpServer
from tests.conftest import AgentFactory
from tests.integration.test_mcp_http import results, run_histories

pytestmark = pytest.mark.integration


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Ada", "-c", "user.email=ada@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with four commits, one file each."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for n, (name, message) in enumerate(
        [
            ("README.md", "Start the project"),
            ("app.py", "Add the app entry point"),
            ("tests.py", "Test the greeting"),
            ("CHANGES.md", "Write the changelog"),
        ]
    ):
        (root / name).write_text(f"{n}\n")
        git(root, "add", name)
        git(root, "commit", "-q", "-m", message)
    return root


def answered(snap: Any) -> bool:
    return snap.answer is not None or snap.status == "ended"


def tool_results(messages: list[Any]) -> list[ToolResultMessage]:
    return [m for m in messages if isinstance(m, ToolResultMessage)]


async def test_time_in_tokyo_when_it_is_9am_in_austin(
    dev_agent: AgentFactory, dev_env: WorkflowEnvironment
) -> None:
    def script(request: ModelRequest) -> Decision:
        done = results(request)
        if not done:
            args = {
                "source_timezone": "America/Chicago",
                "time": "09:00",
                "target_timezone": "Asia/Tokyo",
            }
            return CallTools(calls=[ToolCall(call_id="t1", tool="convert_time", args=args)])
        target = cast(dict[str, dict[str, str]], done[0].content)["target"]
        return Finish(answer=f"In Tokyo it is {target['datetime']} ({target['day_of_week']}).")

    model = ScriptedModel(script)
    async with dev_agent(model) as convs:
        cid = await convs.start(
            CLOCK_AND_GIT.name, first_message="what time is it in Tokyo when it is 9 am in Austin?"
        )
        snap = await convs.wait_for(cid, answered, timeout_s=60)

    # Every tool of both servers was offered, with its origin, after one listing.
    origins = {t.name: t.origin for t in model.calls[0].goal.tools}
    assert origins["convert_time"] == "mcp:time" and origins["git_log"] == "mcp:git"
    (result,) = tool_results(snap.messages)
    assert result.ok, result.error
    content = cast(dict[str, Any], result.content)
    assert content["target"]["timezone"] == "Asia/Tokyo"
    # 9:00 in Austin is 00:00 the next day in Tokyo (23:00 while Austin is on DST).
    assert content["target"]["datetime"][11:16] in ("00:00", "23:00")
    assert content["time_difference"] in ("+15.0h", "+14.0h")
    assert snap.answer == f"In Tokyo it is {content['target']['datetime']} " + (
        f"({content['target']['day_of_week']})."
    )
    (run,) = await run_histories(dev_env.client, cid)
    assert Counter(run)[ACTIVITY_MCP_LIST] == 1  # both servers in one listing
    assert Counter(run)[ACTIVITY_MCP_CALL] == 1


async def test_what_changed_in_the_last_three_commits(
    dev_agent: AgentFactory, dev_env: WorkflowEnvironment, repo: Path
) -> None:
    def script(request: ModelRequest) -> Decision:
        done = results(request)
        if not done:
            args = {"repo_path": str(repo), "max_count": 3}
            return CallTools(calls=[ToolCall(call_id="g1", tool="git_log", args=args)])
        log = str(done[0].content)
        messages = [
            line.removeprefix("Message: ")
            for line in log.splitlines()
            if line.startswith("Message: ")
        ]
        return Finish(answer="The last three commits: " + "; ".join(messages))

    model = ScriptedModel(script)
    async with dev_agent(model) as convs:
        cid = await convs.start(
            CLOCK_AND_GIT.name,
            first_message=f"what changed in the last three commits of {repo}?",
        )
        snap = await convs.wait_for(cid, answered, timeout_s=60)

    assert snap.answer == (
        "The last three commits: Write the changelog; Test the greeting; Add the app entry point"
    )
    (run,) = await run_histories(dev_env.client, cid)
    assert Counter(run)[ACTIVITY_MCP_LIST] == 1
    assert Counter(run)[ACTIVITY_MCP_CALL] == 1


async def test_git_changes_wait_for_a_human_and_reset_is_denied(
    dev_agent: AgentFactory, repo: Path
) -> None:
    (repo / "notes.md").write_text("draft\n")
    git(repo, "add", "notes.md")
    (repo / "todo.md").write_text("later\n")
    staged_before = git(repo, "diff", "--cached", "--name-only")
    model = ScriptedModel(
        [
            CallTools(
                calls=[ToolCall(call_id="r1", tool="git_reset", args={"repo_path": str(repo)})]
            ),
            CallTools(
                calls=[
                    ToolCall(
                        call_id="a1",
                        tool="git_add",
                        args={"repo_path": str(repo), "files": ["todo.md"]},
                    )
                ]
            ),
            AskUser(text="I left the repository as it was."),
        ]
    )
    async with dev_agent(model) as convs:
        cid = await convs.start(CLOCK_AND_GIT.name, first_message=f"tidy up {repo}")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals), timeout_s=60)
        pending = snap.pending_approvals[0]
        assert pending.tool == "git_add"
        assert pending.args_hash == args_hash({"repo_path": str(repo), "files": ["todo.md"]})
        await convs.decide(cid, "a1", "reject", pending.args_hash, feedback="not now")
        snap = await convs.wait_for(cid, lambda s: s.status == "waiting_for_user", timeout_s=60)

    # The repository is untouched: the reset never reached the server, nor the add.
    assert git(repo, "diff", "--cached", "--name-only") == staged_before == "notes.md\n"
    assert "todo.md" in git(repo, "status", "--porcelain", "--untracked-files=all")
    denied, rejected = tool_results(snap.messages)
    assert denied.error == "tool `git_reset` is denied by policy"
    assert rejected.error == "not run: rejected by the user: not now"


async def test_a_missing_server_binary_is_a_clear_notice_and_the_conversation_stays_open(
    dev_agent: AgentFactory,
) -> None:
    name = f"mcp-ghost-{uuid.uuid4().hex[:8]}"
    goal = Goal(
        name=name,
        description="Ghost tools.",
        instructions="Use the tools.",
        mcp=[
            McpServer.stdio("ghost", "onward-no-such-mcp-server"),
            McpServer.stdio("time", "mcp-server-time"),
        ],
    )
    model = ScriptedModel([AskUser(text="Only the clock works today."), AskUser(text="Still.")])
    async with dev_agent(model, [goal]) as convs:
        cid = await convs.start(name, first_message="hello")
        snap = await convs.wait_for(cid, lambda s: s.turns == 1 and _resting(s), timeout_s=60)
        (notice,) = [m for m in snap.messages if isinstance(m, NoticeMessage)]
        await convs.send(cid, "is the ghost back?")
        snap = await convs.wait_for(cid, lambda s: s.turns == 2 and _resting(s), timeout_s=60)

    assert notice.level == "error"
    assert "Tools of MCP server `ghost` are unavailable" in notice.text
    assert "the command `onward-no-such-mcp-server` was not found" in notice.text
    # The other server's tools are there, and it is not listed again in this run.
    assert {t.origin for t in model.calls[0].goal.tools} == {"mcp:time"}
    notices = [m for m in snap.messages if isinstance(m, NoticeMessage)]
    assert len(notices) == 2 and "`ghost`" in notices[1].text
    assert snap.status == "waiting_for_user"


def _resting(snap: Any) -> bool:
    return snap.status == "waiting_for_user"
