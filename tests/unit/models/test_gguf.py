"""`GgufModel` without llama-cpp-python: schema, prompt and parsing, with a fake `Llama`.

The real library compiles for a long time and needs weights, so these tests drive the
model through an injected object with `create_chat_completion`, as llama_cpp.Llama has.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from onward.agent.decisions import AskUser, CallTools, Finish, Refuse
from onward.agent.messages import (
    AssistantMessage,
    ToolCallMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from onward.agent.specs import GoalSpec, ToolSpec
from onward.exceptions import MalformedModelOutput
from onward.models.base import GuardrailRequest, ModelRequest
from onward.models.gguf import GgufModel, chat_messages, decision_schema, parse_decision


class FakeLlama:
    """Answers each `create_chat_completion` with the next scripted JSON text."""

    def __init__(self, *outputs: str) -> None:
        self.outputs = list(outputs)
        self.calls: list[dict[str, Any]] = []

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {
            "choices": [{"message": {"role": "assistant", "content": self.outputs.pop(0)}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 9},
        }


class SchemaGrammarModel(GgufModel):
    """Hands the JSON schema itself to the fake instead of compiling a grammar."""

    def _grammar(self, schema: dict[str, Any]) -> Any:
        return schema


def test_schema_only_names_goal_tools_and_hoists_defs(concert_goal: GoalSpec) -> None:
    schema = decision_schema(concert_goal)
    kinds = [v["properties"]["kind"]["const"] for v in schema["oneOf"]]
    assert kinds == ["ask", "call_tools", "finish", "refuse"]
    items = schema["oneOf"][1]["properties"]["calls"]["items"]["oneOf"]
    assert [i["properties"]["tool"]["const"] for i in items] == [t.name for t in concert_goal.tools]
    month_ref = items[0]["properties"]["args"]["properties"]["month"]["$ref"]
    assert month_ref == "#/$defs/find_concerts__Month"
    assert schema["$defs"]["find_concerts__Month"]["enum"] == ["March", "April", "May"]
    assert "$defs" not in items[0]["properties"]["args"]


def test_chat_turns_alternate_and_start_with_the_user(concert_goal: GoalSpec) -> None:
    turns = chat_messages(
        "SYSTEM",
        [
            UserMessage(text="hi"),
            UserMessage(text="Lisbon"),
            ToolCallMessage(call_id="g1", tool="find_concerts", args={"city": "Lisbon"}),
            ToolResultMessage(call_id="g1", tool="find_concerts", ok=False, error="down"),
            AssistantMessage(text="Sorry"),
        ],
    )
    roles = [t["role"] for t in turns]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assert turns[0]["content"].startswith("SYSTEM") and "Lisbon" in turns[0]["content"]
    assert "error: down" in turns[2]["content"]
    assert turns[-1]["content"] == "(Continue.)"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"kind": "ask", "text": "Which city?"}', AskUser(text="Which city?")),
        ('{"kind": "finish", "answer": "Done."}', Finish(answer="Done.")),
    ],
)
def test_parse_text_decisions(raw: str, expected: object, concert_goal: GoalSpec) -> None:
    request = ModelRequest(conversation_id="c", goal=concert_goal, messages=[])
    assert parse_decision(raw, request, Usage()) == expected


def test_parse_tool_calls_gives_fresh_ids(concert_goal: GoalSpec) -> None:
    request = ModelRequest(
        conversation_id="c",
        goal=concert_goal,
        messages=[ToolCallMessage(call_id="gguf-1", tool="find_concerts", args={})],
    )
    args = {"concert_id": "c1", "seats": 2, "date": "2026-03-14"}
    raw = json.dumps({"kind": "call_tools", "calls": [{"tool": "reserve_seats", "args": args}]})
    decision = parse_decision(raw, request, Usage())
    assert isinstance(decision, CallTools)
    assert decision.calls[0].call_id == "gguf-2"


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        "[1, 2]",
        '{"kind": "ask", "text": "  "}',
        '{"kind": "call_tools", "calls": [{"tool": "rm_rf", "args": {}}]}',
        '{"kind": "call_tools", "calls": [{"tool": "reserve_seats", "args": 3}]}',
    ],
)
def test_parse_rejects_bad_output(raw: str, concert_goal: GoalSpec) -> None:
    request = ModelRequest(conversation_id="c", goal=concert_goal, messages=[])
    with pytest.raises(MalformedModelOutput):
        parse_decision(raw, request, Usage(requests=1))


async def test_decide_with_an_injected_llama(concert_goal: GoalSpec) -> None:
    llama = FakeLlama('{"kind": "ask", "text": "Which city and month?"}')
    model = SchemaGrammarModel("/models/gemma.gguf", llama=llama)
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    request = ModelRequest(
        conversation_id="c",
        goal=concert_goal,
        messages=[UserMessage(text="hi")],
        repair_hint="output was not JSON",
    )
    response = await model.decide(request, on_delta)
    assert response.decision == AskUser(text="Which city and month?")
    assert "".join(deltas) == "Which city and month?"
    assert response.model_name == "gguf:gemma.gguf"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (50, 9)
    assert response.usage.cost_usd == 0.0
    sent = llama.calls[0]
    assert sent["grammar"] == decision_schema(concert_goal, for_grammar=True)
    # The repair hint is a system turn for the model, never the user's words.
    last = sent["messages"][-1]
    assert last["role"] == "system"
    assert "previous output was invalid: output was not JSON" in last["content"]
    assert all("invalid" not in m["content"] for m in sent["messages"] if m["role"] == "user")


async def test_guardrail_with_an_injected_llama(concert_goal: GoalSpec) -> None:
    llama = FakeLlama(
        '{"kind": "refuse", "text": "I only do concerts."}',
        "not json",
        '{"kind": "ask", "text": "Which city?"}',
    )
    model = SchemaGrammarModel("/models/gemma.gguf", llama=llama)
    request = GuardrailRequest(conversation_id="c", goal=concert_goal, messages=[], text="burger")
    first = await model.check_guardrail(request)
    assert (first.verdict.allowed, first.verdict.reply) == (False, "I only do concerts.")
    second = await model.check_guardrail(request)
    assert second.verdict.allowed is True
    await model.decide(
        ModelRequest(conversation_id="c", goal=concert_goal, messages=[UserMessage(text="hi")])
    )
    # The topic check and the decision share one prompt prefix (the first turn).
    guard, _, decide = llama.calls
    guard_turn, decide_turn = guard["messages"][0]["content"], decide["messages"][0]["content"]
    instructions = guard_turn.removesuffix("burger")
    assert instructions.endswith("never invent one.\n\n")
    assert decide_turn == instructions + "hi"
    assert guard["grammar"] == decide["grammar"]


# ------------------------------------------------- schemas llama.cpp cannot express

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"  # the travel goal's `customer_email` pattern


def _invoice_goal() -> GoalSpec:
    return GoalSpec(
        name="invoices",
        description="Invoices trips.",
        instructions="Invoice the trip.",
        tools=[
            ToolSpec(
                name="create_invoice",
                description="Create an invoice.",
                parameters={
                    "type": "object",
                    "properties": {
                        "customer_email": {"type": "string", "pattern": EMAIL},
                        "cc": {"type": "string", "format": "email"},
                        "day": {"type": "string", "format": "date"},
                        "amount": {"type": "number", "minimum": 1},
                    },
                    "required": ["customer_email", "amount"],
                    "additionalProperties": False,
                },
            )
        ],
    )


def test_the_grammar_schema_leaves_out_patterns_and_formats_it_has_no_rules_for() -> None:
    goal = _invoice_goal()
    full = json.dumps(decision_schema(goal))
    reduced = json.dumps(decision_schema(goal, for_grammar=True))
    assert '"pattern"' in full and '"format": "email"' in full
    assert '"pattern"' not in reduced and '"format": "email"' not in reduced
    # What llama.cpp's converter does express stays in the grammar.
    assert '"format": "date"' in reduced and '"minimum": 1' in reduced
    assert '"customer_email"' in reduced


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"customer_email": "ada at example", "amount": 10}, "does not match"),
        ({"customer_email": "ada@example.com", "amount": 10, "day": "soon"}, "is not a 'date'"),
        ({"customer_email": "ada@example.com", "amount": 0}, "less than the minimum"),
    ],
)
def test_arguments_are_checked_against_the_full_schema(args: Any, problem: str) -> None:
    goal = _invoice_goal()
    request = ModelRequest(conversation_id="c", goal=goal, messages=[])
    raw = json.dumps({"kind": "call_tools", "calls": [{"tool": "create_invoice", "args": args}]})
    with pytest.raises(MalformedModelOutput, match=problem):
        parse_decision(raw, request, Usage(requests=1))
    good = {"customer_email": "ada@example.com", "amount": 10, "day": "2026-03-14"}
    raw = json.dumps({"kind": "call_tools", "calls": [{"tool": "create_invoice", "args": good}]})
    assert isinstance(parse_decision(raw, request, Usage()), CallTools)


def test_refuse_is_a_refusal_only_when_the_topic_is_checked(concert_goal: GoalSpec) -> None:
    raw = '{"kind": "refuse", "text": "I only do concerts."}'
    checked = ModelRequest(conversation_id="c", goal=concert_goal, messages=[], check_topic=True)
    assert parse_decision(raw, checked, Usage()) == Refuse(text="I only do concerts.")
    later = checked.model_copy(update={"check_topic": False})
    assert parse_decision(raw, later, Usage()) == AskUser(text="I only do concerts.")


def test_threads_default_to_every_core() -> None:
    model = GgufModel("/models/x.gguf", llama=FakeLlama())
    assert model.n_threads == (os.cpu_count() or 1)
    assert GgufModel("/models/x.gguf", n_threads=3, llama=FakeLlama()).n_threads == 3


class TemplateWithoutLateSystem(FakeLlama):
    """Like Gemma's chat template: a system turn after the first raises."""

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        roles = [m["role"] for m in kwargs["messages"]]
        if "system" in roles[1:]:
            raise ValueError("Conversation roles must alternate user/assistant/user/assistant")
        return super().create_chat_completion(**kwargs)


async def test_a_template_without_a_late_system_turn_gets_the_note_in_the_last_turn(
    concert_goal: GoalSpec,
) -> None:
    llama = TemplateWithoutLateSystem('{"kind": "ask", "text": "Which city?"}')
    model = SchemaGrammarModel("/models/gemma.gguf", llama=llama)
    request = ModelRequest(
        conversation_id="c",
        goal=concert_goal,
        messages=[UserMessage(text="hi")],
        repair_hint="`city` is required",
    )
    assert (await model.decide(request)).decision == AskUser(text="Which city?")
    [sent] = llama.calls
    last = sent["messages"][-1]
    assert last["role"] == "user" and last["content"].startswith(sent["messages"][0]["content"])
    assert "Note from the system, not from the user" in last["content"]
