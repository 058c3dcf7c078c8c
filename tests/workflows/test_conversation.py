"""The conversation loop on the time-skipping server with the scripted model."""

from __future__ import annotations

from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
from onward.agent.messages import AssistantMessage, ToolResultMessage
from onward.testing import ScriptedModel
from tests.conftest import AgentFactory
from tests.workflows import toolbox


def call(cid: str, tool: str, **args: object) -> CallTools:
    return CallTools(calls=[ToolCall(call_id=cid, tool=tool, args=args)])


async def test_three_tools_reach_the_answer(ts_agent: AgentFactory) -> None:
    model = ScriptedModel(
        [
            call("c1", "add", a=2, b=3),
            call("c2", "multiply", a=5, b=4),
            call("c3", "describe", value=20),
            Finish(answer="(2+3)*4 = 20, which is even."),
        ]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="What is (2+3)*4, and is it even?")
        result = await convs.result(cid)
    assert result.answer == "(2+3)*4 = 20, which is even."
    assert [(r.tool, r.result) for r in result.tool_calls] == [
        ("add", 5),
        ("multiply", 20),
        ("describe", {"value": 20, "even": True}),
    ]
    assert result.usage.requests == 4
    assert result.usage.input_tokens == 400
    assert result.usage.output_tokens == 80
    assert result.usage.cost_usd == 0.004
    keys = [k for _, k in toolbox.CALLS if k.startswith(cid)]
    assert keys == [f"{cid}:c1", f"{cid}:c2", f"{cid}:c3"]
    # The model saw each tool result before its next decision.
    last_request = model.calls[-1]
    results = [m for m in last_request.messages if isinstance(m, ToolResultMessage)]
    assert [r.content for r in results] == [5, 20, {"value": 20, "even": True}]


async def test_ask_user_waits_for_reply(ts_agent: AgentFactory) -> None:
    model = ScriptedModel(
        [AskUser(text="Which numbers?"), call("c1", "add", a=1, b=1), Finish(answer="2")]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="add two numbers")
        snap = await convs.wait_for(
            cid, lambda s: s.status == "waiting_for_user" and s.message_count == 2
        )
        assert isinstance(snap.messages[-1], AssistantMessage)
        assert snap.messages[-1].text == "Which numbers?"
        await convs.send(cid, "1 and 1")
        result = await convs.result(cid)
    assert result.answer == "2"
