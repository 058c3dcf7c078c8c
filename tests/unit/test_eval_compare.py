"""Comparing a candidate with a recording: turns, how they ended, call differences."""

from __future__ import annotations

from dataclasses import replace

from onward.agent.contracts import EvalScript, RecordedCall
from onward.agent.decisions import AskUser, CallTools, Finish, Refuse, ToolCall
from onward.agent.eval_contracts import CallRef, CaseReport, EvalTotals, TurnDecisions
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from onward.agent.orchestration import replayed
from onward.evals.compare import (
    NOT_EXECUTED_PREFIX,
    Side,
    compare_case,
    compare_turn,
    diff_calls,
    not_executed,
    split_turns,
)


def tool_turn(user: str, tool: str, args: dict[str, object], reply: str) -> list[Message]:
    return [
        UserMessage(text=user),
        AssistantMessage(text="Let me look."),
        ToolCallMessage(call_id=f"c-{user}", tool=tool, args=args),
        ToolResultMessage(call_id=f"c-{user}", tool=tool, ok=True, content={"n": 1}),
        AssistantMessage(text=reply),
    ]


def test_a_turn_ends_with_its_last_reply_and_the_decisions_tell_an_answer_from_a_question() -> None:
    transcript = [
        NoticeMessage(text="Forked from `x` after message 0 (turn 0)."),
        *tool_turn("Find events in Austin", "find_events", {"city": "Austin"}, "Which one?"),
        *tool_turn("the first one", "search_flights", {"origin": "Boston"}, "Booked."),
        UserMessage(text="what's the weather on mars"),
        AssistantMessage(text="I can only help with travel."),
    ]
    decisions = [
        CallTools(calls=[ToolCall(call_id="a", tool="find_events", args={})], text="Let me look."),
        AskUser(text="Which one?"),
        CallTools(calls=[ToolCall(call_id="b", tool="search_flights", args={})]),
        Finish(answer="Booked."),
        Refuse(text="I can only help with travel."),
    ]
    turns = split_turns(transcript, decisions)
    assert [u for u, _ in turns] == [
        "Find events in Austin",
        "the first one",
        "what's the weather on mars",
    ]
    assert [(t.end, t.text) for _, t in turns] == [
        ("asked", "Which one?"),
        ("answered", "Booked."),
        ("refused", "I can only help with travel."),
    ]
    # Text said while calling a tool belongs to that step, not the turn's ending.
    assert turns[0][1].calls == [CallRef(tool="find_events", args={"city": "Austin"})]


def test_a_turn_without_a_reply_stopped_and_says_why_and_unknown_replies_are_replies() -> None:
    transcript: list[Message] = [
        UserMessage(text="hi"),
        NoticeMessage(text="The model could not answer: 401.", level="error"),
        UserMessage(text="hello?"),
        AssistantMessage(text="Hello!"),
    ]
    turns = split_turns(transcript, decisions=[])
    assert [(t.end, t.text) for _, t in turns] == [
        ("stopped", "The model could not answer: 401."),
        ("replied", "Hello!"),
    ]


def test_a_decision_that_said_nothing_does_not_shift_the_later_endings() -> None:
    # A finish a reviewer rejected is a decision without a message in the transcript.
    transcript = [UserMessage(text="plan it"), AssistantMessage(text="final plan")]
    decisions = [Finish(answer="draft plan"), Finish(answer="final plan")]
    [(_, turn)] = split_turns(transcript, decisions)
    assert (turn.end, turn.text) == ("answered", "final plan")


def test_call_differences_pair_identical_calls_then_same_tools_then_the_rest() -> None:
    add = CallRef(tool="add", args={"a": 1, "b": 2})
    add_other = CallRef(tool="add", args={"b": 5, "a": 1})
    mul = CallRef(tool="multiply", args={"a": 1, "b": 2})
    assert diff_calls([add], [CallRef(tool="add", args={"b": 2, "a": 1})]) == ([], [], [])
    added, removed, changed = diff_calls([add, mul], [add_other])
    assert added == [] and removed == [mul]
    assert [(c.tool, c.recorded_args, c.candidate_args) for c in changed] == [
        ("add", {"a": 1, "b": 2}, {"b": 5, "a": 1})
    ]
    assert diff_calls([add], [mul]) == ([mul], [add], [])


def test_a_turn_differs_by_calls_their_order_or_the_kind_of_ending_but_not_by_wording() -> None:
    a, b = CallRef(tool="a", args={}), CallRef(tool="b", args={})
    recorded = TurnDecisions(calls=[a, b], end="asked", text="Which one?")
    reworded = compare_turn(1, "hi", recorded, recorded.model_copy(update={"text": "Pick one?"}))
    assert not reworded.differs and reworded.text_changed
    swapped = compare_turn(1, "hi", recorded, recorded.model_copy(update={"calls": [b, a]}))
    assert swapped.differs and swapped.reasons == ["the same tool calls in another order"]
    answered = compare_turn(1, "hi", recorded, recorded.model_copy(update={"end": "answered"}))
    assert answered.reasons == ["answered where the recording asked"]
    missing = compare_turn(1, "hi", recorded, None)
    assert missing.differs and missing.removed == [a, b]


def test_a_candidate_that_ended_early_diverges_on_every_turn_it_missed() -> None:
    recording = [
        *tool_turn("1", "add", {"a": 1}, "= 2"),
        *tool_turn("2", "add", {"a": 2}, "= 3"),
    ]
    side = Side(
        transcript=recording,
        decisions=[AskUser(text="= 2"), AskUser(text="= 3")],
        reached=False,
        answer=None,
        usage=Usage(input_tokens=10),
        model="m",
        model_s=1.0,
    )
    short = replace(side, transcript=recording[:5], usage=Usage(input_tokens=5))
    report = compare_case(
        index=0,
        case_id="conv-1",
        conversation_id="eval~case1",
        goal="g",
        recorded=side,
        candidate=short,
        side_effects=0,
        elapsed_s=0.5,
    )
    assert report.diverging_turns == [2] and report.calls_removed == 1
    assert report.turns[1].candidate is None
    assert (report.recorded_usage.input_tokens, report.candidate_usage.input_tokens) == (10, 5)


def test_not_executed_counts_what_the_replay_refused_to_run() -> None:
    script = EvalScript(
        messages=[], recorded=[RecordedCall(tool="add", args_hash="x", ok=True, content_ref="r")]
    )
    outcome = replayed(script, ToolCall(call_id="c", tool="add", args={"a": 1}))
    assert not outcome.ok and outcome.error is not None
    assert outcome.error.startswith(NOT_EXECUTED_PREFIX)
    transcript: list[Message] = [
        ToolResultMessage(call_id="c", tool="add", ok=False, error=outcome.error),
        ToolResultMessage(call_id="d", tool="add", ok=False, error="invalid arguments: a"),
    ]
    assert not_executed(transcript) == 1


def test_totals_add_up_the_cases() -> None:
    one = CaseReport(
        index=0,
        case_id="a",
        conversation_id="x~case1",
        diverging_turns=[2, 3],
        calls_added=1,
        candidate_reached=True,
        recorded_usage=Usage(input_tokens=10, cost_usd=0.5),
        candidate_usage=Usage(input_tokens=4, cost_usd=None, cost_unknown_requests=1),
        candidate_model_s=0.25,
    )
    two = CaseReport(index=1, case_id="b", conversation_id="x~case2", error="broken")
    totals = EvalTotals.of([one, two])
    assert (totals.cases, totals.errors, totals.diverged_cases, totals.decisions_differ) == (
        2,
        1,
        2,
        2,
    )
    assert totals.calls_added == 1 and totals.candidate_reached == 1
    assert totals.recorded_usage.input_tokens == 10
    assert totals.candidate_usage.cost_unknown_requests == 1
    assert totals.candidate_model_s == 0.25
