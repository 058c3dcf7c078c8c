"""The benchmark harness's own logic, fast: no server, no full run."""

from __future__ import annotations

import math
from typing import Any

import pytest
from bench.chart import _short  # pyright: ignore[reportPrivateUsage]
from bench.fake_llm import mean_in_flight, step_responder
from bench.goal import BENCH_LOCAL, TOOL_LOCAL, StepScript
from bench.history import completions_after, in_flight_at, step_breakdown
from bench.peers import bench_asyncio
from bench.report import evaluate
from bench.run import WHAT_IF_ONE_QUEUE
from bench.stats import percentile, summary_ms
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from onward.agent.decisions import CallTools, Finish
from onward.agent.messages import ToolCallMessage, ToolResultMessage, UserMessage
from onward.models.base import ModelRequest
from onward.testing import FakeReply


def test_percentile_interpolates_like_numpy() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(values, 0) == 15
    assert percentile(values, 50) == 35
    assert percentile(values, 100) == 50
    assert percentile(values, 40) == pytest.approx(29.0)  # numpy.percentile: 29.0
    assert percentile([3.0], 95) == 3
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile(values, 101)


def test_summary_is_in_milliseconds() -> None:
    out = summary_ms([0.010, 0.020, 0.030])
    assert out["p50_ms"] == 20 and out["max_ms"] == 30 and out["samples"] == 3


def _request(results: int) -> ModelRequest:
    messages: list[Any] = [UserMessage(text="go")]
    for i in range(results):
        messages += [
            ToolCallMessage(call_id=f"s{i}", tool=TOOL_LOCAL, args={"n": i}),
            ToolResultMessage(call_id=f"s{i}", tool=TOOL_LOCAL, ok=True, content=i + 1),
        ]
    return ModelRequest(conversation_id="c1", goal=BENCH_LOCAL.spec(), messages=messages)


def test_step_script_calls_the_tool_then_finishes() -> None:
    script = StepScript(steps=2)
    first, second, last = (script(_request(n)) for n in range(3))
    assert isinstance(first, CallTools) and first.calls[0].tool == TOOL_LOCAL
    assert isinstance(second, CallTools) and second.calls[0].call_id == "s1"
    assert isinstance(last, Finish)
    assert script.steps_done() == 2 and len(script.step_seconds()) == 2
    assert "c1" in script.finished


def test_fake_provider_answers_guardrail_tool_and_finish() -> None:
    respond = step_responder(steps=1)
    tools = [{"type": "function", "function": {"name": n}} for n in ("bench_echo", "finish")]
    verdict = respond({"tools": [{"function": {"name": "verdict"}}]})
    call = respond({"tools": tools, "messages": [{"role": "user", "content": "go"}]})
    done = respond({"tools": tools, "messages": [{"role": "tool", "content": "1"}]})
    assert isinstance(verdict, FakeReply) and verdict.tool_calls[0].name == "verdict"
    assert isinstance(call, FakeReply) and call.tool_calls[0].name == "bench_echo"
    assert isinstance(done, FakeReply) and done.tool_calls[0].name == "finish"


def test_mean_in_flight_is_time_weighted() -> None:
    # 0 in flight until t=1, 2 until t=3, then 1: over [0, 4] the mean is (0+4+1)/4.
    changes = [(1.0, 1), (1.0, 2), (3.0, 1)]
    assert mean_in_flight(changes, [(0.0, 4.0)]) == pytest.approx(1.25)
    assert mean_in_flight(changes, [(1.5, 2.5)]) == pytest.approx(2.0)
    assert mean_in_flight(changes, []) == 0


def _event(event_id: int, kind: EventType.ValueType, at_ms: int, **ids: int) -> HistoryEvent:
    e = HistoryEvent(event_id=event_id, event_type=kind)
    e.event_time.FromMilliseconds(at_ms)
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        e.activity_task_scheduled_event_attributes.activity_type.name = "onward.decide"
    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        e.activity_task_started_event_attributes.scheduled_event_id = ids["scheduled"]
    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        e.activity_task_completed_event_attributes.started_event_id = ids["started"]
    elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
        e.workflow_task_started_event_attributes.scheduled_event_id = ids["scheduled"]
    elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        e.workflow_task_completed_event_attributes.started_event_id = ids["started"]
    return e


def test_history_breakdown_splits_a_step_into_phases() -> None:
    t = EventType
    events = [
        _event(1, t.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, 1000),
        _event(2, t.EVENT_TYPE_ACTIVITY_TASK_STARTED, 1002, scheduled=1),
        _event(3, t.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, 1007, started=2),
        _event(4, t.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 1007),
        _event(5, t.EVENT_TYPE_WORKFLOW_TASK_STARTED, 1010, scheduled=4),
        _event(6, t.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 1019, started=5),
        _event(7, t.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, 1020),
    ]
    ms = step_breakdown(events).per_step_ms()
    assert ms["activity_dispatch_ms"] == pytest.approx(2)
    assert ms["activity_run_ms"] == pytest.approx(5)
    assert ms["workflow_task_dispatch_ms"] == pytest.approx(3)
    assert ms["workflow_task_run_ms"] == pytest.approx(9)
    assert ms["other_ms"] == pytest.approx(1) and ms["total_ms"] == pytest.approx(20)


def test_completions_and_calls_in_flight_at_a_moment() -> None:
    t = EventType
    events = [
        _event(1, t.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, 1000),
        _event(2, t.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, 1500),
        _event(3, t.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, 1200, started=0),
        _event(4, t.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, 3000, started=0),
    ]
    events[2].activity_task_completed_event_attributes.scheduled_event_id = 1
    events[3].activity_task_completed_event_attributes.scheduled_event_id = 2
    assert completions_after(events, "onward.decide", 1.1) == [1.2, 3.0]
    assert completions_after(events, "onward.decide", 2.0) == [3.0]
    assert completions_after(events, "onward.tool", 0.0) == []
    assert in_flight_at(events, "onward.decide", 1.6) == [3.0]
    assert in_flight_at(events, "onward.decide", 1.1) == [1.2]


async def test_asyncio_peer_runs_five_steps() -> None:
    out = await bench_asyncio(conversations=2, steps=5)
    assert out["samples"] == 10 and out["durable"] is False
    assert out["p50_ms"] >= 0 and out["p95_ms"] >= out["p50_ms"]


def test_targets_pass_and_fail() -> None:
    results: dict[str, Any] = {
        "onward": {
            "p50_ms": 12.0,
            "steps_per_s": 90.0,
            "llm_max_in_flight": 50,
            "llm_cap": {"cap": 50, "violations": 0},
            "recovery_next_step_s": 2.0,
            "recovery_in_flight_call_s": None,
            "rss_10k_idle_mib": 300.0,
        }
    }
    verdicts = {name: t["pass"] for name, t in evaluate(results).items()}
    assert verdicts == {
        "per_step_p50": True,
        "throughput": False,
        "llm_cap_held": True,
        "recovery_next_step": True,
        "recovery_in_flight_call": False,  # no value is a miss, never a pass
        "idle_memory": True,
    }


def test_chart_labels_name_server_and_tool() -> None:
    assert _short("stock server, local-activity tool") == "stock srv\nlocal tool"
    assert _short(WHAT_IF_ONE_QUEUE) == "one queue\n(what-if)\nlocal tool"
