"""MCP tools from a Streamable HTTP server on 127.0.0.1 (built with the `mcp` SDK),
on the real dev server: listing once per run, one activity per call, policy before
the server, secrets kept out of history, attachments kept as references."""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from onward.agent.approvals import args_hash
from onward.agent.contracts import ConversationOptions
from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
from onward.agent.mcp import ACTIVITY_MCP_CALL, ACTIVITY_MCP_LIST
from onward.agent.messages import NoticeMessage, ToolResultMessage
from onward.agent.workflow import ConversationWorkflow
from onward.client.connect import data_converter
from onward.config import Settings
from onward.exceptions import InputRejected
from onward.goals.base import Goal
from onward.models.base import ModelRequest
from onward.store.transcripts import transcript_store
from onward.testing import ScriptedModel
from onward.tools.mcp import McpServer, Secret
from onward.worker import workflow_runner
from tests.conftest import AgentFactory, agent_factory, make_settings
from tests.integration.mcp_test_server import PNG, McpTestServer

pytestmark = pytest.mark.integration


@pytest.fixture
def web() -> Iterator[McpTestServer]:
    with McpTestServer() as srv:
        yield srv


def goal_name() -> str:
    return f"mcp-web-{uuid.uuid4().hex[:8]}"


def call(cid: str, tool: str, **args: object) -> CallTools:
    return CallTools(calls=[ToolCall(call_id=cid, tool=tool, args=args)])


def results(request: ModelRequest) -> list[ToolResultMessage]:
    return [m for m in request.messages if isinstance(m, ToolResultMessage)]


async def run_histories(client: Client, cid: str) -> list[list[str]]:
    """Scheduled activity types of each run of `cid`, first run first."""
    runs: list[list[str]] = []
    run_id: str | None = None
    while True:
        scheduled: list[str] = []
        previous = ""
        handle = client.get_workflow_handle(cid, run_id=run_id)
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                previous = (
                    event.workflow_execution_started_event_attributes.continued_execution_run_id
                )
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        runs.insert(0, scheduled)
        if not previous:
            return runs
        run_id = previous


async def replay_every_run(client: Client, cid: str, settings: Settings) -> int:
    """Replay each run of `cid` with and without the sandbox; returns how many runs."""
    run_id: str | None = None
    runs = 0
    while True:
        history = await client.get_workflow_handle(cid, run_id=run_id).fetch_history()
        for sandbox in ("off", "shared"):
            replay_settings = settings.model_copy(update={"workflow_sandbox": sandbox})
            replayer = Replayer(
                workflows=[ConversationWorkflow],
                data_converter=data_converter(replay_settings),
                workflow_runner=workflow_runner(replay_settings),
            )
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            assert result.replay_failure is None, f"{sandbox}: {result.replay_failure}"
        runs += 1
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return runs
        run_id = started.continued_execution_run_id


def _payload_texts(node: object, out: list[str]) -> None:
    if isinstance(node, dict):
        fields = cast(dict[str, object], node)
        data = fields.get("data")
        if isinstance(data, str) and "metadata" in fields:
            out.append(base64.b64decode(data).decode(errors="replace"))
        for value in fields.values():
            _payload_texts(value, out)
    elif isinstance(node, list):
        for value in cast(list[object], node):
            _payload_texts(value, out)


async def history_text(client: Client, cid: str) -> str:
    """The history as JSON plus every payload decoded: what anyone reading it sees."""
    raw = (await client.get_workflow_handle(cid).fetch_history()).to_json()
    decoded: list[str] = []
    _payload_texts(json.loads(raw), decoded)
    return raw + "\n".join(decoded)


async def test_http_tools_reach_the_answer_one_activity_per_call(
    dev_agent: AgentFactory, dev_env: WorkflowEnvironment, web: McpTestServer, settings: Settings
) -> None:
    name = goal_name()
    goal = Goal(
        name=name,
        description="Sums and charts.",
        instructions="Use the tools.",
        mcp=[McpServer.http("web", web.url)],
        end_on_finish=True,
    )

    def script(request: ModelRequest) -> CallTools | Finish:
        done = results(request)
        if not done:
            return CallTools(
                calls=[
                    ToolCall(call_id="a1", tool="add", args={"a": 2, "b": 3}),
                    ToolCall(call_id="c1", tool="chart", args={"title": "week"}),
                ]
            )
        if len(done) == 2:
            return call("f1", "fail", reason="no reason")
        total = done[0].content["result"]  # structured content of an int-returning tool
        return Finish(answer=f"2 + 3 = {total}; the chart is {done[1].content}")

    model = ScriptedModel(script)
    async with dev_agent(model, [goal]) as convs:
        cid = await convs.start(name, first_message="What is 2 + 3, and draw me the week")
        result = await convs.result(cid)
        snap = await convs.snapshot(cid)

    # The model saw the MCP tools exactly like Python tools, with their origin.
    seen = {t.name: t for t in model.calls[0].goal.tools}
    assert set(seen) == {"add", "slow_square", "append_note", "record_sale", "chart", "fail"}
    assert seen["add"].origin == "mcp:web" and seen["add"].approval == "auto"
    assert seen["append_note"].approval == "confirm"  # not marked read-only
    assert seen["add"].parameters["required"] == ["a", "b"]

    assert result.answer is not None and result.answer.startswith("2 + 3 = 5;")
    assert web.count("add") == web.count("chart") == web.count("fail") == 1
    done = [m for m in snap.messages if isinstance(m, ToolResultMessage)]
    assert [(m.tool, m.ok) for m in done] == [("add", True), ("chart", True), ("fail", False)]
    assert done[2].error is not None and "cannot do that: no reason" in done[2].error
    # The image is a reference to a stored file, not base64 in history.
    chart = cast(dict[str, list[dict[str, object]]], done[1].content)
    (attachment,) = chart["attachments"]
    assert attachment["type"] == "image" and attachment["mime_type"] == "image/png"
    assert attachment["bytes"] == len(PNG)
    stored = await transcript_store(settings).get_blob(cid, str(attachment["ref"]))
    assert stored == PNG
    history = await history_text(dev_env.client, cid)
    assert "iVBORw0KGgo" not in history  # the PNG's base64 never entered history

    (run,) = await run_histories(dev_env.client, cid)
    kinds = Counter(run)
    assert kinds[ACTIVITY_MCP_LIST] == 1
    assert kinds[ACTIVITY_MCP_CALL] == 3
    print(f"one run: {dict(kinds)}")


async def test_each_run_lists_once_and_sees_the_servers_changes(
    dev_agent: AgentFactory, dev_env: WorkflowEnvironment, web: McpTestServer, settings: Settings
) -> None:
    name = goal_name()
    goal = Goal(
        name=name,
        description="Sums.",
        instructions="Use add.",
        mcp=[McpServer.http("web", web.url)],
    )

    def script(request: ModelRequest) -> CallTools | AskUser:
        done = results(request)
        user_turns = sum(1 for m in request.messages if m.kind == "user")
        if len(done) < user_turns:
            return call(f"a{user_turns}", "add", a=user_turns, b=1)
        return AskUser(text=f"that makes {done[-1].content['result']}; anything else?")

    model = ScriptedModel(script)
    async with dev_agent(model, [goal]) as convs:
        cid = await convs.start(
            name,
            first_message="add one to one",
            options=ConversationOptions(turns_before_continue_as_new=1),
        )
        await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.message_count >= 4)

        def double(x: int) -> int:
            """Double a number."""
            return 2 * x

        web.mcp.add_tool(double)  # the next run must see it; this one must not
        await convs.send(cid, "and one to two")
        snap = await convs.wait_for(cid, lambda s: s.runs == 3 and s.status == "waiting_for_user")

    assert snap.status == "waiting_for_user"
    first_run_tools = {t.name for t in model.calls[0].goal.tools}
    last_run_tools = {t.name for t in model.calls[-1].goal.tools}
    assert "double" not in first_run_tools and "double" in last_run_tools
    assert snap.message_count == 8
    # One turn per run: each run that decided anything listed once; the third run
    # (just started, waiting for a message) has not needed the tools yet.
    runs = await run_histories(dev_env.client, cid)
    assert [Counter(r)[ACTIVITY_MCP_LIST] for r in runs] == [1, 1, 0]
    assert [Counter(r)[ACTIVITY_MCP_CALL] for r in runs] == [1, 1, 0]
    assert web.count("add") == 2
    # The recorded listing is all a replay needs: no server is asked again.
    calls_before = len(web.calls)
    assert await replay_every_run(dev_env.client, cid, settings) == 3
    assert len(web.calls) == calls_before


async def test_policy_runs_before_the_server(dev_agent: AgentFactory, web: McpTestServer) -> None:
    name = goal_name()
    goal = Goal(
        name=name,
        description="Notes and sums.",
        instructions="Use the tools.",
        mcp=[McpServer.http("web", web.url, tools=["add", "append_*"])],
        end_on_finish=True,
    )
    model = ScriptedModel(
        [
            call("s1", "record_sale", item="mug", amount=5),  # not in the allow-list
            call("b1", "add", a="two", b=3),  # fails the server's own schema
            call("n1", "append_note", text="buy milk"),  # confirm: waits for a human
            Finish(answer="noted"),
        ]
    )
    async with dev_agent(model, [goal]) as convs:
        cid = await convs.start(name, first_message="note that I must buy milk")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        pending = snap.pending_approvals[0]
        assert pending.call_id == "n1" and pending.tool == "append_note"
        assert pending.args_hash == args_hash({"text": "buy milk"})
        assert web.calls == []  # nothing reached the server yet

        with pytest.raises(InputRejected, match="hash"):
            await convs.decide(cid, "n1", "approve", args_hash({"text": "buy beer"}))
        with pytest.raises(InputRejected):
            await convs.decide(cid, "other", "approve", pending.args_hash)
        assert web.calls == []
        await convs.decide(cid, "n1", "approve", pending.args_hash)
        result = await convs.result(cid)
        snap = await convs.snapshot(cid)

    assert result.answer == "noted"
    assert [(c.tool, c.args) for c in web.calls] == [("append_note", {"text": "buy milk"})]
    errors = [m.error for m in snap.messages if isinstance(m, ToolResultMessage) and not m.ok]
    assert errors[0] is not None and "`record_sale` is not available for this goal" in errors[0]
    assert errors[1] is not None and errors[1].startswith("invalid arguments: a:")


@pytest.mark.parametrize("sandbox", ["off", "isolated"])
async def test_secrets_come_from_settings_and_never_enter_history(
    dev_env: WorkflowEnvironment, web: McpTestServer, session_data_dir: Path, sandbox: str
) -> None:
    # Also under Temporal's workflow sandbox: the MCP workflow code is deterministic.
    token = f"tok-{uuid.uuid4().hex}"
    settings = make_settings(
        session_data_dir, mcp_secrets={"web-token": token}, workflow_sandbox=sandbox
    )
    name = goal_name()
    goal = Goal(
        name=name,
        description="Sums.",
        instructions="Use add.",
        mcp=[
            McpServer.http(
                "web", web.url, headers={"Authorization": Secret("web-token", "Bearer {}")}
            )
        ],
        end_on_finish=True,
    )
    model = ScriptedModel([call("a1", "add", a=1, b=1), Finish(answer="2")])
    async with agent_factory(dev_env, settings)(model, [goal]) as convs:
        cid = await convs.start(name, first_message="1 + 1?")
        assert (await convs.result(cid)).answer == "2"
    assert web.count("add") == 1
    assert {h.get("authorization") for h in web.headers} == {f"Bearer {token}"}
    history = await history_text(dev_env.client, cid)
    assert token not in history and "web-token" in history  # the name, never the value


async def test_an_unreachable_url_is_a_clear_notice_and_the_conversation_stays_open(
    dev_agent: AgentFactory,
) -> None:
    with McpTestServer() as gone:
        url = gone.url  # a port that was just closed: connection refused
    name = goal_name()
    goal = Goal(
        name=name, description="Sums.", instructions="Use add.", mcp=[McpServer.http("web", url)]
    )
    model = ScriptedModel(
        [AskUser(text="I cannot reach my tools right now."), AskUser(text="Still not.")]
    )
    async with dev_agent(model, [goal]) as convs:
        cid = await convs.start(name, first_message="add 1 and 2")
        snap = await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
        await convs.send(cid, "try again please")
        snap = await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 2)

    notices = [m for m in snap.messages if isinstance(m, NoticeMessage)]
    assert len(notices) == 2  # listed again with the next message, failing again
    assert "Tools of MCP server `web` are unavailable" in notices[0].text
    assert "cannot connect" in notices[0].text and notices[0].level == "error"
    assert snap.status == "waiting_for_user"  # open: the user can carry on
    assert model.calls[0].goal.tools == []
