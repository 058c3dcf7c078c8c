"""`ProviderModel`: real LLM providers behind onward's `Model` interface.

Requests go through pydantic-ai's direct request API (`model_request` and
`model_request_stream`), so each provider's wire format, streaming and error
categories come from pydantic-ai. Around it: the transcript is converted to
pydantic-ai messages (`_pai_messages`) and a response back to a `Decision`
(`_decisions`, `_tool_calls`), streamed text is gated on its way to the user
(`_stream_text`), the prompts and extra tools come from `_prompts`, the pydantic-ai
model is built from the settings (`_pai_models`), the call is priced with
`genai-prices` (`_pricing`), and provider errors are mapped to onward's retry classes
(`_errors`).

The goal's tools are offered as native tools plus pseudo-tools whose calls stand for
decisions: `finish` ends the goal; a planner (a goal with agents) also gets `delegate`,
whose arguments are the plan's steps, and a router `handoff`, naming the agent that
takes over. Plain text asks the user. A review request offers only `review`.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from pydantic_ai.direct import model_request, model_request_stream
from pydantic_ai.messages import ModelMessage
from pydantic_ai.messages import ModelResponse as PaiResponse
from pydantic_ai.models import Model as PaiModel
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition

from onward.agent.decisions import AskUser, Finish
from onward.agent.messages import Usage
from onward.config import ModelStream, Settings
from onward.exceptions import MalformedModelOutput, ModelPermanentError, UserError
from onward.models._decisions import answered_calls, call_salt, echoes_instructions, to_decision
from onward.models._errors import provider_errors, rejects_tool_choice
from onward.models._pai_messages import to_pai_messages
from onward.models._pai_models import build_pai_model
from onward.models._pricing import response_usage
from onward.models._prompts import (
    REVIEW_PROMPT,
    ToolNames,
    decide_instructions,
    finish_tool_name,
    guardrail_instructions,
    review_definition,
    review_instructions,
    tool_definitions,
    tool_names,
)
from onward.models._quirks import FALLBACK, broken_stream, quirks_for, tool_choice_override
from onward.models._stream_text import DeltaGate, text_delta
from onward.models.base import (
    DeltaCallback,
    GuardrailRequest,
    GuardrailResponse,
    ModelRequest,
    ModelResponse,
    guardrail_by_decision,
)

PROVIDER_PREFIXES = ("openai", "anthropic", "google-gla", "groq")
"""Model id prefixes `ProviderModel` accepts, as in `openai:gpt-4o-mini`."""

GUARDRAIL_MAX_TOKENS = 300
"""Output cap of the older workflows' separate topic check."""
FORBID_ENV = "ONWARD_TESTING_FORBID_REAL_MODELS"
"""Set to `1` (the test suite does) to refuse any non-local provider call."""

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
        self._pai = pai_model or build_pai_model(self._prefix, self._model_name, settings)
        self._timeout_s = max(1.0, settings.model_timeout.total_seconds())
        self._settings = ModelSettings(max_retries=0, timeout=self._timeout_s)
        if settings.model_max_tokens is not None:
            self._settings["max_tokens"] = settings.model_max_tokens
        self._stream: ModelStream = settings.model_stream
        self._quirks = quirks_for(self._pai.base_url, self._id)
        # An OpenAI-compatible server, not OpenAI's own API.
        self._compatible = self._prefix == "openai" and bool(settings.openai_base_url)

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
        """One request (streamed unless turned off); text deltas go to `on_delta`.

        The system prompt and the tool list depend on the goal only, so every call of
        a conversation shares one prompt prefix. Text that may be a tool call written
        as text is held back from `on_delta` until it is clearly not one.

        A review request is one non-streamed request whose only output is the `review`
        tool: the reviewer's words are not shown to the user, so nothing is streamed.
        """
        self._refuse_in_tests()
        return await self._decide(request, on_delta, self._settings)

    async def _decide(
        self,
        request: ModelRequest,
        on_delta: DeltaCallback | None,
        settings: ModelSettings,
        *,
        stream: bool = True,
    ) -> ModelResponse:
        names = tool_names(request.goal, review=request.review)
        if request.review:
            return await self._review(request, names)
        instructions = decide_instructions(request.goal, names)
        messages = to_pai_messages(
            request.messages,
            instructions,
            request.repair_hint,
            text_with_calls=self._compatible,
        )
        params = ModelRequestParameters(function_tools=tool_definitions(request.goal, names))
        gate = DeltaGate(on_delta)
        response = await self._request(messages, params, gate, settings, stream=stream)
        usage = self._usage(response)
        decision = to_decision(
            response,
            names,
            usage,
            tools=[t.name for t in request.goal.tools],
            check_topic=request.check_topic,
            call_salt=call_salt(request.conversation_id, request.messages),
            answered=answered_calls(request.messages),
        )
        if isinstance(decision, AskUser | Finish):
            said = decision.text if isinstance(decision, AskUser) else decision.answer
            if echoes_instructions(said, instructions):
                # Small local models sometimes answer with a line of their own prompt.
                raise MalformedModelOutput(
                    "the answer repeats your instructions instead of replying to the user",
                    usage,
                )
        if isinstance(decision, AskUser):
            await gate.release(decision.text)
        return ModelResponse(decision=decision, usage=usage, model_name=self.name)

    async def _request(
        self,
        messages: list[ModelMessage],
        params: ModelRequestParameters,
        gate: DeltaGate,
        settings: ModelSettings,
        *,
        stream: bool = True,
    ) -> PaiResponse:
        """A streamed request, or a plain one when streaming is off for this server.

        With `ONWARD_MODEL_STREAM=auto` a stream whose tool calls come back broken is
        asked again without streaming, and this server is not streamed to again.
        """
        if not stream or self._stream == "off" or not self._quirks.stream_tool_calls:
            response = await self._plain(messages, params, settings)
            await gate.feed(response.text or "")
            return response
        # Inside the model's context the HTTP client is (re)made on the running loop and
        # closed once no call uses it: no connection outlives its event loop.
        async with (
            provider_errors(),
            self._pai,
            model_request_stream(
                self._pai, messages, model_settings=settings, model_request_parameters=params
            ) as events,
        ):
            async for event in events:
                if text := text_delta(event):
                    await gate.feed(text)
            response = events.get()
        if self._stream == "auto" and broken_stream(response) is not None:
            self._quirks.stream_tool_calls = False
            gate.reset()
            response = await self._plain(messages, params, settings)
            await gate.feed(response.text or "")
        return response

    async def _plain(
        self,
        messages: list[ModelMessage],
        params: ModelRequestParameters,
        settings: ModelSettings,
    ) -> PaiResponse:
        async with provider_errors(), self._pai:
            return await model_request(
                self._pai, messages, model_settings=settings, model_request_parameters=params
            )

    async def _forced(
        self, messages: list[ModelMessage], tool: ToolDefinition, settings: ModelSettings
    ) -> PaiResponse:
        """A request that must answer with `tool`: `tool_choice` `"required"`, else (for
        a server that refuses that) the tool by name, else `"auto"`; the caller checks
        the answer. Each refusal costs one extra request, once per process and server."""
        params = ModelRequestParameters(
            output_mode="tool", output_tools=[tool], allow_text_output=False
        )
        while True:
            choice = self._quirks.forced_choice
            override = tool_choice_override(choice, tool.name) if self._prefix == "openai" else None
            current = ModelSettings(**settings)
            if override is not None:
                current["extra_body"] = override
            try:
                return await self._plain(messages, params, current)
            except ModelPermanentError as exc:
                fallback = FALLBACK[choice]
                if fallback is None or not rejects_tool_choice(exc.__cause__ or exc):
                    raise
                self._quirks.forced_choice = fallback

    async def _review(self, request: ModelRequest, names: ToolNames) -> ModelResponse:
        messages = to_pai_messages(
            request.messages,
            review_instructions(request.goal),
            request.repair_hint,
            prompt=REVIEW_PROMPT,
            review=True,
            text_with_calls=self._compatible,
        )
        response = await self._forced(messages, review_definition(), self._settings)
        usage = self._usage(response)
        decision = to_decision(response, names, usage)
        return ModelResponse(decision=decision, usage=usage, model_name=self.name)

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        """The topic check of older workflows (`guardrail_by_decision`), not streamed
        (nothing of it is shown) and capped short: only the start of the answer matters
        (is it `refuse`?), and a cut-off answer lets the message pass."""
        self._refuse_in_tests()
        short = ModelSettings(**self._settings)
        short["max_tokens"] = GUARDRAIL_MAX_TOKENS
        return await guardrail_by_decision(
            request, lambda asked: self._decide(asked, None, short, stream=False)
        )

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
        return response_usage(response, self._prefix, self._model_name)


__all__ = [
    "FORBID_ENV",
    "PROVIDER_PREFIXES",
    "ProviderModel",
    "decide_instructions",
    "finish_tool_name",
    "guardrail_instructions",
    "split_model_id",
    "to_pai_messages",
]
