"""`ScriptedModel`: a model that plays back decisions and faults, for tests.

It implements the same `Model` interface as real providers, so a test exercises the
real activities, retries and workflow; only the model's answers are scripted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from onward.agent.decisions import AskUser, Decision, Finish, GuardrailVerdict, Review
from onward.agent.messages import Usage
from onward.exceptions import (
    MalformedModelOutput,
    ModelPermanentError,
    ModelRateLimited,
    ModelTransientError,
)
from onward.models.base import (
    DeltaCallback,
    GuardrailRequest,
    GuardrailResponse,
    ModelRequest,
    ModelResponse,
)


@dataclass(frozen=True)
class RateLimit:
    """Fail this call with a 429 that asks to wait `retry_after_s`."""

    retry_after_s: float = 1.0


@dataclass(frozen=True)
class ServerError:
    """Fail this call with a retryable 5xx."""

    status: int = 500


@dataclass(frozen=True)
class Timeout:
    """Fail this call as a timeout (retryable)."""


@dataclass(frozen=True)
class Permanent:
    """Fail this call with a non-retryable error (401, content filter, …)."""

    message: str = "401 Unauthorized: invalid API key"


@dataclass(frozen=True)
class Malformed:
    """Return output that is not a valid decision."""

    raw: str = "{not json"


@dataclass(frozen=True)
class Hang:
    """Never answer; the call only ends when cancelled (for interrupt tests)."""


@dataclass(frozen=True)
class Gated:
    """Answer `then` only once `gate` is set: holds a model call in flight."""

    gate: asyncio.Event
    then: Decision


Fault = RateLimit | ServerError | Timeout | Permanent | Malformed | Hang
Step = Decision | Fault | Gated
ScriptFn = Callable[[ModelRequest], Step]


@dataclass
class ScriptedModel:
    """Plays back `script`: a list consumed one step per model call, or a function of
    the request. Records every request in `calls`.

    Visible text (an answer, a question) is streamed word by word; `word_delay_s`
    paces the words like a real model. An answer that takes less than one delta batch
    interval (150 ms) sends no deltas: its text arrives with the result.

    Example:
        ```python
        model = ScriptedModel([CallTools(calls=[ToolCall(call_id="c1", tool="add",
                                args={"a": 1, "b": 2})]), RateLimit(2), Finish(answer="3")])
        ```
    """

    script: Sequence[Step] | ScriptFn
    guardrail: Callable[[GuardrailRequest], GuardrailVerdict] | None = None
    usage_per_call: Usage = field(
        default_factory=lambda: Usage(
            requests=1, input_tokens=100, output_tokens=20, cost_usd=0.001
        )
    )
    stream_text: bool = True
    word_delay_s: float = 0.0
    model_name: str = "scripted"
    calls: list[ModelRequest] = field(default_factory=list[ModelRequest])
    guardrail_calls: list[GuardrailRequest] = field(default_factory=list[GuardrailRequest])
    _position: int = 0

    @property
    def name(self) -> str:
        return self.model_name

    @property
    def offline(self) -> bool:
        return False

    def _next(self, request: ModelRequest) -> Step:
        if callable(self.script):
            return self.script(request)
        if self._position >= len(self.script):
            raise ModelPermanentError(
                f"ScriptedModel: script exhausted after {len(self.script)} steps"
            )
        step = self.script[self._position]
        self._position += 1
        return step

    async def decide(
        self, request: ModelRequest, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        self.calls.append(request)
        step = self._next(request)
        match step:
            case RateLimit(retry_after_s=s):
                raise ModelRateLimited("429 Too Many Requests", retry_after_s=s)
            case ServerError(status=code):
                raise ModelTransientError(f"{code} Server Error", status=code)
            case Timeout():
                raise ModelTransientError("request timed out")
            case Permanent(message=m):
                raise ModelPermanentError(m)
            case Malformed(raw=raw):
                raise MalformedModelOutput(
                    f"output is not a valid decision: {raw!r}", usage=self.usage_per_call
                )
            case Hang():
                await asyncio.Event().wait()
                raise AssertionError("unreachable")
            case Gated(gate=gate, then=then):
                await gate.wait()
                step = then
            case _:
                pass
        if on_delta is not None and self.stream_text:
            text = _visible_text(step)
            for word in text.split(" ") if text else []:
                if self.word_delay_s:
                    await asyncio.sleep(self.word_delay_s)  # the model's pace, not a wait
                await on_delta(word + " ")
        return ModelResponse(decision=step, usage=self.usage_per_call, model_name=self.name)

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        self.guardrail_calls.append(request)
        verdict = self.guardrail(request) if self.guardrail else GuardrailVerdict(allowed=True)
        return GuardrailResponse(verdict=verdict, usage=Usage())


def _visible_text(decision: Decision) -> str:
    if isinstance(decision, AskUser):
        return decision.text
    if isinstance(decision, Finish):
        return decision.answer
    if isinstance(decision, Review):
        return decision.feedback or ""
    return decision.text or ""
