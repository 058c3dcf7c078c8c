"""The one interface every model sits behind.

The LLM activities call `Model.decide` and `Model.check_guardrail`; providers,
the offline model and the test doubles implement them. Conversion between onward's
messages and a provider's format happens inside the implementation, never in
workflow code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from onward.agent.activity_contracts import GuardrailRequest, GuardrailResponse, GuardrailVerdict
from onward.agent.decisions import Decision, Refuse
from onward.agent.messages import Message, Usage, UserMessage
from onward.agent.specs import GoalSpec
from onward.exceptions import MalformedModelOutput

DeltaCallback = Callable[[str], Awaitable[None]]
"""Receives streamed text as it arrives (token deltas)."""


class ModelRequest(BaseModel):
    conversation_id: str
    goal: GoalSpec
    messages: list[Message]
    repair_hint: str | None = None
    """Set when the previous output was malformed: why, so the model can fix it."""
    review: bool = False
    """Set when `goal` is asked to review the last assistant message (a proposed
    answer): the only valid decision is a `Review`."""
    max_attempts: int = 10
    """The call's retry budget (`ConversationOptions.model_max_attempts`), so status
    events can say which attempt of how many is running."""
    check_topic: bool = False
    """Set on the first decision after a user message when the goal's guardrail is on:
    the model may answer `Refuse` if that message is outside the goal."""


class ModelResponse(BaseModel):
    decision: Decision
    usage: Usage = Field(default_factory=Usage)
    model_name: str


@runtime_checkable
class Model(Protocol):
    """A decision-making model.

    Implementations raise `ModelRateLimited`, `ModelTransientError`,
    `ModelPermanentError` or `MalformedModelOutput` (from `onward.exceptions`);
    the activity maps them to Temporal retry semantics.
    """

    @property
    def name(self) -> str: ...

    @property
    def offline(self) -> bool:
        """True for the built-in offline model (the UI labels it)."""
        ...

    async def decide(
        self, request: ModelRequest, on_delta: DeltaCallback | None = None
    ) -> ModelResponse: ...

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse: ...


async def guardrail_by_decision(
    request: GuardrailRequest, decide: Callable[[ModelRequest], Awaitable[ModelResponse]]
) -> GuardrailResponse:
    """The topic check of older workflows, asked as a decision with `check_topic` (the
    same prompt prefix as every decision): only a `Refuse` stops the message. An
    unusable answer lets it through: the guardrail keeps conversations on topic, while
    policy is enforced by the workflow."""
    if not request.goal.guardrail:
        return GuardrailResponse(verdict=GuardrailVerdict(allowed=True))
    asked = ModelRequest(
        conversation_id=request.conversation_id,
        goal=request.goal,
        messages=[*request.messages, UserMessage(text=request.text)],
        check_topic=True,
    )
    try:
        response = await decide(asked)
    except MalformedModelOutput as exc:
        usage = exc.usage if isinstance(exc.usage, Usage) else Usage(requests=1)
        return GuardrailResponse(verdict=GuardrailVerdict(allowed=True), usage=usage)
    decision = response.decision
    if isinstance(decision, Refuse):
        verdict = GuardrailVerdict(allowed=False, reply=decision.text)
    else:
        verdict = GuardrailVerdict(allowed=True)
    return GuardrailResponse(verdict=verdict, usage=response.usage)


__all__ = [
    "DeltaCallback",
    "GuardrailRequest",
    "GuardrailResponse",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "guardrail_by_decision",
]
