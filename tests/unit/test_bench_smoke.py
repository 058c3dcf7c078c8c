"""The benchmark harness's own logic, fast: no server, no full run."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from bench.chart import _short  # pyright: ignore[reportPrivateUsage]
from bench.fake_llm import mean_in_flight, step_responder
from bench.goal import BENCH_LOCAL, TOOL_LOCAL, StepScript
from bench.history import completions_after, in_flight_at, step_breakdown
from bench.history_size import Drive, HistoryFigures, RunBytes, conversation_figures, split_run
from bench.manual import (
    MANUAL,
    PAGE_BYTES,
    TOOL_NAME,
    CallLog,
    CallLogs,
    new_content_bytes,
    page,
    page_number,
    reply_text,
    user_text,
)
from bench.onward_history import page_reader
from bench.peer_openai_agents import answer as openai_answer
from bench.peer_pydantic_ai import answer as pydantic_answer
from bench.peers import bench_asyncio
from bench.report import evaluate, history_lines
from bench.run import WHAT_IF_ONE_QUEUE
from bench.stats import percentile, summary_ms
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from onward.agent.decisions import AskUser, CallTools, Finish
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
        "history_per_turn": False,  # not measured
    }


def test_chart_labels_name_server_and_tool() -> None:
    assert _short("stock server, local-activity tool") == "stock srv\nlocal tool"
    assert _short(WHAT_IF_ONE_QUEUE) == "one queue\n(what-if)\nlocal tool"


def _history_event(kind: EventType.ValueType, signal: str = "", reason: str = "") -> HistoryEvent:
    e = HistoryEvent(event_type=kind)
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        e.workflow_execution_signaled_event_attributes.signal_name = signal
    elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        e.activity_task_completed_event_attributes.result.payloads.add(data=b"x" * 2048)
    elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
        e.workflow_execution_terminated_event_attributes.reason = reason
    return e


def _turn(signal: str = "user_message") -> list[HistoryEvent]:
    t = EventType
    return [
        _history_event(t.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, signal),
        _history_event(t.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        _history_event(t.EVENT_TYPE_ACTIVITY_TASK_COMPLETED),
    ]


def test_a_run_splits_into_turns_at_its_user_message_signals() -> None:
    t = EventType
    start = [_history_event(t.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)]
    other = [_history_event(t.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, "stream_poll")]
    first, second = _turn(), _turn() + other
    end = [_history_event(t.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)]
    run = split_run("r1", [*start, *first, *second, *end], "user_message")

    def size(events: list[HistoryEvent]) -> int:
        return sum(e.ByteSize() for e in events)

    assert run.start_bytes == size(start)
    # Another signal (not a user message) belongs to the turn it arrives in.
    assert run.turn_bytes == [size(first), size(second)]
    assert run.end_bytes == size(end) and run.closed == "continued as new"
    assert run.total == size([*start, *first, *second, *end])


def test_figures_follow_turns_across_runs_and_drop_an_unanswered_turn() -> None:
    t = EventType
    runs = [
        RunBytes(
            "r1", start_bytes=100, turn_bytes=[10, 20], end_bytes=5, closed="continued as new"
        ),
        RunBytes("r2", start_bytes=50, turn_bytes=[30, 99], end_bytes=7, closed="terminated"),
    ]
    figures = HistoryFigures(runs, answered=3)
    assert figures.turn_bytes() == [10, 20, 30]
    assert figures.run_size_after() == [110, 130, 80]
    assert figures.at(3) == {"bytes_added": 30, "run_bytes": 80}
    assert figures.at(4) is None
    summary = figures.summary(checkpoints=(2, 3, 10))
    assert summary["at_turn"] == {"2": {"bytes_added": 20, "run_bytes": 130}, "3": figures.at(3)}
    assert summary["runs"] == 2 and summary["total_history_bytes"] == 135 + 186
    assert summary["continued_run_start_bytes_max"] == 50
    ended = split_run(
        "r3",
        [*_turn(), _history_event(t.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, reason="too big")],
        "user_message",
    )
    assert ended.closed == "terminated" and ended.close_reason == "too big"
    drive = Drive(answered=3, stopped="closed during turn 4")
    figures = HistoryFigures([ended], answered=1)
    assert conversation_figures(drive, CallLog(), figures)["stopped"] == (
        "closed during turn 4: terminated (too big)"
    )


async def test_call_log_times_steps_within_a_turn_and_wakes_the_driver() -> None:
    log = CallLog()
    log.call()
    log.call()
    log.replied()  # turn 1: a tool call, then the reply
    log.call()
    log.call()
    log.call()  # turn 2 took two steps
    assert log.turns == [1, 1, 2, 2, 2]
    assert len(log.step_seconds()) == 3
    assert len(log.step_seconds(2, 2)) == 2
    assert log.calls_in(1) == 2 and log.calls_in(2) == 5
    assert await log.wait_replies(1, timeout_s=1)
    assert not await log.wait_replies(2, timeout_s=0.01)

    async def reply_soon() -> None:
        log.replied()

    task = asyncio.create_task(reply_soon())
    assert await log.wait_replies(2, timeout_s=5)
    await task


def test_the_manual_pages_and_their_numbers() -> None:
    assert len(str(page(7)["text"])) == PAGE_BYTES
    assert page_number(user_text(12)) == 12 and page_number(reply_text(3)) == 3
    assert page_number("{'page': 41") == 41
    with pytest.raises(ValueError, match="no page number"):
        page_number("hello")
    assert 2048 < new_content_bytes(5) < 2200


def test_onward_page_reader_reads_then_replies() -> None:
    logs = CallLogs()
    log = logs.open("c1")
    model = page_reader(logs)
    assert callable(model.script)
    spec = MANUAL.spec()
    ask = ModelRequest(conversation_id="c1", goal=spec, messages=[UserMessage(text="page 4")])
    call = model.script(ask)
    assert isinstance(call, CallTools) and call.calls[0].args == {"n": 4}
    result = ToolResultMessage(call_id="read-4", tool=TOOL_NAME, ok=True, content=page(4))
    reply = model.script(ask.model_copy(update={"messages": [*ask.messages, result]}))
    assert isinstance(reply, AskUser) and reply.text == reply_text(4)
    assert log.replies == 1 and log.turns == [1, 1]


def test_pydantic_ai_page_reader_reads_then_replies() -> None:
    from pydantic_ai.messages import ModelRequest as PaiRequest
    from pydantic_ai.messages import TextPart, ToolCallPart, ToolReturnPart, UserPromptPart

    ask = PaiRequest(parts=[UserPromptPart("page 9")])
    call, is_reply = pydantic_answer([ask])
    assert not is_reply and isinstance(call.parts[0], ToolCallPart)
    assert call.parts[0].args == {"n": 9}
    done = PaiRequest(parts=[ToolReturnPart(TOOL_NAME, page(9), tool_call_id="read-9")])
    reply, is_reply = pydantic_answer([ask, call, done])
    assert is_reply and isinstance(reply.parts[0], TextPart)
    assert reply.parts[0].content == reply_text(9)


def test_openai_agents_page_reader_reads_then_replies() -> None:
    call, is_reply = openai_answer("page 2")
    assert not is_reply and call.output[0].type == "function_call"
    output: Any = {"type": "function_call_output", "call_id": "read-2", "output": str(page(2))}
    reply, is_reply = openai_answer([{"role": "user", "content": "page 2"}, output])
    assert is_reply and reply.output[0].type == "message"


def _history_results(at_1000: int | None) -> dict[str, Any]:
    at_turn: dict[str, Any] = {"10": {"bytes_added": 7000, "run_bytes": 70_000}}
    if at_1000 is not None:
        at_turn["1000"] = {"bytes_added": at_1000, "run_bytes": 100_000}
    history = {
        "new_content_bytes_per_turn": 2100,
        "at_turn": at_turn,
        "turns_answered": 1000 if at_1000 else 10,
        "stopped": "completed",
        "total_history_bytes": 1,
        "runs": 1,
        "step_p50_ms": 20.0,
        "model_calls_per_turn": 2.0,
        "replay": {"current_run": {"ms": 5.0}},
    }
    return {"onward": {"history": history}, "pydantic_ai_temporal": {"history": {"error": "boom"}}}


def test_history_target_needs_both_checkpoints_within_the_bound() -> None:
    assert evaluate(_history_results(7100))["history_per_turn"]["pass"] is True
    assert evaluate(_history_results(11_000))["history_per_turn"]["pass"] is False
    assert evaluate(_history_results(None))["history_per_turn"]["pass"] is False  # not reached
    lines = history_lines(_history_results(7100))
    assert "'1000': 7100" in lines[0] and "failed: boom" in lines[1]
