"""The offline model: a deterministic planner over the goal's tool schemas."""

from __future__ import annotations

from typing import Any

import pytest

from onward.agent.decisions import AskUser, CallTools, Decision, Finish
from onward.agent.messages import (
    AssistantMessage,
    Message,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.agent.specs import GoalSpec, ToolSpec
from onward.models.base import GuardrailRequest, Model, ModelRequest
from onward.models.offline import OfflineModel, check_topic, plan_next

CONCERTS = {
    "events": [
        {"concert_id": "c-7", "name": "Fado night", "date": "2025-03-14"},
        {"concert_id": "c-8", "name": "Jazz", "date": "2025-03-20"},
    ]
}


def call(decision: Decision) -> tuple[str, dict[str, Any]]:
    assert isinstance(decision, CallTools), decision
    assert len(decision.calls) == 1
    return decision.calls[0].tool, decision.calls[0].args


def ran(call_id: str, tool: str, args: dict[str, Any], result: Any) -> list[Message]:
    return [
        ToolCallMessage(call_id=call_id, tool=tool, args=args),
        ToolResultMessage(call_id=call_id, tool=tool, ok=True, content=result),
    ]


def test_offline_model_satisfies_the_protocol() -> None:
    model = OfflineModel()
    assert isinstance(model, Model)
    assert (model.name, model.offline) == ("offline", True)


def test_asks_for_each_missing_argument(concert_goal: GoalSpec) -> None:
    decision = plan_next(concert_goal, [UserMessage(text="hello")])
    assert isinstance(decision, AskUser)
    lines = decision.text.splitlines()
    assert len(lines) == 3  # intro + one question per missing parameter
    assert lines[1].startswith("What is the city (`city`)? City to look in.")
    assert "For example: Lisbon, Paris" in lines[1]
    assert lines[2].startswith("What is the month (`month`)?")
    assert "Options: March, April, May." in lines[2]
    assert "genre" not in decision.text  # optional with a default: left out


def test_fills_enum_and_examples_from_the_users_words(concert_goal: GoalSpec) -> None:
    decision = plan_next(concert_goal, [UserMessage(text="Any concerts in lisbon in april?")])
    assert call(decision) == ("find_concerts", {"city": "Lisbon", "month": "April"})


def test_last_matching_message_and_longer_candidates_win(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="Concerts in Paris in March please"),
        UserMessage(text="Actually make it New York"),
    ]
    assert call(plan_next(concert_goal, messages))[1] == {"city": "New York", "month": "March"}


def test_whole_reply_answers_the_question_that_asked_for_it(concert_goal: GoalSpec) -> None:
    first = plan_next(concert_goal, [UserMessage(text="hi")])
    assert isinstance(first, AskUser)
    messages: list[Message] = [
        UserMessage(text="hi"),
        AssistantMessage(text=first.text),
        UserMessage(text="Lisbon in May"),
    ]
    assert call(plan_next(concert_goal, messages))[1] == {"city": "Lisbon", "month": "May"}


def test_fills_from_results_and_numbers_then_asks_for_the_rest(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="2 seats for a concert in Lisbon in March, on 2025-03-14"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, CONCERTS),
    ]
    tool, args = call(plan_next(concert_goal, messages))
    assert tool == "reserve_seats"
    # concert_id and date: the first element of a list of results; seats: "2 seats".
    assert args == {"concert_id": "c-7", "seats": 2, "date": "2025-03-14"}

    messages += ran("offline-2", "reserve_seats", args, {"reservation_id": "r-1", "amount_usd": 80})
    question = plan_next(concert_goal, messages)
    assert isinstance(question, AskUser)
    assert "What is the customer email (`customer_email`)? Who pays." in question.text
    assert "amount" not in question.text  # known from the reservation

    messages += [AssistantMessage(text=question.text), UserMessage(text="It is ana@example.com.")]
    assert call(plan_next(concert_goal, messages)) == (
        "create_invoice",
        {"customer_email": "ana@example.com", "amount_usd": 80},
    )


def test_numbers_respect_the_schema_bounds(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="Lisbon in March, for 40 people, no wait 3"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, CONCERTS),
    ]
    assert call(plan_next(concert_goal, messages))[1]["seats"] == 3


def test_finishes_with_a_readable_summary(concert_goal: GoalSpec) -> None:
    invoice = {"invoice_id": "in_42", "pay_url": "https://pay.example/in_42", "status": "open"}
    messages: list[Message] = [
        UserMessage(text="Lisbon in March"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, CONCERTS),
        *ran("offline-2", "reserve_seats", {"concert_id": "c-7"}, {"reservation_id": "r-1"}),
        *ran("offline-3", "create_invoice", {"customer_email": "a@b.c"}, invoice),
    ]
    decision = plan_next(concert_goal, messages)
    assert isinstance(decision, Finish)
    assert "invoice id: in_42" in decision.answer
    assert "pay url: https://pay.example/in_42" in decision.answer
    assert "events: 2 found" in decision.answer
    assert "void" not in decision.answer  # compensations are not part of the plan


def test_a_failed_call_finishes_with_the_reason(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="Lisbon in March"),
        ToolCallMessage(call_id="offline-1", tool="find_concerts", args={}),
        ToolResultMessage(call_id="offline-1", tool="find_concerts", ok=False, error="offline"),
    ]
    decision = plan_next(concert_goal, messages)
    assert decision == Finish(answer="I could not complete find concerts: offline.")


def test_failure_after_a_compensation_mentions_the_undo(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="Lisbon in March"),
        ToolCallMessage(call_id="offline-3", tool="create_invoice", args={}),
        ToolResultMessage(call_id="offline-3", tool="create_invoice", ok=False, error="declined"),
        ToolResultMessage(call_id="undo-offline-2", tool="void_invoice", ok=True),
    ]
    decision = plan_next(concert_goal, messages)
    assert isinstance(decision, Finish)
    assert decision.answer.startswith("I could not complete create invoice: declined.")
    assert "void_invoice" in decision.answer


@pytest.mark.parametrize(
    ("suggestion", "expected"), [("create_invoice", "create_invoice"), (None, None)]
)
def test_suggested_next_tool_redirects_the_plan(
    concert_goal: GoalSpec, suggestion: str | None, expected: str | None
) -> None:
    result = {**CONCERTS, "amount_usd": 30, "suggested_next_tool": suggestion}
    messages: list[Message] = [
        UserMessage(text="Lisbon in March, bill ana@example.com"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, result),
    ]
    decision = plan_next(concert_goal, messages)
    if expected is None:
        assert isinstance(decision, Finish)
    else:
        assert call(decision)[0] == expected


def test_never_calls_a_tool_outside_the_goal(concert_goal: GoalSpec) -> None:
    result = {"suggested_next_tool": "delete_everything"}
    messages: list[Message] = [
        UserMessage(text="Lisbon in March"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, result),
    ]
    decision = plan_next(concert_goal, messages)
    names = {t.name for t in concert_goal.tools}
    assert isinstance(decision, AskUser | CallTools)
    if isinstance(decision, CallTools):
        assert {c.tool for c in decision.calls} <= names
    assert "delete_everything" not in decision.model_dump_json()


def test_call_ids_are_deterministic_and_fresh(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="Lisbon in March, 2 seats"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, CONCERTS),
    ]
    first, second = plan_next(concert_goal, messages), plan_next(concert_goal, messages)
    assert first == second
    assert isinstance(first, CallTools) and first.calls[0].call_id == "offline-2"


async def test_decide_streams_words_and_is_free(concert_goal: GoalSpec) -> None:
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    request = ModelRequest(
        conversation_id="c-1", goal=concert_goal, messages=[UserMessage(text="hello")]
    )
    response = await OfflineModel().decide(request, on_delta)
    assert isinstance(response.decision, AskUser)
    assert "".join(deltas) == response.decision.text
    assert len(deltas) == len(response.decision.text.split(" "))
    usage = response.usage
    assert usage.cost_usd == 0.0 and usage.cost_unknown_requests == 0
    assert usage.requests == 1 and usage.input_tokens > 0
    assert usage.output_tokens == len(response.decision.text.split())
    assert response.model_name == "offline"


TRAVEL = GoalSpec(
    name="travel",
    description="Find an event in a city, a flight to it, and invoice the trip.",
    instructions="Find events, then flights, then create an invoice.",
    tools=[
        ToolSpec(
            name="find_events",
            description="Find events in a city during a month.",
            parameters={
                "type": "object",
                "properties": {"city": {"type": "string"}, "month": {"type": "string"}},
                "required": ["city", "month"],
            },
        ),
        ToolSpec(
            name="search_flights",
            description="Search flights between two cities on a date.",
            parameters={"type": "object", "properties": {}, "required": []},
        ),
        ToolSpec(
            name="create_invoice",
            description="Create an invoice for the trip.",
            parameters={"type": "object", "properties": {}, "required": []},
        ),
    ],
)


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("I want two double cheeseburgers", False),
        ("Tell me a joke about pirates", False),
        ("I'd like to see events in San Francisco in March", True),
        ("Can you book flights?", True),
        ("hello there", True),
        ("Thanks!", True),
        ("42", True),
    ],
)
def test_guardrail_keeps_to_the_goal(text: str, allowed: bool) -> None:
    verdict = check_topic(TRAVEL, [], text)
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.reply is not None
        assert TRAVEL.description.rstrip(".") in verdict.reply
        # The redirect is no question, so the next message is checked again.
        assert "?" not in verdict.reply


async def test_guardrail_allows_any_answer_to_a_question() -> None:
    request = GuardrailRequest(
        conversation_id="c-1",
        goal=TRAVEL,
        messages=[AssistantMessage(text="What is your favourite food?")],
        text="double cheeseburgers",
    )
    response = await OfflineModel().check_guardrail(request)
    assert response.verdict.allowed is True
    assert response.usage.cost_usd == 0.0


async def test_free_text_parameter_takes_the_users_words() -> None:
    from onward.goals.registry import get_goal, load_goals

    load_goals()
    request = ModelRequest(
        conversation_id="c",
        goal=get_goal("research").spec(),
        messages=[UserMessage(text="Research how workflows stay durable")],
    )
    response = await OfflineModel().decide(request)
    assert isinstance(response.decision, CallTools)
    call = response.decision.calls[0]
    assert call.tool == "search_documents"
    assert call.args == {"query": "Research how workflows stay durable"}
