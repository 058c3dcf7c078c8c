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

from onward.agent.activity_contracts import GuardrailRequest, GuardrailResponse
from onward.agent.decisions import Decision
from onward.agent.messages import Message, Usage
from onward.agent.specs import GoalSpec

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


__all__ = [
    "DeltaCallback",
    "GuardrailRequest",
    "GuardrailResponse",
    "Model",
    "ModelRequest",
    "ModelResponse",
]
