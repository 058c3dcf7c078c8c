"""Bounded history: the transcript lives in the transcript store, history grows with
what a turn adds, and continue-as-new carries references (time-skipping server)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from onward.agent.contracts import (
    SIGNAL_SEND_MESSAGE,
    ConversationOptions,
    SendMessage,
    StartConversation,
)
from onward.agent.decisions import AskUser, CallTools, ToolCall
from onward.agent.messages import AssistantMessage, ToolResultMessage, UserMessage
from onward.api.app import create_app
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.goals import GoalCatalog
from onward.goals.base import Goal
from onward.models.base import ModelRequest
from onward.store.transcripts import transcript_store
from onward.store.transcripts_sqlite import SqliteTranscriptStore
from onward.testing import ScriptedModel, Step
from onward.tools import tool
from onward.worker import build_workers, running_workers
from tests.api.conftest import ALICE, api_settings

PAGE_BYTES = 2048


@tool(local=True)
def read_long_page(n: int) -> dict[str, object]:
    """Read page `n` of the manual (about 2 KB of text)."""
    return {"page": n, "text": (f"page {n} " * 400)[:PAGE_BYTES]}


MANUAL = Goal(
    name="test-manual",
    description="Reads the manual page by page.",
    instructions="Read the page the user names, then say you did.",
    tools=[read_long_page],
)
CATALOG = GoalCatalog([MANUAL])


def page_reader(request: ModelRequest) -> Step:
    """Each user message `page N`: read page N, then answer with its number."""
    last = request.messages[-1]
    if isinstance(last, UserMessage):
        n = int(last.text.split()[-1])
        return CallTools(
            calls=[ToolCall(call_id=f"read-{n}", tool="read_long_page", args={"n": n})]
        )
    assert isinstance(last, ToolResultMessage) and last.ok
    return AskUser(text=f"Read page {last.content['page']}. Next?")


async def history_bytes(client: Client, cid: str) -> int:
    history = await client.get_workflow_handle(cid).fetch_history()
    return sum(e.ByteSize() for e in history.events)


async def send_pages(client: Client, cid: str, pages: range) -> None:
    handle = client.get_workflow_handle(cid)
    for n in pages:
        await handle.signal(SIGNAL_SEND_MESSAGE, SendMessage(text=f"page {n}", message_id=f"p{n}"))


async def turns_done(convs: Conversations, cid: str, turns: int, timeout_s: float) -> None:
    """Wait (with a deadline) until `turns` turns are answered. A query may time out on
    a loaded machine while the worker is busy with the queued messages: ask again."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            snap = await convs.snapshot(cid, rpc_timeout_s=30)
        except RPCError:
            continue
        if snap.turns >= turns and snap.status == "waiting_for_user":
            return
        await asyncio.sleep(1.0)
    raise TimeoutError(f"{cid} did not answer {turns} turns within {timeout_s} s")


async def test_history_grows_with_what_a_turn_adds(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    model = ScriptedModel(page_reader)
    async with running_workers(build_workers(ts_env.client, settings, model, catalog=CATALOG)):
        convs = Conversations(ts_env.client, settings, CATALOG)
        options = ConversationOptions(turns_before_continue_as_new=1000)
        cid = await convs.start("test-manual", first_message="page 1", options=options)
        sizes: dict[int, int] = {}
        sent = 1
        for turns in (10, 11, 40, 41):
            await send_pages(ts_env.client, cid, range(sent + 1, turns + 1))
            sent = turns
            await turns_done(convs, cid, turns, timeout_s=60)
            sizes[turns] = await history_bytes(ts_env.client, cid)
        await settle(ts_env.client, cid)
    early, late = sizes[11] - sizes[10], sizes[41] - sizes[40]
    # One turn adds a 2 KB result and a few short messages: within 2x that plus a
    # constant, and the same at turn 40 as at turn 10 (it used to grow every turn).
    assert early <= 2 * (PAGE_BYTES + 200) + 6_000, sizes
    assert abs(late - early) <= 512, sizes
    # The model still saw the whole conversation.
    assert sum(isinstance(m, UserMessage) for m in model.calls[-1].messages) == 41


async def test_continue_as_new_carries_references_not_messages(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    model = ScriptedModel(page_reader)
    async with running_workers(build_workers(ts_env.client, settings, model, catalog=CATALOG)):
        convs = Conversations(ts_env.client, settings, CATALOG)
        options = ConversationOptions(turns_before_continue_as_new=5)
        cid = await convs.start("test-manual", first_message="page 1", options=options)
        await send_pages(ts_env.client, cid, range(2, 23))
        await turns_done(convs, cid, 22, timeout_s=60)
        snap = await convs.snapshot(cid)
        inputs = await start_inputs(ts_env.client, cid)
        await settle(ts_env.client, cid)
    assert snap.runs == 5
    # Every message is readable, in order, though the workflow holds only recent ones.
    said = [m.text for m in snap.messages if isinstance(m, UserMessage)]
    assert said == [f"page {n}" for n in range(1, 23)]
    pages = [m.content["page"] for m in snap.messages if isinstance(m, ToolResultMessage)]
    assert pages == list(range(1, 23))
    # Runs carry references, not messages: once the retained events are full (about
    # 20 turns), a run's input stops growing.
    assert len(inputs) == 5
    assert max(inputs) < 64_000 and inputs[4] - inputs[3] < 2048, inputs
    carried = StartConversation.model_validate_json(await last_start_input(ts_env.client, cid))
    assert carried.carried is not None and len(carried.carried.messages) <= 2


async def settle(client: Client, cid: str) -> None:
    """End the conversation before its workers stop: an open one would wake up on the
    shared time-skipping server when a later test skips days ahead, with no worker for
    its task queue, and hold that test's time skipping up."""
    await client.get_workflow_handle(cid).terminate("test over")


async def start_inputs(client: Client, cid: str) -> list[int]:
    """The size of each run's start input, oldest run first."""
    sizes: list[int] = []
    run_id = (await client.get_workflow_handle(cid).describe()).run_id
    while run_id:
        handle = client.get_workflow_handle(cid, run_id=run_id)
        previous = ""
        async for e in handle.fetch_history_events():
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                attrs = e.workflow_execution_started_event_attributes
                sizes.append(attrs.input.ByteSize())
                previous = attrs.continued_execution_run_id
                break
        run_id = previous
    return sizes[::-1]


async def last_start_input(client: Client, cid: str) -> bytes:
    async for e in client.get_workflow_handle(cid).fetch_history_events():
        attrs = e.workflow_execution_started_event_attributes
        return attrs.input.payloads[0].data
    raise AssertionError("no start event")


@pytest.mark.timeout(900)
async def test_a_thousand_turns_read_back_through_the_api(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    model = ScriptedModel(page_reader)
    convs = Conversations(ts_env.client, settings, CATALOG)
    async with running_workers(build_workers(ts_env.client, settings, model, catalog=CATALOG)):
        cid = await convs.start("test-manual", owner="alice", first_message="page 1")
        await send_pages(ts_env.client, cid, range(2, 1001))
        await turns_done(convs, cid, 1000, timeout_s=900)
        app = create_app(settings, client=ts_env.client, api_settings=api_settings())
        await app.state.api.index.add(cid, "alice", "test-manual", "page 1")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://api"
        ) as http:
            body = (await http.get(f"/v1/conversations/{cid}", headers=ALICE)).json()
        history = await history_bytes(ts_env.client, cid)
        await settle(ts_env.client, cid)
    messages = body["messages"]
    assert body["message_count"] == len(messages) == 4 * 1000
    assert [m["text"] for m in messages if m["kind"] == "user"] == [
        f"page {n}" for n in range(1, 1001)
    ]
    assert [m["content"]["page"] for m in messages if m["kind"] == "tool_result"] == list(
        range(1, 1001)
    )
    assert messages[-1]["text"] == "Read page 1000. Next?"
    assert body["runs"] == 1000 // 50 + 1
    # The current run holds what its own turns added, not 1,000 turns of transcript.
    assert history < 50 * 2 * (PAGE_BYTES + 200) + 200_000, history


async def test_deleting_erases_the_store(settings: Settings) -> None:
    store = transcript_store(settings)
    assert isinstance(store, SqliteTranscriptStore)
    head = await store.append("conv-gone", None, [UserMessage(text="hi")])
    await store.put_blob("conv-gone", b'{"secret": 1}')
    child = await store.append("conv-gone~p1.a", None, [UserMessage(text="step")])
    fork = await store.append("conv-fork", head, [AssistantMessage(text="fork")])
    assert store.counts("conv-gone") == (2, 1)
    await store.erase("conv-gone")
    # The segment a fork continues from is handed to the fork; nothing else is left.
    assert store.counts("conv-gone") == (0, 0)
    assert store.counts("conv-fork") == (2, 0)
    assert [m.kind for m in await store.read(fork)] == ["user", "assistant"]
    await store.erase("conv-fork")
    assert store.counts("conv-gone") == (0, 0) and store.counts("conv-fork") == (0, 0)
    assert child.conversation_id == "conv-gone~p1.a"  # erased with its parent
