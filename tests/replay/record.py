"""Record the saved histories that `test_replay.py` replays.

Run `python -m tests.replay.record [SCENARIO ...]` after a deliberate, versioned change
of workflow logic (and keep the old histories if old runs must still replay). Naming
scenarios records only those, leaving the other saved histories as they were.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client

from onward.agent.contracts import SIGNAL_SEND_MESSAGE, Budget, ConversationOptions, SendMessage
from onward.agent.decisions import (
    PLAN_TOOL,
    AskUser,
    CallTools,
    Finish,
    PlanStep,
    Refuse,
    Review,
    RunPlan,
    ToolCall,
)
from onward.agent.messages import NoticeMessage, ToolResultMessage, UserMessage
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.models.base import ModelRequest
from onward.testing import ScriptedModel, time_skipping_environment
from onward.testing.scripted import Step
from onward.worker import build_workers, running_workers
from tests.conftest import TEST_GOAL_MODULES
from tests.workflows import team_goals, toolbox

HERE = Path(__file__).parent


def _call(cid: str, tool: str, **args: object) -> CallTools:
    return CallTools(calls=[ToolCall(call_id=cid, tool=tool, args=args)])


async def _tools_and_approval(convs: Conversations) -> str:
    cid = await convs.start("test-math", first_message="add, then send the sum")
    await convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
    await convs.send(cid, "2 and 3, send to bo")
    snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
    approval = snap.pending_approvals[0]
    await convs.decide(cid, approval.call_id, "approve", approval.args_hash)
    await convs.result(cid)
    return cid


async def _continue_as_new(convs: Conversations) -> str:
    cid = await convs.start(
        "test-math",
        first_message="one",
        options=ConversationOptions(turns_before_continue_as_new=2),
    )
    await convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
    await convs.send(cid, "two")
    await convs.wait_for(cid, lambda s: s.runs == 2 and s.status == "waiting_for_user")
    await convs.end(cid)
    return cid


async def _budget_then_raise(convs: Conversations) -> str:
    cid = await convs.start(
        "test-math",
        first_message="count",
        options=ConversationOptions(budget=Budget(max_tokens=120)),
    )
    await convs.wait_for(cid, lambda s: s.status == "budget_exhausted")
    await convs.raise_budget(cid, max_tokens=10_000)
    await convs.result(cid)
    return cid


async def _rejected_and_invalid(convs: Conversations) -> str:
    cid = await convs.start("test-math", first_message="send money")
    snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
    approval = snap.pending_approvals[0]
    await convs.decide(cid, approval.call_id, "reject", approval.args_hash, feedback="no")
    await convs.result(cid)
    return cid


def _open(request: ModelRequest) -> Step:
    """Refuse the off-topic opener; add and rest; thank-you follow-up after a
    continue-as-new (whose input carries references, not the transcript)."""
    last = request.messages[-1]
    if isinstance(last, UserMessage) and "cheeseburger" in last.text:
        return Refuse(text="I can only help with arithmetic.")
    if isinstance(last, UserMessage) and last.text == "add 2 and 3":
        return _call("a1", "add", a=2, b=3)
    if isinstance(last, ToolResultMessage):
        return Finish(answer=f"It is {last.content}.")
    return Finish(answer="You're welcome.")


async def _open_rest_and_store(convs: Conversations) -> str:
    cid = await convs.start(
        "test-math-open",
        first_message="two cheeseburgers please",
        options=ConversationOptions(turns_before_continue_as_new=2),
    )
    await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
    await convs.send(cid, "add 2 and 3")
    await convs.wait_for(cid, lambda s: s.answer is not None and s.status == "waiting_for_user")
    # By signal, as the API sends messages: durable even while no worker runs.
    await convs.client.get_workflow_handle(cid).signal(
        SIGNAL_SEND_MESSAGE, SendMessage(text="thanks", message_id="m-thanks")
    )
    await convs.wait_for(
        cid, lambda s: s.runs == 2 and s.turns == 3 and s.status == "waiting_for_user"
    )
    await convs.end(cid)
    await convs.result(cid)
    return cid


def _team(request: ModelRequest) -> Step:
    """Planner -> two children (one needs an approval) -> rejected review -> re-plan
    with a third step (the first two reused) -> approved."""
    if request.review:
        rejected = any(isinstance(m, NoticeMessage) for m in request.messages)
        return Review(approved=rejected, feedback=None if rejected else "add Kyoto")
    done = any(isinstance(m, ToolResultMessage) for m in request.messages)
    if request.goal.name == "test-math":
        if done:
            return Finish(answer="sent")
        return _call("t", "transfer", amount=5, to="bo")
    if request.goal.name == "test-vacation":
        city = "Kyoto" if "Kyoto" in str(request.messages[0]) else "Oslo"
        return Finish(answer=city) if done else _call("f", "find_trip", city=city)
    plans = [
        m for m in request.messages if isinstance(m, ToolResultMessage) and m.tool == PLAN_TOOL
    ]
    rejected = any(isinstance(m, NoticeMessage) for m in request.messages)
    steps = [
        PlanStep(id="pay", goal="test-math", instruction="send 5 to bo"),
        PlanStep(id="oslo", goal="test-vacation", instruction="trip to Oslo"),
    ]
    if not plans:
        return RunPlan(steps=steps)
    if rejected and len(plans) == 1:
        return RunPlan(
            steps=[*steps, PlanStep(id="kyoto", goal="test-vacation", instruction="Kyoto")]
        )
    return Finish(answer=f"{len(plans)} plans")


async def _team_with_review(convs: Conversations) -> str:
    cid = await convs.start("test-planner", first_message="pay bo and plan trips")
    snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
    approval = snap.pending_approvals[0]
    await convs.decide(cid, approval.call_id, "approve", approval.args_hash)
    await convs.result(cid)
    return cid


SCENARIOS: dict[str, tuple[object, Callable[[Conversations], Awaitable[str]]]] = {
    "tools_and_approval": (
        [
            AskUser(text="Which numbers?"),
            CallTools(
                calls=[
                    ToolCall(call_id="a", tool="add", args={"a": 2, "b": 3}),
                    ToolCall(call_id="d", tool="describe", args={"value": 5}),
                ]
            ),
            _call("t", "transfer", amount=5, to="bo"),
            Finish(answer="Sent 5 to bo."),
        ],
        _tools_and_approval,
    ),
    "continue_as_new": ([AskUser(text="ok"), AskUser(text="ok again")], _continue_as_new),
    "budget": (
        [_call("b1", "add", a=1, b=1), _call("b2", "add", a=2, b=2), Finish(answer="4")],
        _budget_then_raise,
    ),
    "rejected_and_invalid": (
        [
            CallTools(
                calls=[
                    ToolCall(call_id="x", tool="launch", args={}),
                    ToolCall(call_id="y", tool="add", args={"a": "one"}),
                    ToolCall(call_id="t", tool="transfer", args={"amount": 9, "to": "eve"}),
                ]
            ),
            Finish(answer="Not sent."),
        ],
        _rejected_and_invalid,
    ),
    "team": (_team, _team_with_review),
    "v2-open": (_open, _open_rest_and_store),
}
CHILDREN = {"team": ["p1.pay", "p1.oslo", "p2.kyoto"]}
"""Child conversations saved with a scenario (ids are `<parent>~<suffix>`)."""


async def _save(client: Client, workflow_id: str, name: str) -> None:
    """Save every run of `workflow_id`, walking back through continue-as-new."""
    histories: list[str] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history.to_json())
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            break
    for i, text in enumerate(reversed(histories)):
        path = HERE / f"{name}.run{i + 1}.json"
        path.write_text(json.dumps(json.loads(text), indent=1))
        print(f"wrote {path}")


async def main() -> None:
    assert toolbox.MATH.name == "test-math" and team_goals.PLANNER.name == "test-planner"
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            data_dir=Path(tmp),
            task_queue=f"rec-{uuid.uuid4()}",
            search_attributes=False,
            goal_modules=TEST_GOAL_MODULES,
        )
        env = await time_skipping_environment(settings)
        try:
            chosen = sys.argv[1:] or list(SCENARIOS)
            for name, (script, scenario) in SCENARIOS.items():
                if name not in chosen:
                    continue
                model = ScriptedModel(script)  # type: ignore[arg-type]
                async with running_workers(build_workers(env.client, settings, model)):
                    cid = await scenario(Conversations(env.client, settings))
                for suffix in ["", *CHILDREN.get(name, [])]:
                    wid = f"{cid}~{suffix}" if suffix else cid
                    label = f"{name}.{suffix}" if suffix else name
                    await _save(env.client, wid, label)
        finally:
            await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
