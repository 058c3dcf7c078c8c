"""`ProviderModel` over real HTTP against the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from typing import Any

import pytest

from onward.agent.decisions import AskUser, CallTools, Finish
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.agent.specs import GoalSpec
from onward.config import Settings
from onward.exceptions import (
    MalformedModelOutput,
    ModelPermanentError,
    ModelRateLimited,
    ModelTransientError,
)
from onward.models.base import GuardrailRequest, ModelRequest
from onward.models.providers import ProviderModel
from onward.testing import FakeFailure, FakeHang, FakeOpenAIServer, FakeReply, FakeToolCall


def model_for(
    srv: FakeOpenAIServer | str, name: str = "gpt-4o-mini", **extra: Any
) -> ProviderModel:
    base_url = srv if isinstance(srv, str) else srv.base_url
    settings = Settings(
        _env_file=None,  # pyright: ignore[reportCallIssue]
        model=f"openai:{name}",
        openai_base_url=base_url,
        **extra,
    )
    return ProviderModel(settings.model, settings)


def ask(goal: GoalSpec, *messages: Message, hint: str | None = None) -> ModelRequest:
    chat = list(messages) or [UserMessage(text="add 1 and 2")]
    return ModelRequest(conversation_id="c-1", goal=goal, messages=chat, repair_hint=hint)


async def test_streamed_tool_call_becomes_call_tools(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(
        FakeReply(
            text="Adding now.",
            tool_calls=[FakeToolCall("add", {"a": 1, "b": 2}, id="call_abc")],
            chunk_chars=3,
        )
    )
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    response = await model_for(fake_openai).decide(ask(adder_goal), on_delta)

    decision = response.decision
    assert isinstance(decision, CallTools)
    assert [(c.call_id, c.tool, c.args) for c in decision.calls] == [
        ("call_abc", "add", {"a": 1, "b": 2})
    ]
    assert decision.text == "Adding now."
    assert "".join(deltas) == "Adding now." and len(deltas) > 1
    assert response.model_name == "openai:gpt-4o-mini"
    body = fake_openai.requests[0]
    assert body["stream"] is True
    assert {t["function"]["name"] for t in body["tools"]} == {"add", "finish", "refuse"}
    assert body["messages"][0]["role"] == "system"
    assert "Add the numbers" in body["messages"][0]["content"]


async def test_plain_text_asks_the_user(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(text="Which numbers should I add?"))
    response = await model_for(fake_openai).decide(ask(adder_goal))
    assert response.decision == AskUser(text="Which numbers should I add?")


async def test_finish_tool_finishes(fake_openai: FakeOpenAIServer, adder_goal: GoalSpec) -> None:
    fake_openai.enqueue(FakeReply(tool_calls=[FakeToolCall("finish", {"answer": "It is 3."})]))
    response = await model_for(fake_openai).decide(ask(adder_goal))
    assert response.decision == Finish(answer="It is 3.")


async def test_invalid_json_arguments_are_malformed_with_usage(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(tool_calls=[FakeToolCall("add", '{"a": 1,')]))
    with pytest.raises(MalformedModelOutput, match="not valid JSON") as caught:
        await model_for(fake_openai, model_stream="off").decide(ask(adder_goal))
    usage = caught.value.usage
    assert usage is not None and getattr(usage, "requests", 0) == 1


async def test_an_answer_that_repeats_the_prompt_is_malformed(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    # What Qwen2.5 0.5B answered on llama.cpp: the first line of its own system prompt.
    echo = f"You are the agent for the goal `{adder_goal.name}`: {adder_goal.description}"
    fake_openai.enqueue(FakeReply(text=echo))
    with pytest.raises(MalformedModelOutput, match="repeats your instructions"):
        await model_for(fake_openai).decide(ask(adder_goal))
    # A short reply that happens to be in the prompt ("Add the numbers") is an answer.
    fake_openai.enqueue(FakeReply(text="Add the numbers."))
    response = await model_for(fake_openai).decide(ask(adder_goal))
    assert response.decision == AskUser(text="Add the numbers.")


async def test_empty_reply_is_malformed(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(text=""))
    with pytest.raises(MalformedModelOutput, match="neither text nor a tool call"):
        await model_for(fake_openai).decide(ask(adder_goal))


async def test_rate_limit_carries_retry_after(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeFailure(429, retry_after=3))
    with pytest.raises(ModelRateLimited) as caught:
        await model_for(fake_openai).decide(ask(adder_goal))
    assert caught.value.retry_after_s == 3
    # The SDK's own retries are off: Temporal owns retrying.
    assert fake_openai.total_requests == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (503, ModelTransientError),
        (500, ModelTransientError),
        (408, ModelTransientError),
        (401, ModelPermanentError),
        (400, ModelPermanentError),
        (404, ModelPermanentError),
        (422, ModelPermanentError),
    ],
)
async def test_http_errors_are_classified(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec, status: int, error: type[Exception]
) -> None:
    fake_openai.enqueue(FakeFailure(status))
    with pytest.raises(error, match=str(status)):
        await model_for(fake_openai).decide(ask(adder_goal))
    assert fake_openai.total_requests == 1


async def test_content_filter_is_permanent(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(text="", finish_reason="content_filter"))
    with pytest.raises(ModelPermanentError, match="content filter"):
        await model_for(fake_openai).decide(ask(adder_goal))


async def test_connection_refused_is_transient(adder_goal: GoalSpec) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    model = model_for(f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ModelTransientError):
        await model.decide(ask(adder_goal))


async def test_hanging_server_times_out_as_transient(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeHang())
    model = model_for(fake_openai, model_timeout=timedelta(seconds=1))
    with pytest.raises(ModelTransientError):
        await model.decide(ask(adder_goal))


async def test_usage_and_cost_of_a_known_model(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(text="Hi", prompt_tokens=1000, completion_tokens=100))
    usage = (await model_for(fake_openai).decide(ask(adder_goal))).usage
    assert (usage.requests, usage.input_tokens, usage.output_tokens) == (1, 1000, 100)
    assert usage.cost_usd is not None and usage.cost_usd > 0
    assert usage.cost_unknown_requests == 0


async def test_unknown_model_has_unknown_cost_not_zero(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(text="Hi"))
    usage = (await model_for(fake_openai, "my-local-llama-q4").decide(ask(adder_goal))).usage
    assert usage.cost_usd is None
    assert usage.cost_unknown_requests == 1
    assert usage.input_tokens == 12


async def test_transcript_reaches_the_provider_in_a_valid_order(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeReply(text="ok"))
    transcript: list[Message] = [
        UserMessage(text="add 1 and 2"),
        AssistantMessage(text="Adding."),
        ToolCallMessage(call_id="c1", tool="add", args={"a": 1, "b": 2}),
        NoticeMessage(text="waiting for approval"),
        ToolResultMessage(call_id="c1", tool="add", ok=False, error="boom"),
        ToolResultMessage(call_id="undo-c0", tool="subtract", ok=True, content={"x": 1}),
        ToolCallMessage(call_id="c2", tool="add", args={"a": 2, "b": 2}),
    ]
    await model_for(fake_openai).decide(ask(adder_goal, *transcript, hint="bad JSON"))
    sent = fake_openai.requests[0]["messages"]
    roles = [m["role"] for m in sent]
    assert roles == [
        "system",
        "user",
        "assistant",
        "tool",
        "user",
        "user",
        "assistant",
        "tool",
        "system",  # the repair hint: a note to the model, never a user message
    ]
    assert sent[2]["content"] == "Adding."
    assert sent[2]["tool_calls"][0]["id"] == "c1"
    assert sent[3]["tool_call_id"] == "c1" and "boom" in sent[3]["content"]
    assert "waiting for approval" in sent[4]["content"]
    assert "subtract" in sent[5]["content"]
    # A call without a recorded result still gets an answer, or providers refuse.
    assert sent[7]["tool_call_id"] == "c2"
    assert "previous output was invalid: bad JSON" in sent[8]["content"]


async def test_guardrail_is_a_decision_with_the_shared_prefix(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(
        FakeReply(tool_calls=[FakeToolCall("refuse", {"text": "I can only add numbers."})]),
        FakeReply(text="Which numbers?"),
    )
    history: list[Message] = [AssistantMessage(text="What should I add?")]
    request = GuardrailRequest(
        conversation_id="c-1", goal=adder_goal, messages=history, text="I want cheeseburgers"
    )
    model = model_for(fake_openai)
    response = await model.check_guardrail(request)
    assert response.verdict.allowed is False
    assert response.verdict.reply == "I can only add numbers."
    assert response.usage.requests == 1
    await model.decide(ask(adder_goal, *history, UserMessage(text="add 1 and 2")))
    guard, decide = fake_openai.requests
    # One prompt prefix for both calls: the same system prompt and the same tools.
    assert guard["messages"][0] == decide["messages"][0]
    assert guard["tools"] == decide["tools"]
    assert guard.get("tool_choice", "auto") == "auto"
    assert guard["messages"][-1] == {"role": "user", "content": "I want cheeseburgers"}


async def test_guardrail_lets_anything_but_a_refusal_through(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(
        FakeReply(tool_calls=[FakeToolCall("add", {"a": 1, "b": 2})]),
        FakeReply(tool_calls=[FakeToolCall("refuse", "{oops")]),
    )
    request = GuardrailRequest(conversation_id="c-1", goal=adder_goal, messages=[], text="hi")
    model = model_for(fake_openai, model_stream="off")
    assert (await model.check_guardrail(request)).verdict.allowed is True
    unusable = await model.check_guardrail(request)
    assert unusable.verdict.allowed is True and unusable.usage.requests == 1
    # A goal without a guardrail is not asked at all.
    quiet = request.model_copy(update={"goal": adder_goal.model_copy(update={"guardrail": False})})
    assert (await model.check_guardrail(quiet)).verdict.allowed is True
    assert fake_openai.total_requests == 2


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("openai:gpt-4o-mini", {"openai_api_key": "sk-test"}),
        ("openai:gpt-4o-mini", {"openai_base_url": "https://api.example.com/v1"}),
        ("anthropic:claude-haiku-4-5", {"anthropic_api_key": "sk-ant-test"}),
        ("groq:llama-3.3-70b-versatile", {"groq_api_key": "gsk-test"}),
    ],
)
async def test_real_providers_are_forbidden_in_tests(
    model: str, extra: dict[str, Any], adder_goal: GoalSpec
) -> None:
    settings = Settings(_env_file=None, model=model, **extra)  # pyright: ignore[reportCallIssue]
    provider = ProviderModel(model, settings)
    with pytest.raises(ModelPermanentError, match="real model calls are forbidden in tests"):
        await provider.decide(ask(adder_goal))
    request = GuardrailRequest(conversation_id="c-1", goal=adder_goal, messages=[], text="hi")
    with pytest.raises(ModelPermanentError, match="forbidden"):
        await provider.check_guardrail(request)


async def test_concurrent_calls_share_the_server(
    fake_openai: FakeOpenAIServer, adder_goal: GoalSpec
) -> None:
    fake_openai.enqueue(FakeHang(), FakeHang())
    model = model_for(fake_openai)
    calls = [asyncio.ensure_future(model.decide(ask(adder_goal))) for _ in range(2)]
    await fake_openai.wait_for_async(lambda s: s.in_flight == 2)
    fake_openai.release_hung()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, ModelTransientError) for r in results)
    await fake_openai.wait_for_async(lambda s: s.in_flight == 0)
    assert fake_openai.max_in_flight == 2 and fake_openai.total_requests == 2
