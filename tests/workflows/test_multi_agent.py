"""Multi-agent work: plans as child conversations, review rounds, deadlines,
cancellation, budget shares, surfaced approvals and handoffs (issue #6)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
from pydantic import TypeAdapter
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from onward.agent.contracts import (
    Budget,
    ConversationOptions,
    ConversationResult,
    StepResult,
)
from onward.agent.decisions import (
    PLAN_TOOL,
    CallTools,
    Decision,
    Finish,
    Handoff,
    PlanStep,
    Review,
    RunPlan,
    ToolCall,
)
from onward.agent.messages import Message, NoticeMessage, ToolCallMessage, ToolResultMessage
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.exceptions import ConversationNotFound, InputRejected
from onward.goals import Goal
from onward.models.base import Model, ModelRequest
from onward.testing import Gated, Hang, ScriptedModel, time_skipping_environment
from onward.testing.scripted import Step
from onward.worker import build_workers, running_workers
from tests.conftest import AgentFactory, agent_factory, catalog_for
from tests.workflows import toolbox

CITIES = ["Lisbon", "Kyoto", "Oslo"]


STEPS = TypeAdapter(list[StepResult])


def plan_results(messages: list[Message]) -> list[list[StepResult]]:
    """The steps of every plan result in a transcript, one list per plan."""
    return [
        STEPS.validate_python(m.content["steps"])
        for m in messages
        if isinstance(m, ToolResultMessage) and m.tool == PLAN_TOOL
    ]


def has_plan_result(request: ModelRequest) -> bool:
    return bool(plan_results(request.messages))


def trip_step(i: int, city: str) -> PlanStep:
    return PlanStep(id=f"trip{i}", goal="test-vacation", instruction=f"Plan a trip to {city}")


def vacation_agent(request: ModelRequest) -> Decision:
    """A sub-agent: find the trip for the city named in its instruction, then answer."""
    instruction = request.messages[0]
    city = next(c for c in CITIES if c in str(instruction))
    if not any(isinstance(m, ToolResultMessage) for m in request.messages):
        return CallTools(calls=[ToolCall(call_id="find", tool="find_trip", args={"city": city})])
    return Finish(answer=f"A week in {city}")


def combined(request: ModelRequest) -> Finish:
    steps = plan_results(request.messages)[-1]
    return Finish(answer=" | ".join(s.answer or s.outcome for s in steps))


def tool_runs(tool: str) -> list[str]:
    return [key for name, key in toolbox.CALLS if name == tool]


async def wait_child(convs: Conversations, child_id: str, status: str) -> None:
    """Wait (with a deadline) until a child exists and reaches `status`."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await convs.wait_for(child_id, lambda s: s.status == status)
            return
        except ConversationNotFound:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def child_events(env: WorkflowEnvironment, cid: str) -> list[EventType.ValueType]:
    history = await env.client.get_workflow_handle(cid).fetch_history()
    return [e.event_type for e in history.events]


async def test_plan_runs_three_children_in_parallel_and_combines(
    ts_agent: AgentFactory, ts_env: WorkflowEnvironment
) -> None:
    # Each child's first model call is held until all three children are calling:
    # if the steps ran one after another, the first would never be released.
    all_started = asyncio.Event()
    first_calls: set[str] = set()

    def script(request: ModelRequest) -> Step:
        if request.review:
            return Review(approved=True)
        if request.goal.name == "test-planner":
            if not has_plan_result(request):
                return RunPlan(steps=[trip_step(i, c) for i, c in enumerate(CITIES)])
            return combined(request)
        decision = vacation_agent(request)
        if request.conversation_id not in first_calls:
            first_calls.add(request.conversation_id)
            if len(first_calls) == len(CITIES):
                all_started.set()
            return Gated(all_started, decision)
        return decision

    model = ScriptedModel(script)
    async with ts_agent(model) as convs:
        cid = await convs.start("test-planner", first_message="Plan me three vacations next year")
        result = await asyncio.wait_for(convs.result(cid), 60)
        snap = await convs.snapshot(cid)

    assert result.outcome == "finished"
    assert result.answer == "A week in Lisbon | A week in Kyoto | A week in Oslo"
    [steps] = plan_results(snap.messages)
    assert [s.outcome for s in steps] == ["finished"] * 3
    # The three children were started before any of them completed.
    events = await child_events(ts_env, cid)
    started = [
        i
        for i, e in enumerate(events)
        if e == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]
    completed = [
        i
        for i, e in enumerate(events)
        if e == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED
    ]
    assert len(started) == 3 and len(completed) == 3
    assert max(started) < min(completed)
    # Usage rolled up: the parent's two calls, the review, and two calls per child.
    assert result.usage.requests == 3 + 3 * 2


@pytest.fixture
async def own_ts_env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own. Tests that leave a model call hanging
    when its workflow closes use it: the test server stops skipping time while an
    abandoned activity is outstanding, which would stall later tests' timers."""
    env = await time_skipping_environment(settings)
    yield env
    await env.shutdown()


@pytest.fixture(params=["cached", "replay-every-task"])
def review_agent(
    request: pytest.FixtureRequest, ts_env: WorkflowEnvironment, settings: Settings
) -> AgentFactory:
    """Runs the review test twice: with the workflow cache, and with none, so every
    workflow task replays the whole history (proves the multi-agent code replays)."""
    cache = 1000 if request.param == "cached" else 0

    @asynccontextmanager
    async def run(model: Model, goals: Sequence[Goal] = ()) -> AsyncGenerator[Conversations]:
        catalog = catalog_for(settings, goals)
        workers = build_workers(
            ts_env.client, settings, model, catalog=catalog, max_cached_workflows=cache
        )
        async with running_workers(workers):
            yield Conversations(ts_env.client, settings, catalog)

    return run


async def test_reviewer_rejects_once_and_completed_steps_are_not_rerun(
    review_agent: AgentFactory,
) -> None:
    reviews: list[bool] = []

    def script(request: ModelRequest) -> Step:
        if request.goal.name == "test-reviewer":
            approved = bool(reviews)
            reviews.append(approved)
            return Review(approved=approved, feedback=None if approved else "add Oslo")
        if request.goal.name == "test-vacation":
            return vacation_agent(request)
        rejected = any(
            isinstance(m, NoticeMessage) and "add Oslo" in m.text for m in request.messages
        )
        plans_done = len(plan_results(request.messages))
        if plans_done == 0:
            return RunPlan(steps=[trip_step(0, "Lisbon"), trip_step(1, "Kyoto")])
        if rejected and plans_done == 1:
            return RunPlan(steps=[trip_step(i, c) for i, c in enumerate(CITIES)])
        return combined(request)

    model = ScriptedModel(script)
    async with review_agent(model) as convs:
        cid = await convs.start("test-planner", first_message="Two trips, please")
        result = await asyncio.wait_for(convs.result(cid), 60)
        snap = await convs.snapshot(cid)

    assert reviews == [False, True]
    assert result.answer == "A week in Lisbon | A week in Kyoto | A week in Oslo"
    first, second = plan_results(snap.messages)
    assert [s.reused for s in first] == [False, False]
    assert [s.reused for s in second] == [True, True, False]
    # Each city's tool call ran exactly once across both rounds.
    runs = [k for k in tool_runs("find_trip") if k.startswith(cid)]
    assert len(runs) == 3, runs
    vacation_calls = [r for r in model.calls if r.goal.name == "test-vacation"]
    assert len(vacation_calls) == 3 * 2


async def test_cancelling_the_parent_cancels_every_child(
    own_ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    ts_env = own_ts_env
    ts_agent = agent_factory(own_ts_env, settings)

    def script(request: ModelRequest) -> Step:
        if request.goal.name == "test-planner":
            return RunPlan(steps=[trip_step(0, "Lisbon"), trip_step(1, "Kyoto")])
        return Hang()

    model = ScriptedModel(script)
    async with ts_agent(model) as convs:
        cid = await convs.start("test-planner", first_message="Two trips")
        children = [f"{cid}~p1.trip0", f"{cid}~p1.trip1"]
        for child in children:
            await wait_child(convs, child, "thinking")
        await ts_env.client.get_workflow_handle(cid).cancel()
        result = await asyncio.wait_for(convs.result(cid), 60)
        child_results = [
            await ts_env.client.get_workflow_handle(c, result_type=ConversationResult).result()
            for c in children
        ]
        statuses = [
            (await ts_env.client.get_workflow_handle(c).describe()).status for c in children
        ]
        snap = await convs.snapshot(cid)

    assert result.outcome == "cancelled"
    assert [r.outcome for r in child_results] == ["cancelled", "cancelled"]
    assert statuses == [WorkflowExecutionStatus.COMPLETED] * 2
    [steps] = plan_results(snap.messages)
    assert [s.outcome for s in steps] == ["cancelled", "cancelled"]
    assert all("the conversation was cancelled" in (s.partial or "") for s in steps)


async def test_deadline_cancels_a_slow_child_and_reports_it(
    own_ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    ts_agent = agent_factory(own_ts_env, settings)

    def script(request: ModelRequest) -> Step:
        if request.goal.name == "test-hasty-planner":
            if not has_plan_result(request):
                return RunPlan(steps=[trip_step(0, "Lisbon"), trip_step(1, "Kyoto")])
            return combined(request)
        if "Kyoto" in str(request.messages[0]):
            return Hang()
        return vacation_agent(request)

    model = ScriptedModel(script)
    async with ts_agent(model) as convs:
        cid = await convs.start("test-hasty-planner", first_message="Two trips, quickly")
        result = await asyncio.wait_for(convs.result(cid), 60)
        snap = await convs.snapshot(cid)

    [steps] = plan_results(snap.messages)
    assert [s.outcome for s in steps] == ["finished", "cancelled"]
    assert "deadline of 2 s passed" in (steps[1].partial or "")
    assert result.answer == "A week in Lisbon | cancelled"


async def test_a_child_stops_at_its_budget_share_and_usage_rolls_up(
    ts_agent: AgentFactory,
) -> None:
    # 120 tokens per call. Parent limit 720: the plan call leaves 600, so each of the
    # two children may spend 300; a child that never finishes stops before passing it.
    def script(request: ModelRequest) -> Step:
        if request.review:
            return Review(approved=True)
        if request.goal.name == "test-planner":
            if not has_plan_result(request):
                return RunPlan(
                    steps=[
                        PlanStep(id="sum", goal="test-math", instruction="add forever"),
                        PlanStep(id="more", goal="test-math", instruction="add forever too"),
                    ]
                )
            return combined(request)
        n = len(request.messages)
        return CallTools(calls=[ToolCall(call_id=f"a{n}", tool="add", args={"a": n, "b": 1})])

    model = ScriptedModel(script)
    options = ConversationOptions(budget=Budget(max_tokens=720))
    async with ts_agent(model) as convs:
        cid = await convs.start("test-planner", first_message="add", options=options)
        snap = await convs.wait_for(cid, lambda s: s.status in ("budget_exhausted", "ended"))
        children = [await convs.snapshot(f"{cid}~p1.{k}") for k in ("sum", "more")]

    for child in children:
        assert child.budget.max_tokens == 300
        assert child.status == "ended"
        assert child.usage.total_tokens <= 300
        assert child.usage.requests == 2
    [steps] = plan_results(snap.messages)
    assert [s.outcome for s in steps] == ["budget_exhausted"] * 2
    parent_calls = [r for r in model.calls if r.goal.name in ("test-planner", "test-reviewer")]
    per_call = model.usage_per_call.total_tokens
    assert snap.usage.total_tokens == per_call * (len(parent_calls) + 4)


PAY = PlanStep(id="pay", goal="test-math", instruction="send 5")


def delegating(plans: dict[str, PlanStep]) -> ScriptedModel:
    """Planners (by goal) that delegate one step, then combine; reviews approve; the
    `test-math` agent sends 5 to bo, which needs an approval."""

    def script(request: ModelRequest) -> Step:
        if request.review:
            return Review(approved=True)
        step = plans.get(request.goal.name)
        if step is not None:
            return combined(request) if has_plan_result(request) else RunPlan(steps=[step])
        if not any(isinstance(m, ToolResultMessage) for m in request.messages):
            return CallTools(
                calls=[ToolCall(call_id="t1", tool="transfer", args={"amount": 5, "to": "bo"})]
            )
        return Finish(answer="sent 5 to bo")

    return ScriptedModel(script)


async def test_child_approvals_surface_on_the_parent(ts_agent: AgentFactory) -> None:
    model = delegating({"test-planner": PAY})
    async with ts_agent(model) as convs:
        cid = await convs.start("test-planner", first_message="pay bo")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        [pending] = snap.pending_approvals
        assert snap.status == "waiting_for_approval"
        assert pending.call_id == "p1.pay:t1"
        assert pending.agent == "test-math"
        assert pending.conversation_id == f"{cid}~p1.pay"
        with pytest.raises(InputRejected, match="hash"):
            await convs.decide(cid, pending.call_id, "approve", "0" * 64)
        await convs.decide(cid, pending.call_id, "approve", pending.args_hash)
        result = await asyncio.wait_for(convs.result(cid), 60)
        final = await convs.snapshot(cid)

    assert result.answer == "sent 5 to bo"
    assert final.pending_approvals == []
    assert len([k for k in tool_runs("transfer") if k.startswith(cid)]) == 1


async def test_router_hands_the_conversation_to_the_chosen_agent(ts_agent: AgentFactory) -> None:
    def script(request: ModelRequest) -> Step:
        if request.goal.name == "test-router":
            return Handoff(goal="test-math", text="Passing you to the math agent.")
        if not any(isinstance(m, ToolResultMessage) and m.tool == "add" for m in request.messages):
            return CallTools(calls=[ToolCall(call_id="c1", tool="add", args={"a": 2, "b": 3})])
        return Finish(answer="5")

    model = ScriptedModel(script)
    async with ts_agent(model) as convs:
        cid = await convs.start("test-router", first_message="what is 2 + 3?")
        result = await asyncio.wait_for(convs.result(cid), 60)
        snap = await convs.snapshot(cid)

    assert result.answer == "5"
    assert snap.goal == "test-math"
    handoffs = [m for m in snap.messages if isinstance(m, ToolCallMessage) and m.tool == "handoff"]
    assert [m.args for m in handoffs] == [{"goal": "test-math"}]
    assert [r.goal.name for r in model.calls] == ["test-router", "test-math", "test-math"]


async def test_a_plan_naming_an_unknown_agent_is_sent_back_for_repair(
    ts_agent: AgentFactory,
) -> None:
    def script(request: ModelRequest) -> Step:
        if request.review:
            return Review(approved=True)
        if request.goal.name == "test-vacation":
            return vacation_agent(request)
        if request.repair_hint is None and not has_plan_result(request):
            return RunPlan(steps=[PlanStep(id="x", goal="nobody", instruction="Oslo")])
        if not has_plan_result(request):
            return RunPlan(steps=[trip_step(0, "Oslo")])
        return combined(request)

    model = ScriptedModel(script)
    async with ts_agent(model) as convs:
        cid = await convs.start("test-planner", first_message="one trip")
        result = await asyncio.wait_for(convs.result(cid), 60)

    assert result.answer == "A week in Oslo"
    hints = [r.repair_hint for r in model.calls if r.repair_hint]
    assert len(hints) == 1 and "no agent named `nobody`" in hints[0]


async def test_a_dependent_step_waits_and_receives_the_earlier_result(
    ts_agent: AgentFactory, ts_env: WorkflowEnvironment
) -> None:
    def script(request: ModelRequest) -> Step:
        if request.review:
            return Review(approved=True)
        if request.goal.name == "test-planner":
            if not has_plan_result(request):
                return RunPlan(
                    steps=[
                        PlanStep(id="pick", goal="test-vacation", instruction="Pick Oslo"),
                        PlanStep(
                            id="book",
                            goal="test-math",
                            instruction="Price the trip picked earlier",
                            depends_on=["pick"],
                        ),
                    ]
                )
            return combined(request)
        if request.goal.name == "test-vacation":
            return vacation_agent(request)
        return Finish(answer=f"priced: {request.messages[0]}")

    model = ScriptedModel(script)
    async with ts_agent(model) as convs:
        cid = await convs.start("test-planner", first_message="pick then price")
        result = await asyncio.wait_for(convs.result(cid), 60)

    [math_call] = [r for r in model.calls if r.goal.name == "test-math"]
    first = str(math_call.messages[0])
    assert "Price the trip picked earlier" in first
    assert "- pick (test-vacation): A week in Oslo" in first
    # The dependent child was started only after the first one completed.
    events = await child_events(ts_env, cid)
    started = [
        i
        for i, e in enumerate(events)
        if e == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]
    completed = [
        i
        for i, e in enumerate(events)
        if e == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED
    ]
    assert started[1] > completed[0]
    assert result.answer is not None and result.answer.startswith("A week in Oslo | priced:")


async def test_a_grandchilds_approval_surfaces_at_the_top_and_is_forwarded_down(
    ts_agent: AgentFactory,
) -> None:
    team = PlanStep(id="team", goal="test-planner", instruction="pay")
    model = delegating({"test-director": team, "test-planner": PAY})
    async with ts_agent(model) as convs:
        cid = await convs.start("test-director", first_message="get bo paid")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        [pending] = snap.pending_approvals
        assert pending.call_id == "p1.team:p1.pay:t1"
        assert pending.agent == "test-math"
        assert pending.conversation_id == f"{cid}~p1.team~p1.pay"
        await convs.decide(cid, pending.call_id, "approve", pending.args_hash)
        result = await asyncio.wait_for(convs.result(cid), 60)
        final = await convs.snapshot(cid)

    assert result.answer == "sent 5 to bo"
    assert final.pending_approvals == []
    assert len([k for k in tool_runs("transfer") if k.startswith(cid)]) == 1
