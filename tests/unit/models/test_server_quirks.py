"""OpenAI-compatible servers as they are: refused `tool_choice`s, broken streamed tool
calls, tool calls written as text, and one prompt prefix for every call."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_ai.messages import ModelRequest as PaiRequest
from pydantic_ai.messages import SystemPromptPart, UserPromptPart

from onward.agent.decisions import AskUser, CallTools, Finish, Refuse, Review
from onward.agent.messages import (
    AssistantMessage,
    Message,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.agent.specs import GoalSpec
from onward.config import Settings
from onward.exceptions import MalformedModelOutput, ModelPermanentError
from onward.models._pai_messages import to_pai_messages
from onward.models.base import ModelRequest
from onward.models.providers import ProviderModel
from onward.testing import FakeFailure, FakeOpenAIServer, FakeReply, FakeToolCall
from onward.testing.fake_openai import FakeResponse, Json

# What llama-cpp-python 0.3.36's server answers to `tool_choice: "required"`.
REFUSED = FakeFailure(
    500,
    body={
        "error": {
            "message": "Invalid tool_choice: 'required' is not supported",
            "type": "internal_server_error",
        }
    },
)


def model_for(srv: FakeOpenAIServer, **extra: Any) -> ProviderModel:
    settings = Settings(
        _env_file=None,  # pyright: ignore[reportCallIssue]
        model="openai:local-qwen",
        openai_base_url=srv.base_url,
        **extra,
    )
    return ProviderModel(settings.model, settings)


def request(goal: GoalSpec, *messages: Message, **extra: Any) -> ModelRequest:
    chat = list(messages) or [UserMessage(text="add 1 and 2")]
    return ModelRequest(conversation_id="c-1", goal=goal, messages=chat, **extra)


def review_request(goal: GoalSpec) -> ModelRequest:
    chat: list[Message] = [UserMessage(text="add 1 and 2"), AssistantMessage(text="It is 3.")]
    return request(goal, *chat, review=True)


class ToolChoiceServer:
    """Refuses `tool_choice` values in `refused` as llama.cpp does; answers the rest."""

    def __init__(self, *refused: object, answer: FakeResponse) -> None:
        self.refused = refused
        self.answer = answer
        self.choices: list[object] = []

    def __call__(self, body: Json) -> FakeResponse:
        choice = body.get("tool_choice")
        self.choices.append(choice)
        return REFUSED if choice in self.refused else self.answer


APPROVE = FakeReply(tool_calls=[FakeToolCall("review", {"approved": True})])
NAMED = {"type": "function", "function": {"name": "review"}}


async def test_refused_required_falls_back_to_the_named_tool_in_one_request(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    server = ToolChoiceServer("required", answer=APPROVE)
    fake_openai.responder = server
    model = model_for(fake_openai)
    response = await model.decide(review_request(adder_goal))
    assert response.decision == Review(approved=True)
    assert server.choices == ["required", NAMED]
    # Remembered for this server and model: the next call asks by name at once.
    await model_for(fake_openai).decide(review_request(adder_goal))
    assert server.choices == ["required", NAMED, NAMED]


async def test_refused_named_tool_falls_back_to_auto_and_checks_the_answer(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    server = ToolChoiceServer("required", NAMED, answer=APPROVE)
    fake_openai.responder = server
    model = model_for(fake_openai)
    assert (await model.decide(review_request(adder_goal))).decision == Review(approved=True)
    assert server.choices == ["required", NAMED, "auto"]
    # With `auto` the model may answer in words: that is checked, and repaired upstream.
    server.answer = FakeReply(text="Looks fine to me.")
    with pytest.raises(MalformedModelOutput, match="call `review`"):
        await model.decide(review_request(adder_goal))
    assert server.choices == ["required", NAMED, "auto", "auto"]


async def test_a_refused_tool_choice_is_permanent_never_transient(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.default = REFUSED
    with pytest.raises(ModelPermanentError, match="tool_choice"):
        await model_for(fake_openai).decide(request(adder_goal))
    assert fake_openai.total_requests == 1
    # Every fallback refused too: each is tried once, then it is reported.
    with pytest.raises(ModelPermanentError, match="tool_choice"):
        await model_for(fake_openai).decide(review_request(adder_goal))
    assert fake_openai.total_requests == 1 + 3


async def test_a_broken_streamed_tool_call_is_asked_again_without_streaming(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(
        FakeReply(tool_calls=[FakeToolCall("add", '{"a": 1, "b": 2}{"a": 1, "b": 2}')]),
        FakeReply(tool_calls=[FakeToolCall("add", {"a": 1, "b": 2}, id="c-ok")]),
        FakeReply(text="Which numbers?"),
    )
    model = model_for(fake_openai)
    response = await model.decide(request(adder_goal))
    assert isinstance(response.decision, CallTools)
    assert response.decision.calls[0].args == {"a": 1, "b": 2}
    first, second = fake_openai.requests
    assert first["stream"] is True and not second.get("stream")
    # Remembered: this server is not streamed to again.
    assert (await model.decide(request(adder_goal))).decision == AskUser(text="Which numbers?")
    assert not fake_openai.requests[2].get("stream")


async def test_a_stream_that_ends_on_tool_calls_without_any_is_asked_again(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(
        FakeReply(text=None, finish_reason="tool_calls"),
        FakeReply(tool_calls=[FakeToolCall("finish", {"answer": "It is 3."})]),
    )
    response = await model_for(fake_openai).decide(request(adder_goal))
    assert response.decision == Finish(answer="It is 3.")
    assert [bool(r.get("stream")) for r in fake_openai.requests] == [True, False]


@pytest.mark.parametrize(("setting", "streamed"), [("off", False), ("on", True)])
async def test_streaming_setting(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec, setting: str, streamed: bool
) -> None:
    fake_openai.enqueue(FakeReply(tool_calls=[FakeToolCall("add", '{"a": 1,')]))
    with pytest.raises(MalformedModelOutput, match="not valid JSON"):
        await model_for(fake_openai, model_stream=setting).decide(request(adder_goal))
    # `on` keeps streaming (no second request); `off` never streams.
    assert fake_openai.total_requests == 1
    assert bool(fake_openai.requests[0].get("stream")) is streamed


@pytest.mark.parametrize("stream", ["auto", "off"])
async def test_a_tool_call_written_as_text_is_a_call_and_never_streamed(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec, stream: str
) -> None:
    text = '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
    fake_openai.enqueue(FakeReply(text=text, chunk_chars=3))
    deltas: list[str] = []

    async def on_delta(piece: str) -> None:
        deltas.append(piece)

    model = model_for(fake_openai, model_stream=stream)
    response = await model.decide(request(adder_goal), on_delta)
    assert isinstance(response.decision, CallTools)
    [call] = response.decision.calls
    assert (call.tool, call.args) == ("add", {"a": 1, "b": 2})
    assert deltas == []
    # A retry of the same call gets the same id (the idempotency key depends on it).
    fake_openai.enqueue(FakeReply(text=text))
    again = await model.decide(request(adder_goal))
    assert isinstance(again.decision, CallTools) and again.decision.calls[0].call_id == call.call_id


async def test_plain_text_is_still_streamed(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(text="Which two numbers should I add?", chunk_chars=4))
    deltas: list[str] = []

    async def on_delta(piece: str) -> None:
        deltas.append(piece)

    response = await model_for(fake_openai).decide(request(adder_goal), on_delta)
    assert response.decision == AskUser(text="Which two numbers should I add?")
    assert "".join(deltas) == "Which two numbers should I add?" and len(deltas) > 2


async def test_text_calls_to_unknown_tools_are_malformed_with_a_hint(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(
        FakeReply(text='functions.multiply:{"a": 2, "b": 3}'),
        FakeReply(text='functions.add:{"a": 2, "b": '),
    )
    model = model_for(fake_openai)
    with pytest.raises(MalformedModelOutput, match=r"no tool named `multiply`.*`add`"):
        await model.decide(request(adder_goal))
    with pytest.raises(MalformedModelOutput, match="could not be read"):
        await model.decide(request(adder_goal))


async def test_refuse_is_a_refusal_only_when_the_topic_is_checked(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    refusal = FakeReply(tool_calls=[FakeToolCall("refuse", {"text": "I only add numbers."})])
    fake_openai.enqueue(refusal, refusal, FakeReply(text='functions.refuse:{"text": "No."}'))
    model = model_for(fake_openai)
    checked = await model.decide(request(adder_goal, check_topic=True))
    assert checked.decision == Refuse(text="I only add numbers.")
    later = await model.decide(request(adder_goal))
    assert later.decision == AskUser(text="I only add numbers.")
    as_text = await model.decide(request(adder_goal, check_topic=True))
    assert as_text.decision == Refuse(text="No.")


async def test_every_call_of_a_conversation_shares_one_prompt_prefix(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.default = FakeReply(text="ok", prompt_tokens=900, cached_tokens=850)
    model = model_for(fake_openai)
    first = await model.decide(request(adder_goal, check_topic=True))
    chat: list[Message] = [UserMessage(text="add 1 and 2"), AssistantMessage(text="ok")]
    await model.decide(request(adder_goal, *chat, UserMessage(text="and 3?"), check_topic=True))
    await model.decide(request(adder_goal, *chat, repair_hint="`a` must be an integer"))
    systems = {r["messages"][0]["content"] for r in fake_openai.requests}
    tools = {str(r["tools"]) for r in fake_openai.requests}
    assert len(systems) == 1 and len(tools) == 1
    # The conversation so far is a prefix of the next request, too.
    second, third = fake_openai.requests[1]["messages"], fake_openai.requests[2]["messages"]
    assert third[: len(chat) + 1] == second[: len(chat) + 1]
    assert first.usage.cached_tokens == 850


async def test_tool_descriptions_name_follow_ups_and_finish_keeps_the_chat_open(
    fake_openai: FakeOpenAIServer, concert_goal: GoalSpec
) -> None:
    tools = [
        t.model_copy(update={"follow_ups": ["reserve_seats"]}) if t.name == "find_concerts" else t
        for t in concert_goal.tools
    ]
    goal = concert_goal.model_copy(update={"tools": tools})
    fake_openai.enqueue(FakeReply(text="ok"), FakeReply(text="ok"))
    model = model_for(fake_openai)
    await model.decide(request(goal))
    await model.decide(request(goal.model_copy(update={"end_on_finish": True})))
    open_chat, ending = (
        {t["function"]["name"]: t["function"]["description"] for t in r["tools"]}
        for r in fake_openai.requests
    )
    assert "Usually followed by `reserve_seats`" in open_chat["find_concerts"]
    assert "ends the conversation" not in open_chat["finish"]
    assert "ends the conversation" not in fake_openai.requests[0]["messages"][0]["content"]
    assert "ends the conversation" in ending["finish"]


@pytest.mark.parametrize("review", [False, True])
def test_a_repair_hint_is_a_system_note_never_a_user_message(review: bool) -> None:
    chat: list[Message] = [UserMessage(text="add 1 and 2"), AssistantMessage(text="Sure.")]
    out = to_pai_messages(chat, "the system prompt", "`a` must be an integer", review=review)
    parts = [p for m in out if isinstance(m, PaiRequest) for p in m.parts]
    users = [p.content for p in parts if isinstance(p, UserPromptPart)]
    notes = [p.content for p in parts if isinstance(p, SystemPromptPart)]
    assert users == ["add 1 and 2"]
    assert len(notes) == 1 and "`a` must be an integer" in notes[0]
    last = out[-1]
    assert isinstance(last, PaiRequest) and isinstance(last.parts[-1], SystemPromptPart)


async def test_a_compatible_server_gets_text_with_every_tool_call_turn(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(text="ok"))
    chat: list[Message] = [
        UserMessage(text="add 1 and 2"),
        ToolCallMessage(call_id="c1", tool="add", args={"a": 1, "b": 2}),
        ToolResultMessage(call_id="c1", tool="add", ok=True, content=3),
    ]
    await model_for(fake_openai).decide(request(adder_goal, *chat))
    [turn] = [m for m in fake_openai.requests[0]["messages"] if m["role"] == "assistant"]
    # llama-cpp-python's server rejects `content: null` next to tool calls.
    assert turn["content"] == "" and turn["tool_calls"][0]["id"] == "c1"


async def test_a_server_that_cannot_read_the_request_is_not_retried(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.default = FakeFailure(
        500,
        body={"error": {"message": "7 validation errors: ...", "type": "internal_server_error"}},
    )
    with pytest.raises(ModelPermanentError, match="cannot read the request"):
        await model_for(fake_openai).decide(request(adder_goal))
    assert fake_openai.total_requests == 1


async def test_an_answer_next_to_an_echo_of_a_call_already_run_finishes(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    echo = (
        '{"name": "finish", "answer": "1 + 2 = 3."}\n{"name": "add", "arguments": {"a": 1, "b": 2}}'
    )
    fake_openai.enqueue(FakeReply(text=echo), FakeReply(text=echo))
    ran: list[Message] = [
        UserMessage(text="add 1 and 2"),
        ToolCallMessage(call_id="c1", tool="add", args={"a": 1, "b": 2}),
        ToolResultMessage(call_id="c1", tool="add", ok=True, content=3),
    ]
    model = model_for(fake_openai)
    assert (await model.decide(request(adder_goal, *ran))).decision == Finish(answer="1 + 2 = 3.")
    # Before the call ran, the call is real work and goes first.
    first = await model.decide(request(adder_goal))
    assert isinstance(first.decision, CallTools) and first.decision.calls[0].tool == "add"


async def test_an_answer_in_json_next_to_an_echo_is_the_answer_in_words(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    echo = '{"response": "1 + 2 = 3."}\n{"name": "add", "arguments": {"a": 1, "b": 2}}'
    fake_openai.enqueue(FakeReply(text=echo), FakeReply(text='{"response": "Hello!"}'))
    ran: list[Message] = [
        UserMessage(text="add 1 and 2"),
        ToolCallMessage(call_id="c1", tool="add", args={"a": 1, "b": 2}),
        ToolResultMessage(call_id="c1", tool="add", ok=True, content=3),
    ]
    model = model_for(fake_openai)
    assert (await model.decide(request(adder_goal, *ran))).decision == AskUser(text="1 + 2 = 3.")
    assert (await model.decide(request(adder_goal))).decision == AskUser(text="Hello!")


async def test_held_back_text_that_is_a_plain_answer_is_streamed_as_its_words(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(text='{"response": "Which numbers?"}', chunk_chars=3))
    deltas: list[str] = []

    async def on_delta(piece: str) -> None:
        deltas.append(piece)

    response = await model_for(fake_openai).decide(request(adder_goal), on_delta)
    assert response.decision == AskUser(text="Which numbers?")
    assert deltas == ["Which numbers?"]


async def test_the_output_cap_setting_reaches_the_server(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(text="ok"))
    await model_for(fake_openai, model_max_tokens=200).decide(request(adder_goal))
    body = fake_openai.requests[0]
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 200
