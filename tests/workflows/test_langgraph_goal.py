"""The LangGraph research goal: graph-driven turns whose every model and tool call is
still an onward activity, replay-safe when each workflow task replays the history."""

from __future__ import annotations

import json
from collections import Counter
from importlib import import_module

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment

from onward.agent.decisions import AskUser, Decision, Finish
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    UserMessage,
)
from onward.client.conversations import Conversations
from onward.config import Settings, WorkflowSandbox
from onward.examples.ledger import Ledger
from onward.examples.research_graph import GRAPH_NAME, recheck_note
from onward.models.base import ModelRequest
from onward.testing import ScriptedModel
from onward.worker import build_workers, running_workers
from tests.conftest import AgentFactory, agent_factory, answered
from tests.workflows.toolbox import call

# LangGraph is in the dev extra: without it these tests fail (at import), never skip.
import_module("langgraph")

QUESTION = "How do sagas keep distributed transactions consistent?"
CITED = "Sagas run compensations for completed steps in reverse order [doc-002]."


def tool_calls(messages: list[Message]) -> list[tuple[str, str]]:
    return [(m.call_id, m.tool) for m in messages if isinstance(m, ToolCallMessage)]


async def activity_counts(env: WorkflowEnvironment, cid: str) -> Counter[str]:
    """Activities the history scheduled, by type (local ones are markers), plus the
    number of failed workflow tasks (a replay that diverged fails its task)."""
    counts: Counter[str] = Counter()
    async for event in env.client.get_workflow_handle(cid).fetch_history_events():
        counts.update(_activity_type(event))
    return counts


def _activity_type(event: HistoryEvent) -> list[str]:
    if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        return [event.activity_task_scheduled_event_attributes.activity_type.name]
    marker = event.marker_recorded_event_attributes
    if marker.marker_name == "core_local_activity":
        return ["local:" + json.loads(marker.details["data"].payloads[0].data)["activity_type"]]
    if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
        return ["workflow_task_failed"]
    return []


# `off` is how `auto` runs the bundled graph; `shared` how it runs beside user graphs.
@pytest.mark.parametrize("sandbox", ["off", "shared"])
async def test_graph_retrieves_first_and_runs_every_call_as_an_activity(
    sandbox: WorkflowSandbox, ts_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> None:
    ts_agent = agent_factory(ts_env, settings.model_copy(update={"workflow_sandbox": sandbox}))
    model = ScriptedModel(
        [
            call("m1", "search_documents", query="idempotency key retry"),
            call("m2", "store_report", title="Sagas", body=CITED, sources=["doc-002"]),
            Finish(answer=CITED),
        ]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start(GRAPH_NAME, first_message=QUESTION)
        result = await answered(convs, cid)
        snap = await convs.snapshot(cid)
    assert tool_calls(snap.messages) == [
        ("retrieve-1", "search_documents"),
        ("m1", "search_documents"),
        ("m2", "store_report"),
    ]
    retrieval = result.tool_calls[0]
    assert retrieval.args == {"query": QUESTION}
    assert "doc-002" in retrieval.result["sources"]
    # The model's first request already holds the retrieval's result.
    assert tool_calls(list(model.calls[0].messages)) == [("retrieve-1", "search_documents")]
    assert result.outcome == "finished" and result.answer == CITED
    assert await activity_counts(ts_env, cid) == {
        "onward.decide": 3,
        "local:onward.tool": 2,  # search_documents is a local tool
        "onward.tool": 1,
    }
    [row] = ledger.rows("reports")
    assert row["idempotency_key"] == f"{cid}:m2"


def citing_on_request(first: str, second: str) -> ScriptedModel:
    """Answers `first`, and `second` once the graph has sent the answer back."""

    def script(request: ModelRequest) -> Decision:
        rechecked = any(
            isinstance(m, NoticeMessage) and m.text.startswith("Checking my draft")
            for m in request.messages
        )
        return Finish(answer=second if rechecked else first)

    return ScriptedModel(script)


async def test_check_sends_an_uncited_answer_back_once(ts_agent: AgentFactory) -> None:
    model = citing_on_request("Sagas undo finished steps.", CITED)
    async with ts_agent(model) as convs:
        cid = await convs.start(GRAPH_NAME, first_message=QUESTION)
        result = await answered(convs, cid)
        snap = await convs.snapshot(cid)
    assert len(model.calls) == 2
    sources = result.tool_calls[0].result["sources"]
    assert [m.text for m in snap.messages if isinstance(m, AssistantMessage | NoticeMessage)] == [
        recheck_note(sources),
        CITED,
    ]
    assert isinstance(snap.messages[-2], NoticeMessage)
    assert result.answer == CITED


async def test_check_gives_the_answer_after_one_recheck(ts_agent: AgentFactory) -> None:
    uncited = "Sagas undo finished steps."
    model = citing_on_request(uncited, uncited)
    async with ts_agent(model) as convs:
        cid = await convs.start(GRAPH_NAME, first_message=QUESTION)
        result = await answered(convs, cid)
    assert len(model.calls) == 2
    assert (result.outcome, result.answer) == ("finished", uncited)


def two_turn_script() -> ScriptedModel:
    return ScriptedModel(
        [
            AskUser(text="Sagas in general, or compensation order?"),
            call("m1", "search_documents", query="compensation order"),
            Finish(answer=CITED),
        ]
    )


async def two_turns(convs: Conversations) -> str:
    cid = await convs.start(GRAPH_NAME, first_message=QUESTION)
    await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
    await convs.send(cid, "Compensation order, please.")
    await answered(convs, cid)
    return cid


def without_ids(messages: list[Message]) -> list[Message]:
    return [
        m.model_copy(update={"id": None}) if isinstance(m, UserMessage) else m for m in messages
    ]


async def test_every_task_replaying_the_history_changes_nothing(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    async with running_workers(build_workers(ts_env.client, settings, two_turn_script())):
        convs = Conversations(ts_env.client, settings)
        expected = (await convs.snapshot(await two_turns(convs))).messages
    replaying = two_turn_script()
    # Fresh queues, so no worker with a cache can pick up these tasks.
    uncached = settings.model_copy(
        update={
            "task_queue": settings.task_queue + "-replay",
            "llm_task_queue": settings.llm_task_queue + "-replay",
        }
    )
    workers = build_workers(ts_env.client, uncached, replaying, max_cached_workflows=0)
    async with running_workers(workers):
        convs = Conversations(ts_env.client, uncached)
        cid = await two_turns(convs)
        replayed = (await convs.snapshot(cid)).messages
    # Two conversations: the same transcript but for the message ids each one drew.
    assert without_ids(replayed) == without_ids(expected)
    assert tool_calls(replayed) == [
        ("retrieve-1", "search_documents"),
        ("retrieve-2", "search_documents"),
        ("m1", "search_documents"),
    ]
    assert len(replaying.calls) == 3
    assert await activity_counts(ts_env, cid) == {
        "onward.decide": 3,
        "local:onward.tool": 3,
    }
