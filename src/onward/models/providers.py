"""`ProviderModel`: real LLM providers behind onward's `Model` interface.

Requests go through pydantic-ai's direct request API (`model_request` and
`model_request_stream`), so each provider's wire format, streaming and error
categories come from pydantic-ai; this module converts onward's transcript to
pydantic-ai messages and a response back to a `Decision`, prices the call with
`genai-prices` and maps provider errors to onward's retry classes.

The goal's tools are offered as native tools plus one extra tool, `finish`, whose call
ends the goal; plain text asks the user.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from typing import Any, cast
from urllib.parse import urlparse

from genai_prices import calc_price
from pydantic_ai.direct import model_request, model_request_stream
from pydantic_ai.exceptions import (
    ContentFilterError,
    ModelAPIError,
    ModelHTTPError,
    ModelQuotaExceededError,
    ModelRateLimitError,
    ModelRequestRejectedError,
    UnexpectedModelBehavior,
)
from pydantic_ai.exceptions import UserError as PaiUserError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequestPart,
    ModelResponsePart,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.messages import ModelRequest as PaiRequest
from pydantic_ai.messages import ModelResponse as PaiResponse
from pydantic_ai.models import Model as PaiModel
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from onward.agent.decisions import (
    AskUser,
    CallTools,
    Decision,
    Finish,
    GuardrailVerdict,
    ToolCall,
)
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from onward.agent.specs import GoalSpec
from onward.config import Settings
from onward.exceptions import (
    MalformedModelOutput,
    ModelError,
    ModelPermanentError,
    ModelRateLimited,
    ModelTransientError,
    UserError,
)
from onward.models.base import (
    DeltaCallback,
    GuardrailRequest,
    GuardrailResponse,
    ModelRequest,
    ModelResponse,
)

PROVIDER_PREFIXES = ("openai", "anthropic", "google-gla", "groq")
"""Model id prefixes `ProviderModel` accepts, as in `openai:gpt-4o-mini`."""

FORBID_ENV = "ONWARD_TESTING_FORBID_REAL_MODELS"
"""Set to `1` (the test suite does) to refuse any non-local provider call."""

# genai-prices' provider ids; an OpenAI-compatible server is priced as OpenAI, so a
# local model name it does not know stays unpriced (None), never free.
_PRICE_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "google-gla": "google"}
_VERDICT_TOOL = "verdict"
_VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "allowed": {"type": "boolean", "description": "True if the message fits the goal."},
        "reply": {
            "type": "string",
            "description": "When not allowed: one short, polite sentence redirecting the user.",
        },
    },
    "required": ["allowed"],
}
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def split_model_id(model: str) -> tuple[str, str]:
    """`"openai:gpt-4o-mini"` -> `("openai", "gpt-4o-mini")`.

    Raises:
        UserError: No `provider:` prefix, an unknown provider or an empty model name.
    """
    prefix, sep, name = model.partition(":")
    if not sep or prefix not in PROVIDER_PREFIXES or not name.strip():
        raise UserError(
            f"model {model!r} is not `<provider>:<model name>` with a provider among "
            f"{', '.join(PROVIDER_PREFIXES)} (e.g. `openai:gpt-4o-mini`)"
        )
    return prefix, name.strip()


def finish_tool_name(goal: GoalSpec) -> str:
    """`finish`, unless the goal has a tool of that name (then `finish_goal`)."""
    taken = {t.name for t in goal.tools}
    return next(n for n in ("finish", "finish_goal", "onward_finish") if n not in taken)


class ProviderModel:
    """A real provider model (`openai:`, `anthropic:`, `google-gla:`, `groq:`).

    Keys and the OpenAI-compatible base URL are read from `settings` here, in the
    worker, and handed to the provider objects explicitly: they never travel in
    workflow inputs. The provider SDK's own retries are off because Temporal owns
    retrying (with the provider's Retry-After).

    Args:
        model: Model id, e.g. `openai:gpt-4o-mini`; with `settings.openai_base_url`
            an `openai:` id reaches any OpenAI-compatible server (Ollama, vLLM,
            llama.cpp, LM Studio).
        settings: Where keys, base URL and the call timeout come from.
        pai_model: Use this pydantic-ai model instead of building one (advanced).
    """

    def __init__(
        self, model: str, settings: Settings, *, pai_model: PaiModel | None = None
    ) -> None:
        self._prefix, self._model_name = split_model_id(model)
        self._id = f"{self._prefix}:{self._model_name}"
        self._pai = pai_model or _build_pai_model(self._prefix, self._model_name, settings)
        self._timeout_s = max(1.0, settings.model_timeout.total_seconds())
        self._settings = ModelSettings(max_retries=0, timeout=self._timeout_s)

    @property
    def name(self) -> str:
        return self._id

    @property
    def offline(self) -> bool:
        return False

    @property
    def base_url(self) -> str | None:
        """Where requests go (None when the provider does not say)."""
        return self._pai.base_url

    async def decide(
        self, request: ModelRequest, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        """One streamed request; text deltas go to `on_delta` as they arrive."""
        self._refuse_in_tests()
        finish = finish_tool_name(request.goal)
        messages = to_pai_messages(
            request.messages, decide_instructions(request.goal, finish), request.repair_hint
        )
        tools = [
            ToolDefinition(
                name=t.name, parameters_json_schema=t.parameters, description=t.description
            )
            for t in request.goal.tools
        ]
        tools.append(_finish_definition(finish))
        params = ModelRequestParameters(function_tools=tools)
        # Inside the model's context the HTTP client is (re)made on the running loop and
        # closed once no call uses it: no connection outlives its event loop.
        async with (
            _provider_errors(),
            self._pai,
            model_request_stream(
                self._pai, messages, model_settings=self._settings, model_request_parameters=params
            ) as stream,
        ):
            async for event in stream:
                text = _text_delta(event)
                if text and on_delta is not None:
                    await on_delta(text)
            response = stream.get()
        usage = self._usage(response)
        decision = _decision(response, finish, usage)
        return ModelResponse(decision=decision, usage=usage, model_name=self.name)

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        """One small non-streamed request whose only output is the `verdict` tool.

        An unusable verdict lets the message through: the guardrail keeps
        conversations on topic, while policy is enforced by the workflow.
        """
        self._refuse_in_tests()
        last_question = next(
            (m.text for m in reversed(request.messages) if isinstance(m, AssistantMessage)), None
        )
        prompt = (
            f"The assistant's last message: {last_question!r}\n" if last_question else ""
        ) + f"The user's new message: {request.text!r}"
        messages = to_pai_messages([], guardrail_instructions(request.goal), None, prompt=prompt)
        verdict_tool = ToolDefinition(
            name=_VERDICT_TOOL,
            parameters_json_schema=_VERDICT_SCHEMA,
            description="Record whether the user's message fits the goal.",
            kind="output",
        )
        params = ModelRequestParameters(
            output_mode="tool", output_tools=[verdict_tool], allow_text_output=False
        )
        small = ModelSettings(max_retries=0, timeout=self._timeout_s, max_tokens=300)
        async with _provider_errors(), self._pai:
            response = await model_request(
                self._pai, messages, model_settings=small, model_request_parameters=params
            )
        return GuardrailResponse(verdict=_verdict(response), usage=self._usage(response))

    # ------------------------------------------------------------------ internals

    def _refuse_in_tests(self) -> None:
        if os.environ.get(FORBID_ENV) != "1":
            return
        url = self.base_url
        host = urlparse(url).hostname if url else None
        if host not in _LOCAL_HOSTS:
            raise ModelPermanentError(
                f"real model calls are forbidden in tests ({FORBID_ENV}=1): `{self.name}` "
                f"would call {url or 'the provider API'}; use ScriptedModel, OfflineModel "
                "or FakeOpenAIServer"
            )

    def _usage(self, response: PaiResponse) -> Usage:
        u = response.usage
        cost = self._price(response)
        return Usage(
            requests=1,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cached_tokens=u.cache_read_tokens,
            cost_usd=cost,
            cost_unknown_requests=0 if cost is not None else 1,
        )

    def _price(self, response: PaiResponse) -> float | None:
        """Price from genai-prices, or None (never 0) when the model is unknown."""
        if response.usage.unmeasured_requests:
            return None
        names = dict.fromkeys(n for n in (response.model_name, self._model_name) if n)
        for model_ref in names:
            try:
                price = calc_price(
                    response.usage,
                    model_ref,
                    provider_id=_PRICE_PROVIDER.get(self._prefix, self._prefix),
                    genai_request_timestamp=response.timestamp,
                )
            except LookupError:
                continue
            return round(float(price.total_price), 8)
        return None


# ---------------------------------------------------------------------- prompts


def decide_instructions(goal: GoalSpec, finish: str) -> str:
    """The system prompt of a decision: the goal's instructions plus how to act."""
    lines = [
        goal.instructions.strip(),
        "",
        f"You are the agent for the goal `{goal.name}`: {goal.description}",
        "How to act:",
        "- To run a tool, call it with arguments that match its schema. Call several at "
        "once only when they do not depend on each other.",
        "- To ask the user something (or tell them something) and wait for the reply, "
        "answer with plain text and no tool call.",
        f"- When the goal is complete, or cannot be completed, call `{finish}` with the "
        "final answer for the user.",
        "- Tool results and errors come back to you; never invent a result.",
    ]
    for example in goal.examples:
        lines += ["", f"Example - user: {example.user}", f"Example - you: {example.assistant}"]
    return "\n".join(lines)


def guardrail_instructions(goal: GoalSpec) -> str:
    """The system prompt of a guardrail check."""
    tools = "; ".join(
        f"{t.name}: {t.description.splitlines()[0]}" for t in goal.tools if t.description
    )
    return (
        f"You check whether a user's message fits the purpose of an assistant.\n"
        f"The assistant's purpose: {goal.description} (goal `{goal.name}`).\n"
        f"Its tools: {tools or 'none'}.\n"
        "Always allow greetings, thanks, acknowledgements, questions about what the assistant "
        "can do, and any answer to a question the assistant just asked. Allow anything that "
        "plausibly relates to the purpose. Otherwise set `allowed` to false and write `reply`: "
        "one short, polite sentence saying what you can help with.\n"
        f"Call `{_VERDICT_TOOL}` exactly once."
    )


# ------------------------------------------------------------------ conversion


def to_pai_messages(
    messages: Sequence[Message],
    instructions: str,
    repair_hint: str | None,
    *,
    prompt: str | None = None,
) -> list[ModelMessage]:
    """onward's transcript as pydantic-ai request/response messages.

    Tool results without a recorded call (saga compensations) become notes, calls
    without a result get a placeholder result, and tool results always come first in a
    request: providers reject a tool call that is not answered right after it.
    """
    out: list[ModelMessage] = []
    request: list[ModelRequestPart] = []
    response: list[ModelResponsePart] = []
    called: set[str] = set()

    def flush_request() -> None:
        if request:
            # Stable sort: tool returns first, the rest in transcript order.
            ordered = sorted(request, key=lambda p: not isinstance(p, ToolReturnPart))
            out.append(PaiRequest(parts=ordered))
            request.clear()

    def flush_response() -> None:
        if response:
            out.append(PaiResponse(parts=list(response)))
            response.clear()

    for m in messages:
        if isinstance(m, AssistantMessage | ToolCallMessage):
            flush_request()
            if isinstance(m, AssistantMessage):
                response.append(TextPart(content=m.text))
            else:
                called.add(m.call_id)
                response.append(ToolCallPart(tool_name=m.tool, args=m.args, tool_call_id=m.call_id))
            continue
        flush_response()
        request.append(_request_part(m, called))
    flush_response()
    if prompt is not None:
        request.append(UserPromptPart(content=prompt))
    if repair_hint:
        request.append(UserPromptPart(content=_repair_note(repair_hint)))
    if not request and (not out or isinstance(out[-1], PaiResponse)):
        request.append(UserPromptPart(content="(Continue.)"))
    flush_request()
    _answer_dangling_calls(out)
    last = out[-1]
    if isinstance(last, PaiRequest):
        last.instructions = instructions
    return out


def _request_part(m: Message, called: set[str]) -> ModelRequestPart:
    if isinstance(m, UserMessage):
        return UserPromptPart(content=m.text)
    if isinstance(m, NoticeMessage):
        return UserPromptPart(content=f"(Notice shown to the user, {m.level}: {m.text})")
    assert isinstance(m, ToolResultMessage)
    if m.call_id not in called:
        outcome = json.dumps(m.content, default=str) if m.ok else f"failed: {m.error}"
        return UserPromptPart(content=f"(Tool `{m.tool}` ran on its own: {outcome})")
    if m.ok:
        content = m.content if m.content is not None else "done (no result)"
        return ToolReturnPart(tool_name=m.tool, content=content, tool_call_id=m.call_id)
    return ToolReturnPart(
        tool_name=m.tool,
        content=m.error or "the tool failed",
        tool_call_id=m.call_id,
        outcome="failed",
    )


def _answer_dangling_calls(out: list[ModelMessage]) -> None:
    for i, message in enumerate(out):
        if not isinstance(message, PaiResponse):
            continue
        nxt = out[i + 1] if i + 1 < len(out) else None
        parts: Sequence[ModelRequestPart] = nxt.parts if isinstance(nxt, PaiRequest) else []
        answered = {p.tool_call_id for p in parts if isinstance(p, ToolReturnPart)}
        missing: list[ModelRequestPart] = [
            ToolReturnPart(
                tool_name=c.tool_name,
                content="no result was recorded for this call",
                tool_call_id=c.tool_call_id,
                outcome="failed",
            )
            for c in message.tool_calls
            if c.tool_call_id not in answered
        ]
        if not missing:
            continue
        if isinstance(nxt, PaiRequest):
            nxt.parts = [*missing, *nxt.parts]
        else:
            out.insert(i + 1, PaiRequest(parts=missing))


def _repair_note(hint: str) -> str:
    return (
        f"Your previous output was invalid: {hint}. Answer again: call one of the tools "
        "with a JSON object of valid arguments, call the finish tool with the answer, or "
        "reply with plain text to ask the user."
    )


# ---------------------------------------------------------------------- building


def _build_pai_model(prefix: str, name: str, settings: Settings) -> PaiModel:
    """The pydantic-ai model for `prefix:name`, with credentials from `settings`."""
    try:
        if prefix == "openai":
            return _openai_model(name, settings)
        if prefix == "anthropic":
            from pydantic_ai.models.anthropic import AnthropicModel
            from pydantic_ai.providers.anthropic import AnthropicProvider

            key = _secret(settings.anthropic_api_key)
            return AnthropicModel(name, provider=AnthropicProvider(api_key=key))
        if prefix == "google-gla":
            from pydantic_ai.models.google import GoogleModel
            from pydantic_ai.providers.google import GoogleProvider

            return GoogleModel(
                name, provider=GoogleProvider(api_key=_secret(settings.google_api_key))
            )
        from pydantic_ai.models.groq import GroqModel
        from pydantic_ai.providers.groq import GroqProvider

        return GroqModel(name, provider=GroqProvider(api_key=_secret(settings.groq_api_key)))
    except PaiUserError as exc:
        raise UserError(f"cannot set up model `{prefix}:{name}`: {exc}") from exc


def _openai_model(name: str, settings: Settings) -> PaiModel:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider
    from pydantic_ai.providers.openai_compatible import OpenAICompatibleProvider

    key = _secret(settings.openai_api_key)
    if settings.openai_base_url:
        # Chat Completions is what Ollama, vLLM, llama.cpp and LM Studio implement; the
        # compatible provider also keeps OpenAI-only request features away from them.
        provider = OpenAICompatibleProvider(
            "openai-compatible", base_url=settings.openai_base_url, api_key=key
        )
        return OpenAIChatModel(name, provider=provider)
    return OpenAIChatModel(name, provider=OpenAIProvider(api_key=key))


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    secret = str(value.get_secret_value())
    return secret or None


def _finish_definition(name: str) -> ToolDefinition:
    return ToolDefinition(
        name=name,
        description="The goal is complete (or cannot be completed): give the final answer "
        "for the user. This ends the conversation.",
        parameters_json_schema={
            "type": "object",
            "properties": {"answer": {"type": "string", "description": "The final answer."}},
            "required": ["answer"],
        },
    )


def _text_delta(event: object) -> str | None:
    if isinstance(event, PartStartEvent):
        content: object = getattr(event.part, "content", None)
        kind: object = getattr(event.part, "part_kind", None)
        return content if kind == "text" and isinstance(content, str) else None
    if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        return event.delta.content_delta
    return None


def _parse_args(call: ToolCallPart, usage: Usage) -> dict[str, Any]:
    args = call.args
    if args is None or (isinstance(args, str) and not args.strip()):
        return {}
    if isinstance(args, dict):
        return args
    try:
        parsed: object = json.loads(args)
    except ValueError as exc:
        raise MalformedModelOutput(
            f"arguments of `{call.tool_name}` are not valid JSON ({exc}): {args[:200]!r}",
            usage=usage,
        ) from exc
    if not isinstance(parsed, dict):
        raise MalformedModelOutput(
            f"arguments of `{call.tool_name}` must be a JSON object, got {args[:200]!r}", usage
        )
    return {str(k): v for k, v in cast(dict[object, Any], parsed).items()}


def _decision(response: PaiResponse, finish: str, usage: Usage) -> Decision:
    if response.finish_reason == "content_filter":
        raise ModelPermanentError("the provider's content filter refused to answer")
    calls = response.tool_calls
    text = (response.text or "").strip()
    work = [c for c in calls if c.tool_name != finish]
    if work:
        # A `finish` next to real tool calls is premature: run the tools, decide again.
        return CallTools(
            calls=[
                ToolCall(call_id=c.tool_call_id, tool=c.tool_name, args=_parse_args(c, usage))
                for c in work
            ],
            text=text or None,
        )
    if calls:
        answer = _parse_args(calls[0], usage).get("answer")
        if not isinstance(answer, str) or not answer.strip():
            raise MalformedModelOutput(f"`{finish}` needs a non-empty `answer` string", usage)
        return Finish(answer=answer.strip())
    if text:
        return AskUser(text=text)
    raise MalformedModelOutput(
        "the reply had neither text nor a tool call: answer in text, call a tool or "
        f"call `{finish}`",
        usage,
    )


def _verdict(response: PaiResponse) -> GuardrailVerdict:
    for call in response.tool_calls:
        if call.tool_name != _VERDICT_TOOL:
            continue
        try:
            args = _parse_args(call, Usage())
        except MalformedModelOutput:
            break
        allowed = args.get("allowed")
        reply = args.get("reply")
        if isinstance(allowed, bool):
            text = reply.strip() if isinstance(reply, str) and reply.strip() else None
            return GuardrailVerdict(allowed=allowed, reply=None if allowed else text)
    return GuardrailVerdict(allowed=True)


def _retry_after(exc: ModelAPIError) -> float | None:
    """Seconds the provider asked to wait: pydantic-ai's parse, else the raw headers."""
    if exc.retry_after is not None:
        return max(0.0, exc.retry_after)
    headers = dict(exc.headers or {}) if isinstance(exc, ModelHTTPError) else {}
    # The SDK's own error (`__cause__`) keeps the HTTP response when pydantic-ai did not.
    raw: object = getattr(getattr(exc.__cause__, "response", None), "headers", None)
    if isinstance(raw, Mapping):
        for key, val in cast(Mapping[object, object], raw).items():
            headers.setdefault(str(key).lower(), str(val))
    if ms := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _from_status(status: int, exc: ModelAPIError) -> ModelError:
    message = f"{status} from provider: {exc}"
    if status == 429 and not isinstance(exc, ModelQuotaExceededError):
        return ModelRateLimited(message, retry_after_s=_retry_after(exc))
    if status in (408, 409, 425) or status >= 500:
        return ModelTransientError(message)
    return ModelPermanentError(message)


@asynccontextmanager
async def _provider_errors() -> AsyncGenerator[None]:
    """Re-raise pydantic-ai and transport errors as onward's retry classes."""
    try:
        yield
    except Exception as exc:
        mapped = _mapped(exc)
        if mapped is exc:
            raise
        raise mapped from exc


def _mapped(exc: Exception) -> Exception:
    """Map a pydantic-ai or transport error to onward's classes; others unchanged."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, ContentFilterError):
        return ModelPermanentError(f"the provider's content filter refused: {exc}")
    if isinstance(exc, ModelHTTPError):
        return _from_status(exc.status_code, exc)
    if isinstance(exc, ModelRateLimitError):
        return ModelRateLimited(str(exc), retry_after_s=_retry_after(exc))
    if isinstance(exc, ModelQuotaExceededError | ModelRequestRejectedError):
        return ModelPermanentError(str(exc))
    if isinstance(exc, ModelAPIError):
        # Connection errors, timeouts, unavailable and server errors: worth retrying.
        return ModelTransientError(str(exc) or type(exc).__name__)
    if isinstance(exc, UnexpectedModelBehavior):
        return MalformedModelOutput(
            f"unusable provider response: {exc.message}",
            usage=Usage(requests=1, cost_usd=None, cost_unknown_requests=1),
        )
    if isinstance(exc, PaiUserError):
        return ModelPermanentError(f"provider request refused: {exc}")
    if isinstance(exc, TimeoutError | ConnectionError):
        return ModelTransientError(str(exc) or type(exc).__name__)
    return exc


__all__ = ["FORBID_ENV", "PROVIDER_PREFIXES", "ProviderModel", "finish_tool_name", "split_model_id"]
