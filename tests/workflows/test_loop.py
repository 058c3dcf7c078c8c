"""Loop semantics whatever the model: failures go back to the model, a finished goal
rests for follow-ups, the guardrail lives inside the one decision call."""

from __future__ import annotations

from collections import Counter

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from onward.agent.contracts import UPDATE_STOP
from onward.agent.decisions import AskUser, Finish, Refuse
from onward.agent.messages import AssistantMessage, NoticeMessage, ToolResultMessage
from onward.agent.specs import RetrySpec
from onward.config import Settings
from onward.exceptions import ToolRefused
from onward.goals.base import Goal
from onward.models.base import ModelRequest
from onward.testing import Hang, Malformed, ScriptedModel, Step
from onward.tools import tool
from tests.conftest import AgentFactory, agent_factory
from tests.workflows.toolbox import add, call


@tool(retry=RetrySpec(max_attempts=2, initial_interval_s=0.01))
def book_table(party: int, day: str) -> str:
    """Book a restaurant table for a party of 1 to 8 people on a day (YYYY-MM-DD)."""
    if party > 8:
        raise ToolRefused("we seat at most 8 people at one table")
    if day == "2027-01-01":
        raise RuntimeError("the booking service is down")
    return f"table for {party} on {day}"


CHAT = Goal(
    name="test-chat",
    description="Books restaurant tables and adds numbers.",
    instructions="Book tables.",
    tools=[book_table, add],
)


@pytest.fixture
def ts_agent(ts_env: WorkflowEnvironment, settings: Settings) -> AgentFactory:
    """Workers whose goal catalog also holds this module's goals."""
    return agent_factory(ts_env, settings, [CHAT])


async def model_activities(client: Client, cid: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    async for e in client.get_workflow_handle(cid).fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            counts[e.activity_task_scheduled_event_attributes.activity_type.name] += 1
    return counts


def failures_seen(request: ModelRequest) -> list[str]:
    return [
        m.error or "" for m in request.messages if isinstance(m, ToolResultMessage) and not m.ok
    ]


async def test_a_tool_failing_three_ways_never_ends_the_conversation(
    ts_agent: AgentFactory,
) -> None:
    model = ScriptedModel(
        [
            call("c1", "book_table", party="four", day="2027-01-02"),  # fails the schema
            AskUser(text="How many people, as a number?"),
            call("c2", "book_table", party=12, day="2027-01-02"),  # refused by the tool
            AskUser(text="We seat at most 8. Shall I book for 8?"),
            call("c3", "book_table", party=8, day="2027-01-01"),  # fails after retries
            AskUser(text="The booking service is down. Try another day?"),
            call("c4", "book_table", party=8, day="2027-01-02"),
            Finish(answer="Booked a table for 8 on 2027-01-02."),
        ]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("test-chat", first_message="Book a table for four on Jan 2")
        for reply, turn in (("4", 1), ("12 actually", 2), ("8, on new year's day", 3)):
            snap = await convs.wait_for(
                cid, lambda s, t=turn: s.status == "waiting_for_user" and s.turns == t
            )
            assert isinstance(snap.messages[-1], AssistantMessage)
            await convs.send(cid, reply)
        snap = await convs.wait_for(
            cid, lambda s: s.status == "waiting_for_user" and s.answer is not None
        )
    # The model saw each failure as the tool's result, in its next request.
    assert failures_seen(model.calls[1])[0].startswith("invalid arguments: party:")
    assert failures_seen(model.calls[3])[1] == "refused: we seat at most 8 people at one table"
    assert failures_seen(model.calls[5])[2] == "RuntimeError: the booking service is down"
    assert snap.answer == "Booked a table for 8 on 2027-01-02."
    assert snap.status == "waiting_for_user"  # answered, and still open


async def test_a_finished_goal_takes_a_follow_up(ts_agent: AgentFactory) -> None:
    model = ScriptedModel(
        [call("c1", "add", a=2, b=2), Finish(answer="4"), Finish(answer="You're welcome!")]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("test-chat", first_message="what is 2+2?")
        await convs.wait_for(cid, lambda s: s.answer == "4" and s.status == "waiting_for_user")
        await convs.send(cid, "thanks!")
        snap = await convs.wait_for(cid, lambda s: s.turns == 2 and s.status == "waiting_for_user")
        assert snap.messages[-1] == AssistantMessage(text="You're welcome!")
        await convs.end(cid)
        result = await convs.result(cid)
    assert (result.outcome, result.end_reason, result.answer) == (
        "finished",
        "ended by user",
        "You're welcome!",
    )


async def test_end_on_finish_ends_the_conversation(ts_agent: AgentFactory) -> None:
    # `test-math` opts into ending on finish.
    async with ts_agent(ScriptedModel([Finish(answer="4")])) as convs:
        cid = await convs.start("test-math", first_message="what is 2+2?")
        result = await convs.result(cid)
        snap = await convs.snapshot(cid)
    assert (result.outcome, result.end_reason) == ("finished", "finished")
    assert snap.status == "ended"


async def test_a_turn_answered_without_tools_is_one_model_call(ts_agent: AgentFactory) -> None:
    model = ScriptedModel([Finish(answer="Hello! I book tables and add numbers.")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-chat", first_message="hi, what can you do?")
        await convs.wait_for(cid, lambda s: s.answer is not None)
        assert await model_activities(convs.client, cid) == {"onward.decide": 1}
    assert [r.check_topic for r in model.calls] == [True]


async def test_a_guardrail_that_cannot_judge_lets_the_message_through(
    ts_agent: AgentFactory,
) -> None:
    model = ScriptedModel([Malformed('{"refuse": '), Finish(answer="4")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-chat", first_message="what is 2+2?")
        snap = await convs.wait_for(cid, lambda s: s.answer is not None)
    notices = [m for m in snap.messages if isinstance(m, NoticeMessage)]
    assert [n.text for n in notices] == [
        "Could not check whether this message fits the goal; it was let through."
    ]
    assert snap.answer == "4"
    assert [r.check_topic for r in model.calls] == [True, False]
    # The repair hint went to the model with the request, never into the transcript.
    assert model.calls[1].repair_hint is not None
    assert not [m for m in snap.messages if "invalid" in getattr(m, "text", "")]


async def test_the_guardrail_can_be_turned_off_per_goal(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    unguarded = Goal(
        name="test-unguarded",
        description="Anything goes.",
        instructions="Answer.",
        guardrail=False,
    )
    ts_agent = agent_factory(ts_env, settings, [unguarded])

    def script(request: ModelRequest) -> Step:
        return Refuse(text="no") if request.check_topic else Finish(answer="sure")

    model = ScriptedModel(script)
    async with ts_agent(model) as convs:
        cid = await convs.start("test-unguarded", first_message="two cheeseburgers")
        snap = await convs.wait_for(cid, lambda s: s.answer is not None)
    assert snap.answer == "sure"
    assert [r.check_topic for r in model.calls] == [False]


async def test_a_refusal_outside_a_new_message_is_sent_back(ts_agent: AgentFactory) -> None:
    # After a tool result there is no new user message to judge: a refusal is repaired.
    model = ScriptedModel([call("c1", "add", a=1, b=1), Refuse(text="no"), Finish(answer="2")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-chat", first_message="1+1?")
        snap = await convs.wait_for(cid, lambda s: s.answer is not None)
    assert snap.answer == "2"
    assert "only a new user message" in (model.calls[2].repair_hint or "")
    assert [m.text for m in snap.messages if isinstance(m, AssistantMessage)] == ["2"]


async def test_stop_cancels_the_model_call_in_flight(ts_agent: AgentFactory) -> None:
    model = ScriptedModel([Hang(), Finish(answer="Here you are.")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-chat", first_message="a long essay, please")
        await convs.wait_for(cid, lambda s: s.status == "thinking" and len(model.calls) == 1)
        handle = convs.client.get_workflow_handle(cid)
        assert await handle.execute_update(UPDATE_STOP, result_type=bool) is True
        snap = await convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
        assert snap.messages[-1] == NoticeMessage(text="Stopped. Send a message to go on.")
        # Nothing to stop while the agent rests; the next message is answered.
        assert await handle.execute_update(UPDATE_STOP, result_type=bool) is False
        await convs.send(cid, "a short one then")
        snap = await convs.wait_for(cid, lambda s: s.answer == "Here you are.")
    assert len(model.calls) == 2


async def test_a_tool_call_written_as_text_is_never_shown(ts_agent: AgentFactory) -> None:
    written = '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>'
    model = ScriptedModel(
        [
            AskUser(text=written),
            Finish(answer='functions.add:{"a": 1, "b": 2}'),
            call("c1", "add", a=1, b=2),
            Finish(answer="3"),
        ]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("test-chat", first_message="1+2?")
        snap = await convs.wait_for(cid, lambda s: s.answer == "3")
    said = [m.text for m in snap.messages if isinstance(m, AssistantMessage | NoticeMessage)]
    assert said == ["3"]
    assert [bool(r.repair_hint and "tool-call syntax" in r.repair_hint) for r in model.calls] == [
        False,
        True,
        True,
        False,
    ]
