"""The one validated type a model call returns: what the agent does next."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter


class AskUser(BaseModel):
    """Ask the user a question (or tell them something) and wait for their reply."""

    kind: Literal["ask"] = "ask"
    text: str = Field(min_length=1)


class ToolCall(BaseModel):
    """One tool the agent wants to run. `call_id` is unique within the conversation."""

    call_id: str = Field(min_length=1, max_length=128)
    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class CallTools(BaseModel):
    """Run one or more tools (concurrently), then decide again with their results."""

    kind: Literal["call_tools"] = "call_tools"
    calls: list[ToolCall] = Field(min_length=1)
    text: str | None = None


class Finish(BaseModel):
    """The goal is reached: give the final answer."""

    kind: Literal["finish"] = "finish"
    answer: str = Field(min_length=1)


Decision = Annotated[AskUser | CallTools | Finish, Field(discriminator="kind")]
DECISION_ADAPTER: TypeAdapter[Decision] = TypeAdapter(Decision)


class GuardrailVerdict(BaseModel):
    """Whether a user message fits the goal; `reply` is the polite redirect if not."""

    allowed: bool
    reply: str | None = None
