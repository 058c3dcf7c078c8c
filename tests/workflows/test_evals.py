"""Replay evals on the time-skipping server: recorded conversations replayed against a
candidate model, with no tool executed (recorded calls get recorded results)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
from onward.agent.eval_contracts import Candidate
from onward.agent.evals import EvalWorkflow, case_conversation_id
from onward.agent.messages import ToolResultMessage, UserMessage
from onward.agent.workflow import ConversationWorkflow
from onward.client.connect import data_converter
from onward.client.conversations import Conversations
from onward.client.erasure import runs_of
from onward.config import Settings, WorkflowSandbox
from onward.evals.export import export_conversations
from onward.evals.format import EvalSet
from onward.evals.running import run_eval, start_eval, wait_for_report
from onward.models.base import ModelRequest
from onward.testing import ScriptedModel, Step
from onward.worker import build_workers, running_workers, workflow_runner
from tests.workflows import toolbox

assert toolbox.OPEN_MATH.name == "test-math-open"
SAID = ["1", "2", "3", "thanks, that's all"]
SAVED_HISTORY = Path(__file__).parents[1] / "replay" / "evals" / "eval.run1.json"


def math_agent(
    second_turn_tool: str = "add", instructions_seen: list[str] | None = None
) -> Callable[[ModelRequest], Step]:
    """Adds 1 to the number the user gives (with a tool), says the result, and finishes
    when thanked. `second_turn_tool` is the tool it picks at turn 2."""

    def script(request: ModelRequest) -> Step:
        if instructions_seen is not None:
            instructions_seen.append(request.goal.instructions)
        last = request.messages[-1]
        if isinstance(last, UserMessage):
            if not last.text[0].isdigit():
                return Finish(answer="Glad to help.")
            turn = sum(isinstance(m, UserMessage) for m in request.messages)
            tool = second_turn_tool if turn == 2 else "add"
            call = ToolCall(call_id=f"c{turn}", tool=tool, args={"a": int(last.text), "b": 1})
            return CallTools(calls=[call])
        assert isinstance(last, ToolResultMessage)
        return AskUser(text=f"= {last.content}" if last.ok else "That did not work.")

    return script


async def record(convs: Conversations) -> str:
    """A conversation of four turns: three tool calls and a finish."""
    cid = await convs.start("test-math-open", first_message=SAID[0])
    await convs.wait_for(cid, lambda s: s.turns == 1 and s.status == "waiting_for_user")
    for turn, text in enumerate(SAID[1:], 2):
        await convs.send(cid, text)
        await convs.wait_for(cid, lambda s, t=turn: s.turns == t and s.status == "waiting_for_user")
    await convs.end(cid)
    await convs.result(cid)
    return cid


async def activities(client: Client, workflow_id: str) -> Counter[str]:
    """Activities scheduled and local activities recorded in every run of `workflow_id`
    and its children."""
    counts: Counter[str] = Counter()
    for wid, rid in await runs_of(client, workflow_id):
        async for e in client.get_workflow_handle(wid, run_id=rid).fetch_history_events():
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                counts[e.activity_task_scheduled_event_attributes.activity_type.name] += 1
            elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                name = e.marker_recorded_event_attributes.marker_name
                if name != "core_patch":
                    counts["marker:" + name] += 1
    return counts


async def decide_queues(client: Client, workflow_id: str) -> set[str]:
    queues: set[str] = set()
    async for e in client.get_workflow_handle(workflow_id).fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            queues.add(e.activity_task_scheduled_event_attributes.task_queue.name)
    return queues


async def recorded_set(env: WorkflowEnvironment, settings: Settings, n: int = 1) -> EvalSet:
    model = ScriptedModel(math_agent())
    async with running_workers(build_workers(env.client, settings, model)):
        convs = Conversations(env.client, settings)
        ids = [await record(convs) for _ in range(n)]
        return await export_conversations(env.client, settings, ids, name="math")


async def test_the_same_model_as_the_recording_replays_with_no_divergence_and_no_side_effect(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    eval_set = await recorded_set(ts_env, settings)
    [case] = eval_set.cases
    assert case.reached and case.answer == "Glad to help."
    assert [d.kind for d in case.decisions] == ["call_tools", "ask"] * 3 + ["finish"]
    tools_before = list(toolbox.CALLS)

    model = ScriptedModel(math_agent())
    async with running_workers(build_workers(ts_env.client, settings, model)):
        report = await run_eval(ts_env.client, settings, eval_set, Candidate())
    [result] = report.cases
    assert result.error is None
    assert result.diverging_turns == [] and report.totals.decisions_differ == 0
    assert (result.calls_added, result.calls_removed, result.calls_changed) == (0, 0, 0)
    assert result.not_executed == 0 and result.side_effects == 0
    assert [t.candidate.end for t in result.turns if t.candidate] == ["asked"] * 3 + ["answered"]
    assert not any(t.text_changed for t in result.turns)
    assert result.recorded_reached and result.candidate_reached
    assert result.candidate_usage == result.recorded_usage == case.usage
    # The model really decided again (7 decisions), with the recorded results.
    assert len(model.calls) == 7
    assert [m.content for m in model.calls[1].messages if isinstance(m, ToolResultMessage)] == [2]
    # No tool ran: nothing new in the tools' own log, nothing in the child's history.
    assert tools_before == toolbox.CALLS
    child = case_conversation_id(report.run_id, 0)
    assert await activities(ts_env.client, child) == Counter({"onward.decide": 7})
    # Its model calls went through the llm queue, whose workers cap them.
    assert await decide_queues(ts_env.client, child) == {settings.llm_task_queue}


async def test_a_different_tool_at_turn_two_is_exactly_that_divergence_and_is_not_executed(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    eval_set = await recorded_set(ts_env, settings)
    tools_before = list(toolbox.CALLS)
    model = ScriptedModel(math_agent(second_turn_tool="multiply"))
    async with running_workers(build_workers(ts_env.client, settings, model)):
        report = await run_eval(ts_env.client, settings, eval_set, Candidate())
    [result] = report.cases
    assert result.diverging_turns == [2]
    turn = result.turns[1]
    assert [(c.tool, c.args) for c in turn.added] == [("multiply", {"a": 2, "b": 1})]
    assert [(c.tool, c.args) for c in turn.removed] == [("add", {"a": 2, "b": 1})]
    assert turn.changed == [] and turn.reasons == [
        "called `multiply`, which the recording did not",
        "did not call `add`, which the recording did",
    ]
    # Same kind of ending (a question), other words: noted, not a divergence.
    assert turn.candidate is not None and turn.candidate.end == "asked" and turn.text_changed
    assert (result.calls_added, result.calls_removed, result.not_executed) == (1, 1, 1)
    assert result.side_effects == 0 and tools_before == toolbox.CALLS
    assert report.totals.decisions_differ == 1 and report.totals.diverged_cases == 1
    # The model was told the call did not run.
    told = [m for m in model.calls[3].messages if isinstance(m, ToolResultMessage)][-1]
    assert told.tool == "multiply" and not told.ok
    assert told.error is not None and told.error.startswith("not executed: this eval replays")
    child = case_conversation_id(report.run_id, 0)
    assert "onward.tool" not in await activities(ts_env.client, child)


async def test_new_instructions_and_the_goal_as_registered_reach_the_model(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    eval_set = await recorded_set(ts_env, settings)
    seen: list[str] = []
    model = ScriptedModel(math_agent(instructions_seen=seen))
    async with running_workers(build_workers(ts_env.client, settings, model)):
        report = await run_eval(
            ts_env.client, settings, eval_set, Candidate(instructions="Be terse.")
        )
        assert set(seen) == {"Be terse."} and report.totals.decisions_differ == 0
        seen.clear()
        recorded = eval_set.cases[0].goal.model_copy(update={"instructions": "old prompt"})
        old = eval_set.model_copy(
            update={"cases": [eval_set.cases[0].model_copy(update={"goal": recorded})]}
        )
        await run_eval(ts_env.client, settings, old, Candidate(goal="test-math-open"))
        assert set(seen) == {toolbox.OPEN_MATH.instructions}


async def test_cases_run_at_most_concurrency_at_once_and_continue_as_new_keeps_every_report(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    eval_set = await recorded_set(ts_env, settings, n=3)
    model = ScriptedModel(math_agent())
    async with running_workers(build_workers(ts_env.client, settings, model)):
        run_id = await start_eval(
            ts_env.client, settings, eval_set, Candidate(), concurrency=1, cases_per_run=2
        )
        report = await wait_for_report(ts_env.client, run_id)
        spans: list[tuple[datetime, datetime]] = []
        for i in range(3):
            info = await ts_env.client.get_workflow_handle(
                case_conversation_id(run_id, i)
            ).describe()
            assert info.close_time is not None
            spans.append((info.start_time, info.close_time))
    assert [c.case_id for c in report.cases] == [c.id for c in eval_set.cases]
    assert report.totals.cases == 3 and report.totals.decisions_differ == 0
    assert report.runs == 2
    # One at a time: each case started after the one before had closed.
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2))


async def test_a_case_that_cannot_be_replayed_is_reported_and_the_others_run(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    eval_set = await recorded_set(ts_env, settings)
    broken = eval_set.cases[0].model_copy(update={"id": "broken", "transcript": []})
    model = ScriptedModel(math_agent())
    async with running_workers(build_workers(ts_env.client, settings, model)):
        report = await run_eval(
            ts_env.client,
            settings,
            eval_set.model_copy(update={"cases": [broken, eval_set.cases[0]]}),
            Candidate(),
        )
    first, second = report.cases
    assert first.error is not None and "has no user message" in first.error
    assert second.error is None and second.diverging_turns == []
    assert report.totals.errors == 1 and report.totals.diverged_cases == 1


@pytest.mark.parametrize("sandbox", ["off", "shared"])
async def test_the_eval_workflow_replays_deterministically(
    sandbox: WorkflowSandbox, ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    settings = settings.model_copy(update={"workflow_sandbox": sandbox})
    eval_set = await recorded_set(ts_env, settings)
    model = ScriptedModel(math_agent(second_turn_tool="multiply"))
    async with running_workers(build_workers(ts_env.client, settings, model)):
        report = await run_eval(ts_env.client, settings, eval_set, Candidate())
    assert report.cases[0].diverging_turns == [2]
    histories = [
        await ts_env.client.get_workflow_handle(report.run_id).fetch_history(),
        WorkflowHistory.from_json("saved", SAVED_HISTORY.read_text()),
    ]
    replayer = Replayer(
        workflows=[EvalWorkflow, ConversationWorkflow],
        data_converter=data_converter(settings),
        workflow_runner=workflow_runner(settings),
    )
    for history in histories:
        replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert replayed.replay_failure is None, replayed.replay_failure


async def _record_history() -> None:
    """Save the history `test_the_eval_workflow_replays_deterministically` replays:
    `python -m tests.workflows.test_evals` (only for a deliberate, versioned change)."""
    import tempfile

    from onward.testing import time_skipping_environment
    from tests.conftest import make_settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        env = await time_skipping_environment(settings)
        try:
            eval_set = await recorded_set(env, settings)
            model = ScriptedModel(math_agent(second_turn_tool="multiply"))
            async with running_workers(build_workers(env.client, settings, model)):
                report = await run_eval(env.client, settings, eval_set, Candidate())
            history = await env.client.get_workflow_handle(report.run_id).fetch_history()
        finally:
            await env.shutdown()
    SAVED_HISTORY.parent.mkdir(parents=True, exist_ok=True)
    SAVED_HISTORY.write_text(history.to_json())
    print(f"saved {SAVED_HISTORY}")


if __name__ == "__main__":
    import asyncio

    asyncio.run(_record_history())
