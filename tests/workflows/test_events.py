"""The conversation's live event stream: complete, ordered and resumable by offset."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from onward.agent.contracts import ConversationOptions
from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
from onward.agent.events import MessageEvent, StatusChanged, TokenDelta
from onward.agent.messages import AssistantMessage, NoticeMessage, UserMessage
from onward.client.streaming import StreamItem, conversation_events, retained_events
from onward.testing import ScriptedModel, ServerError
from tests.conftest import AgentFactory


async def _collect(client: Client, cid: str, from_offset: int = 0) -> list[StreamItem]:
    return [item async for item in conversation_events(client, cid, from_offset)]


async def test_events_cover_the_turn_and_resume_from_any_offset(ts_agent: AgentFactory) -> None:
    model = ScriptedModel(
        [
            AskUser(text="Which two numbers shall I add?"),
            CallTools(calls=[ToolCall(call_id="c1", tool="add", args={"a": 2, "b": 2})]),
            Finish(answer="two plus two is four"),
        ],
        # Slower than one delta batch (150 ms), so the answer is streamed as it comes.
        word_delay_s=0.05,
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="add")
        await convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
        await convs.send(cid, "2 and 2")
        await convs.result(cid)
        items = await _collect(convs.client, cid)

        offsets = [i.offset for i in items]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
        events = [i.data for i in items if not isinstance(i.data, TokenDelta)]
        kinds = [e.type for e in events]
        for expected in (
            "message",
            "model_call_started",
            "tool_call_proposed",
            "tool_call_started",
            "tool_call_finished",
            "usage",
            "status",
        ):
            assert expected in kinds, expected
        messages = [e for e in events if e.type == "message"]
        assert [m.index for m in messages if isinstance(m, MessageEvent)] == list(
            range(len(messages))
        )
        assert [e.status for e in events if isinstance(e, StatusChanged)][-1] == "ended"
        deltas = "".join(i.data.text for i in items if isinstance(i.data, TokenDelta))
        assert "two plus two is four" in deltas

        # A client that saw up to some offset gets exactly the rest.
        cut = items[len(items) // 2].offset
        rest = await _collect(convs.client, cid, cut + 1)
        assert [i.offset for i in rest] == [i.offset for i in items if i.offset > cut]


async def test_an_answer_quicker_than_a_batch_sends_no_deltas(ts_agent: AgentFactory) -> None:
    model = ScriptedModel([Finish(answer="two plus two is four")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="add")
        result = await convs.result(cid)
        items = await _collect(convs.client, cid)
        signals = [
            e
            async for e in convs.client.get_workflow_handle(cid).fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
    assert result.answer == "two plus two is four"
    assert not [i for i in items if isinstance(i.data, TokenDelta)]
    # The answer still reaches watchers, as a message event.
    said = [
        i.data.message
        for i in items
        if isinstance(i.data, MessageEvent) and isinstance(i.data.message, AssistantMessage)
    ]
    assert [m.text for m in said] == ["two plus two is four"]
    assert signals == []  # no delta batch, so no signal and no workflow task for it


async def test_a_retried_model_call_is_announced(ts_agent: AgentFactory) -> None:
    model = ScriptedModel([ServerError(503), ServerError(503), Finish(answer="back")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="hi")
        await convs.result(cid)
        items = await _collect(convs.client, cid)
    retrying = [
        (i.data.attempt, i.data.retry_in_s, i.data.detail)
        for i in items
        if isinstance(i.data, StatusChanged) and i.data.status == "retrying_model"
    ]
    # Each failure is told at once with the next try; each new attempt is told too.
    assert [(a, r) for a, r, _ in retrying] == [(2, 1.0), (2, None), (3, 2.0), (3, None)]
    assert retrying[0][2] == (
        "The model call failed (503 Server Error); retrying in 1 s (attempt 2 of 10)."
    )
    assert retrying[1][2] == "Trying the model again (attempt 2 of 10)."
    statuses = [i.data.status for i in items if isinstance(i.data, StatusChanged)]
    # Once the call answers, the stream leaves the retrying state.
    assert statuses[-2:] == ["retrying_model", "ended"]


async def test_the_same_500_three_times_is_reported_not_retried_for_minutes(
    ts_agent: AgentFactory,
) -> None:
    model = ScriptedModel([ServerError(500)] * 3 + [Finish(answer="back")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="hi")
        snap = await convs.wait_for(
            cid, lambda s: s.status == "waiting_for_user" and s.message_count == 2
        )
        # Three attempts, not ten: the user is told why, and the conversation stays open.
        assert len(model.calls) == 3
        notice = snap.messages[-1]
        assert isinstance(notice, NoticeMessage) and notice.level == "error"
        assert "the same way 3 times in a row" in notice.text
        await convs.send(cid, "again")
        assert (await convs.result(cid)).answer == "back"


async def test_the_snapshot_names_the_last_item_it_reflects_across_continue_as_new(
    ts_agent: AgentFactory,
) -> None:
    model = ScriptedModel(lambda request: AskUser(text=f"reply {len(request.messages)}"))
    options = ConversationOptions(turns_before_continue_as_new=2)
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="one", options=options)
        for n, text in enumerate(("two", "three"), start=2):
            await convs.wait_for(
                cid, lambda s, n=n: s.status == "waiting_for_user" and s.turns == n - 1
            )
            await convs.send(cid, text)
        snap = await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 3)
        # Idle, so nothing came after the snapshot: its offset is the stream's last.
        retained = [i async for i in retained_events(convs.client, cid, 0, 10**9)]
        await convs.send(cid, "four")
        await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 4)
        await convs.end(cid)
        after = await _collect(convs.client, cid, snap.stream_offset + 1)
    assert snap.runs > 1
    assert retained[-1].offset == snap.stream_offset
    assert after[0].offset == snap.stream_offset + 1
    said = [i.data for i in after if isinstance(i.data, MessageEvent)]
    assert [m.index for m in said][:2] == [snap.message_count, snap.message_count + 1]
    texts = [m.message.text for m in said if isinstance(m.message, UserMessage | AssistantMessage)]
    assert texts[:2] == ["four", f"reply {snap.message_count + 1}"]
