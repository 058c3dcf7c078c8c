"""Ending, idle timeout, step limits, goal modules named in settings, large payloads."""

from __future__ import annotations

import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from onward import Onward
from onward.agent.contracts import ConversationOptions
from onward.agent.decisions import CallTools, Finish, ToolCall
from onward.agent.messages import NoticeMessage
from onward.config import Settings
from onward.exceptions import InputRejected
from onward.testing import ScriptedModel
from tests.conftest import AgentFactory, agent_factory


async def test_end_update_completes_with_a_summary(ts_agent: AgentFactory) -> None:
    model = ScriptedModel([Finish(answer="unused")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math")
        await convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
        await convs.end(cid, "user is done")
        result = await convs.result(cid)
        with pytest.raises(InputRejected, match="ended"):
            await convs.send(cid, "still there?")
    assert result.end_reason == "user is done"
    assert result.answer is None and model.calls == []


async def test_idle_conversation_ends_after_the_timeout(
    lone_ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    async with agent_factory(lone_ts_env, settings)(ScriptedModel([])) as convs:
        cid = await convs.start("test-math", options=ConversationOptions(idle_timeout_s=3600))
        await convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
        await lone_ts_env.sleep(timedelta(hours=2))
        result = await convs.result(cid)
    assert "idle" in result.end_reason


async def test_step_limit_stops_a_runaway_turn(ts_agent: AgentFactory) -> None:
    def loop_forever(_: object) -> CallTools:
        return CallTools(calls=[ToolCall(call_id="loop", tool="add", args={"a": 1, "b": 1})])

    model = ScriptedModel(loop_forever)
    async with ts_agent(model) as convs:
        cid = await convs.start(
            "test-math", first_message="go", options=ConversationOptions(max_steps_per_turn=3)
        )
        snap = await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
    assert len(model.calls) == 3
    last = snap.messages[-1]
    assert isinstance(last, NoticeMessage) and "Stopped after 3 steps" in last.text
    # Repeated call ids from the model still get distinct idempotency keys.
    call_ids = [m.call_id for m in snap.messages if m.kind == "tool_call"]
    assert len(set(call_ids)) == 3


async def test_a_goal_module_named_in_settings_is_discovered(
    ts_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    """`onward up`'s path: a module named in `goal_modules` (or an entry point)."""
    module = tmp_path / "my_weather_goal.py"
    module.write_text(
        textwrap.dedent(
            '''
            from onward import Goal, tool

            @tool
            def forecast(city: str) -> str:
                """Tomorrow's forecast for a city."""
                return f"sunny in {city}"

            @tool
            def umbrella(forecast: str) -> bool:
                """Whether to take an umbrella."""
                return "rain" in forecast

            WEATHER = Goal(name="weather", description="Weather advice.", instructions="Be brief.",
                           tools=[forecast, umbrella], end_on_finish=True)
            '''
        )
    )
    configured = settings.model_copy(update={"goal_modules": ["my_weather_goal"]})
    model = ScriptedModel(
        [
            CallTools(calls=[ToolCall(call_id="f", tool="forecast", args={"city": "Lima"})]),
            CallTools(
                calls=[ToolCall(call_id="u", tool="umbrella", args={"forecast": "sunny in Lima"})]
            ),
            Finish(answer="No umbrella needed."),
        ]
    )
    sys.path.insert(0, str(tmp_path))
    try:
        app = Onward.discover(model=model, settings=configured)
    finally:
        sys.path.remove(str(tmp_path))
    assert "weather" in app.catalog.goals
    assert "travel" in app.catalog.goals  # the bundled examples' entry points
    async with app.running(ts_env.client) as convs:
        cid = await convs.start("weather", first_message="umbrella tomorrow in Lima?")
        result = await convs.result(cid)
    assert [(r.tool, r.result) for r in result.tool_calls] == [
        ("forecast", "sunny in Lima"),
        ("umbrella", False),
    ]


async def test_large_payloads_go_to_external_storage(
    ts_agent: AgentFactory, ts_env: WorkflowEnvironment, session_data_dir: Path
) -> None:
    big = "x" * 300_000
    model = ScriptedModel([Finish(answer="ok")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message=big)
        result = await convs.result(cid)
        snap = await convs.snapshot(cid)
    assert result.answer == "ok"
    assert snap.messages[0].kind == "user" and len(snap.messages[0].text) == 300_000
    history = await ts_env.client.get_workflow_handle(cid).fetch_history()
    # No event in history carries the 300 kB text inline.
    assert max(e.ByteSize() for e in history.events) < 100_000
    assert any((session_data_dir / "payloads").rglob("*"))
