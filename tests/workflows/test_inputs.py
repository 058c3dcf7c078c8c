"""Queued vs interrupting messages, model failures, continue-as-new, guardrail."""

from __future__ import annotations

import asyncio

from onward.agent.contracts import ConversationOptions
from onward.agent.decisions import AskUser, CallTools, Finish, Refuse, ToolCall
from onward.agent.messages import AssistantMessage, NoticeMessage, UserMessage
from onward.models.base import ModelRequest
from onward.testing import Gated, Hang, Malformed, Permanent, ScriptedModel, ServerError, Step
from tests.conftest import AgentFactory
from tests.workflows.toolbox import call


def users(messages: list[object]) -> list[str]:
    return [m.text for m in messages if isinstance(m, UserMessage)]


async def test_message_during_a_turn_is_queued(ts_agent: AgentFactory) -> None:
    gate = asyncio.Event()

    def script(req: ModelRequest) -> Step:
        said = users(list(req.messages))
        if said == ["first"]:
            return Gated(gate, AskUser(text="reply to first"))
        return AskUser(text=f"reply to {said[-1]}")

    model = ScriptedModel(script)
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="first")
        await convs.wait_for(cid, lambda s: s.status == "thinking" and len(model.calls) == 1)
        sent = await convs.send(cid, "second")
        assert sent.queued is True
        gate.set()
        snap = await convs.wait_for(cid, lambda s: s.message_count == 4)
    # Default policy: the in-flight call finished; "second" waited for its own turn.
    assert [getattr(m, "text", None) for m in snap.messages] == [
        "first",
        "reply to first",
        "second",
        "reply to second",
    ]
    assert len(model.calls) == 2


async def test_interrupting_message_cancels_the_model_call(ts_agent: AgentFactory) -> None:
    def script(req: ModelRequest) -> Step:
        said = users(list(req.messages))
        if said == ["plan a trip"]:
            return Hang()
        return AskUser(text=f"replanned with: {' / '.join(said)}")

    model = ScriptedModel(script)
    options = ConversationOptions(message_policy="interrupt")
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="plan a trip", options=options)
        await convs.wait_for(cid, lambda s: s.status == "thinking" and len(model.calls) == 1)
        await convs.send(cid, "actually, to Rome")
        snap = await convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
    assert snap.messages[-1] == AssistantMessage(
        text="replanned with: plan a trip / actually, to Rome"
    )
    assert len(model.calls) == 2


async def test_permanent_model_error_is_reported_and_conversation_lives(
    ts_agent: AgentFactory,
) -> None:
    model = ScriptedModel([Permanent("401 Unauthorized: bad key"), Finish(answer="back")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="hello")
        snap = await convs.wait_for(cid, lambda s: s.message_count == 2)
        notice = snap.messages[-1]
        assert isinstance(notice, NoticeMessage) and notice.level == "error"
        assert "401 Unauthorized: bad key" in notice.text
        assert snap.status == "waiting_for_user"
        await convs.send(cid, "try again")
        result = await convs.result(cid)
    assert result.answer == "back"
    assert len(model.calls) == 2  # the 401 was not retried


async def test_transient_errors_retry_and_malformed_output_is_repaired(
    ts_agent: AgentFactory,
) -> None:
    model = ScriptedModel([ServerError(503), Malformed("{oops"), Finish(answer="fine")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="hello")
        result = await convs.result(cid)
    assert result.answer == "fine"
    assert model.calls[2].repair_hint is not None and "{oops" in model.calls[2].repair_hint


async def test_repeated_malformed_output_tells_the_user(ts_agent: AgentFactory) -> None:
    model = ScriptedModel([Malformed(), Malformed(), Malformed(), Finish(answer="ok")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="hello")
        snap = await convs.wait_for(cid, lambda s: s.message_count == 3)
        # The first unusable output could not judge the topic either: said, let through.
        notices = [m for m in snap.messages if isinstance(m, NoticeMessage)]
        assert [("fits the goal" in n.text, "could not use" in n.text) for n in notices] == [
            (True, False),
            (False, True),
        ]
        assert [r.check_topic for r in model.calls] == [True, False, False]
        await convs.send(cid, "again")
        assert (await convs.result(cid)).answer == "ok"


async def test_off_goal_message_gets_a_redirect_and_no_tool_call(ts_agent: AgentFactory) -> None:
    model = ScriptedModel(
        [
            Refuse(text="I can only help with arithmetic."),
            call("c1", "add", a=2, b=2),
            Finish(answer="4"),
        ]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="two double cheeseburgers please")
        snap = await convs.wait_for(
            cid, lambda s: s.message_count == 2 and s.status == "waiting_for_user"
        )
        assert snap.messages[-1] == AssistantMessage(text="I can only help with arithmetic.")
        # One model call judged and refused it; no separate guardrail call, no tool call.
        assert [r.check_topic for r in model.calls] == [True]
        assert model.guardrail_calls == []
        await convs.send(cid, "what is 2+2")
        result = await convs.result(cid)
    assert result.answer == "4"
    assert [r.tool for r in result.tool_calls] == ["add"]
    # Only the first decision after the new message may refuse.
    assert [r.check_topic for r in model.calls] == [True, True, False]


async def test_continue_as_new_keeps_the_whole_transcript(ts_agent: AgentFactory) -> None:
    def script(req: ModelRequest) -> Step:
        said = users(list(req.messages))
        if said[-1] == "done":
            return Finish(answer=f"{len(said)} messages")
        return (
            CallTools(
                calls=[ToolCall(call_id=f"c{len(said)}", tool="add", args={"a": len(said), "b": 1})]
            )
            if len([m for m in req.messages if getattr(m, "kind", "") == "tool_result"]) < len(said)
            else AskUser(text=f"ok {len(said)}")
        )

    model = ScriptedModel(script)
    options = ConversationOptions(turns_before_continue_as_new=3)
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="m1", options=options)
        for i in range(2, 8):
            await convs.wait_for(
                cid, lambda s, i=i: s.status == "waiting_for_user" and s.turns == i - 1
            )
            await convs.send(cid, f"m{i}")
        await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 7)
        snap = await convs.snapshot(cid)
        assert snap.runs >= 3
        assert users(list(snap.messages)) == [f"m{i}" for i in range(1, 8)]
        assert snap.message_count == 7 * 4
        await convs.send(cid, "done")
        result = await convs.result(cid)
    assert result.answer == "8 messages"
    assert [r.call_id for r in result.tool_calls] == [f"c{i}" for i in range(1, 8)]
