"""The offline model on small hand-made goals: arguments from words, results and
replies; questions in words; picks; failures explained; its judgement of topic.

Conversations with the bundled goals and their real tools are in
`test_offline_conversations.py`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import onward.models
from onward.agent.decisions import AskUser, CallTools, Decision, Finish, Refuse
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
        {"concert_id": "c-7", "name": "Fado night", "date": "2025-03-14", "price_usd": 40},
        {"concert_id": "c-8", "name": "Jazz", "date": "2025-03-20", "price_usd": 25},
    ]
}


def call(decision: Decision) -> tuple[str, dict[str, Any]]:
    assert isinstance(decision, CallTools), decision
    assert len(decision.calls) == 1
    return decision.calls[0].tool, decision.calls[0].args


def text_of(decision: Decision) -> str:
    assert isinstance(decision, AskUser | Finish | Refuse), decision
    return decision.answer if isinstance(decision, Finish) else decision.text


def ran(call_id: str, tool: str, args: dict[str, Any], result: Any) -> list[Message]:
    return [
        ToolCallMessage(call_id=call_id, tool=tool, args=args),
        ToolResultMessage(call_id=call_id, tool=tool, ok=True, content=result),
    ]


def reply(goal: GoalSpec, messages: list[Message]) -> list[Message]:
    """The transcript with the agent's reply appended (it must be one in words)."""
    return [*messages, AssistantMessage(text=text_of(plan_next(goal, messages)))]


def assert_in_words(text: str, goal: GoalSpec) -> None:
    """No backticked identifier and no parameter or tool name as such."""
    assert "`" not in text, text
    names = {t.name for t in goal.tools} | {
        p for t in goal.tools for p in t.parameters.get("properties", {}) if "_" in p
    }
    assert not [n for n in names if re.search(rf"\b{re.escape(n)}\b", text)], text


def test_offline_model_satisfies_the_protocol() -> None:
    model = OfflineModel()
    assert isinstance(model, Model)
    assert (model.name, model.offline) == ("offline", True)


def test_greets_then_asks_for_what_is_missing_in_words(concert_goal: GoalSpec) -> None:
    greeted = plan_next(concert_goal, [UserMessage(text="hello")])
    assert greeted == AskUser(text=concert_goal.starter_prompt)
    decision = plan_next(concert_goal, [UserMessage(text="Any concerts coming up?")])
    lines = text_of(decision).splitlines()
    assert lines == ["Which city to look in? For example: Lisbon, Paris, York or New York.",
                     "Which month? (March, April or May)"]  # fmt: skip
    assert "genre" not in text_of(decision)  # optional with a default: left out
    assert_in_words(text_of(decision), concert_goal)


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
    messages = reply(concert_goal, [UserMessage(text="Concerts please")])
    messages.append(UserMessage(text="Lisbon in May"))
    assert call(plan_next(concert_goal, messages))[1] == {"city": "Lisbon", "month": "May"}
    # One question, one answer: the reply is the value, lead-ins and all.
    asked = reply(concert_goal, [UserMessage(text="Concerts in May")])
    asked.append(UserMessage(text="I'm sorry. It's Lisbon"))
    assert call(plan_next(concert_goal, asked))[1] == {"city": "Lisbon", "month": "May"}


def test_picks_by_a_value_the_user_gave_then_asks_in_words(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="2 seats for a concert in Lisbon in March, on 2025-03-14"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, CONCERTS),
    ]
    tool, args = call(plan_next(concert_goal, messages))
    assert tool == "reserve_seats"
    # The date the user gave picks the concert; "2 seats" gives the seats.
    assert args == {"concert_id": "c-7", "seats": 2, "date": "2025-03-14"}

    messages += ran("offline-2", "reserve_seats", args, {"reservation_id": "r-1", "amount_usd": 80})
    question = text_of(plan_next(concert_goal, messages))
    assert question.endswith("What email address should I send the invoice to?")
    assert "Reserve seats for a concert: amount $80.00, reservation id r-1." in question
    assert_in_words(question, concert_goal)

    messages += [AssistantMessage(text=question), UserMessage(text="It is ana@example.com.")]
    assert call(plan_next(concert_goal, messages)) == (
        "create_invoice",
        {"customer_email": "ana@example.com", "amount_usd": 80},
    )


def test_a_list_to_pick_from_is_shown_with_a_proposal(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="Concerts in Lisbon in March for 3 of us"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, CONCERTS),
    ]
    proposal = text_of(plan_next(concert_goal, messages))
    assert "I found 2 events in Lisbon in March:" in proposal
    assert "1. **Fado night** on Friday, March 14, 2025 (2025-03-14) — $40.00" in proposal
    assert "The cheapest is **Jazz**" in proposal and "Shall I reserve the seats" in proposal
    assert_in_words(proposal, concert_goal)
    for answer, concert in (("Yes", "c-8"), ("the first one", "c-7"), ("Fado night", "c-7")):
        picked = [*messages, AssistantMessage(text=proposal), UserMessage(text=answer)]
        assert call(plan_next(concert_goal, picked))[1]["concert_id"] == concert, answer
    declined = [*messages, AssistantMessage(text=proposal), UserMessage(text="no")]
    assert "Which event would you like instead?" in text_of(plan_next(concert_goal, declined))


def test_numbers_respect_the_schema_bounds(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="Lisbon in March, for 40 people, no wait 3, the cheapest"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, CONCERTS),
    ]
    assert call(plan_next(concert_goal, messages))[1]["seats"] == 3


def test_finishes_with_a_readable_summary(concert_goal: GoalSpec) -> None:
    invoice = {"invoice_id": "in_42", "pay_url": "https://pay.example/in_42", "status": "open"}
    messages: list[Message] = [
        UserMessage(text="Lisbon in March, the cheapest"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, CONCERTS),
        *ran("offline-2", "reserve_seats", {"concert_id": "c-8"}, {"reservation_id": "r-1"}),
        *ran("offline-3", "create_invoice", {"customer_email": "a@b.c"}, invoice),
    ]
    answer = text_of(plan_next(concert_goal, messages))
    assert answer.startswith("All done. Here is what I did:\n- Event: **Jazz** on ")
    assert "- Create an invoice for the reserved seats: invoice id in_42, status open." in answer
    assert answer.endswith("Link: https://pay.example/in_42")
    assert "void" not in answer  # compensations are not part of the plan


def test_a_failed_call_is_explained_and_the_agent_carries_on(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="Concerts in Lisbon in March"),
        ToolCallMessage(
            call_id="offline-1", tool="find_concerts", args={"city": "Lisbon", "month": "March"}
        ),
        ToolResultMessage(
            call_id="offline-1",
            tool="find_concerts",
            ok=False,
            error="invalid arguments: no concerts known for 'Lisbon'",
        ),
    ]
    decision = plan_next(concert_goal, messages)
    assert decision == AskUser(
        text="I couldn't find concerts in a city during a month: no concerts known for "
        "'Lisbon'. Which city to look in? For example: Lisbon, Paris, York or New York."
    )
    # The value the tool refused is not tried again; the user's next answer is.
    again = [*messages, AssistantMessage(text=text_of(decision)), UserMessage(text="hmm")]
    assert isinstance(plan_next(concert_goal, again), AskUser)
    fixed = [*messages, AssistantMessage(text=text_of(decision)), UserMessage(text="Paris")]
    assert call(plan_next(concert_goal, fixed)) == (
        "find_concerts",
        {"city": "Paris", "month": "March"},
    )
    # A failure that names no argument: try again when the user says so.
    error = [*messages[:2], messages[2].model_copy(update={"error": "TimeoutError: slow"})]
    asked = plan_next(concert_goal, error)
    assert text_of(asked).endswith("TimeoutError: slow. Shall I try again?")
    retried = [*error, AssistantMessage(text=text_of(asked)), UserMessage(text="yes please")]
    assert call(plan_next(concert_goal, retried))[0] == "find_concerts"


def test_a_saga_undo_is_reported_and_no_answer_is_invented(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="Lisbon in March"),
        ToolCallMessage(call_id="offline-3", tool="create_invoice", args={}),
        ToolResultMessage(call_id="offline-3", tool="create_invoice", ok=False, error="declined"),
        ToolResultMessage(call_id="undo-offline-2", tool="void_invoice", ok=True),
    ]
    decision = plan_next(concert_goal, messages)
    assert isinstance(decision, AskUser)
    assert decision.text.startswith(
        "I couldn't create an invoice for the reserved seats: declined."
    )
    assert "So I undid the earlier steps: void an invoice." in decision.text


def test_follow_ups_name_only_tools_of_the_goal(concert_goal: GoalSpec) -> None:
    tools = [
        t.model_copy(update={"follow_ups": ["delete_everything"]}) if i == 0 else t
        for i, t in enumerate(concert_goal.tools)
    ]
    goal = concert_goal.model_copy(update={"tools": tools})
    messages: list[Message] = [
        UserMessage(text="Lisbon in March"),
        *ran("offline-1", "find_concerts", {"city": "Lisbon", "month": "March"}, CONCERTS),
    ]
    decision = plan_next(goal, messages)
    assert "delete_everything" not in decision.model_dump_json()
    assert isinstance(decision, Finish)  # the only follow-up is unknown: the chain ends


def test_call_ids_are_deterministic_and_fresh(concert_goal: GoalSpec) -> None:
    messages: list[Message] = [
        UserMessage(text="Lisbon in March, 2 seats, the first one"),
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
        ("hmm, not sure", True),
    ],
)
def test_guardrail_keeps_to_the_goal(text: str, allowed: bool) -> None:
    verdict = check_topic(TRAVEL, [], text)
    assert verdict.allowed is allowed
    if not allowed:
        assert verdict.reply is not None
        assert "find an event in a city, a flight to it, and invoice the trip" in verdict.reply
        # Nothing is pending, so the redirect asks nothing: the next message is new.
        assert "?" not in verdict.reply


async def test_a_question_does_not_let_anything_through() -> None:
    """A reply is on topic because it answers, not because something was asked."""
    asked: list[Message] = [AssistantMessage(text="What is your favourite food?")]
    request = GuardrailRequest(
        conversation_id="c-1", goal=TRAVEL, messages=asked, text="double cheeseburgers"
    )
    response = await OfflineModel().check_guardrail(request)
    assert response.verdict.allowed is False
    assert response.usage.cost_usd == 0.0
    # The same judgement inside the decision, when the request allows a refusal.
    messages: list[Message] = [*asked, UserMessage(text="double cheeseburgers")]
    refused = plan_next(TRAVEL, messages, judge=True)
    assert isinstance(refused, Refuse)
    assert refused == Refuse(text=response.verdict.reply or "")
    # Without `check_topic` no refusal is allowed: the same words, as a reply.
    assert plan_next(TRAVEL, messages) == AskUser(text=refused.text)


async def test_free_text_parameter_takes_the_users_words() -> None:
    from onward.goals.catalog import GoalCatalog

    request = ModelRequest(
        conversation_id="c",
        goal=GoalCatalog.discover().spec("research"),
        messages=[UserMessage(text="Research how workflows stay durable")],
    )
    response = await OfflineModel().decide(request)
    assert isinstance(response.decision, CallTools)
    call = response.decision.calls[0]
    assert call.tool == "search_documents"
    assert call.args == {"query": "Research how workflows stay durable"}


def test_no_goal_or_tool_is_named_in_the_offline_models_code() -> None:
    """Generic, schema- and result-driven: no branch for a bundled goal."""
    from onward.goals.catalog import GoalCatalog

    goals = GoalCatalog.discover().goals
    bundled = [
        g
        for g in goals.values()
        if any(t.function.__module__.startswith("onward.examples") for t in g.tools)
    ]
    assert {"travel", "purchase", "support", "research"} <= {g.name for g in bundled}
    names = {n for g in bundled for n in (g.name, *(t.name for t in g.tools))}
    package = Path(onward.models.__file__).parent
    for path in sorted(package.glob("*offline*.py")):
        code = path.read_text(encoding="utf-8")
        quoted = {n for n in names if re.search(rf"[\"']{re.escape(n)}[\"']", code)}
        assert not quoted, f"{path.name} names {sorted(quoted)}"
