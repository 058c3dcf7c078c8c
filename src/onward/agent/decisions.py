"""The one validated type a model call returns: what the agent does next."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


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


class Refuse(BaseModel):
    """The user's new message is outside the goal: answer with a polite redirect and
    run nothing. Only valid as the first decision after a user message (the request's
    `check_topic`); the conversation stays open."""

    kind: Literal["refuse"] = "refuse"
    text: str = Field(min_length=1)


PLAN_TOOL = "delegate"
HANDOFF_TOOL = "handoff"
REVIEW_TOOL = "review"
REFUSE_TOOL = "refuse"
"""Names these decisions carry in the transcript (and as a provider model's tools)."""


class PlanStep(BaseModel):
    """One step of a plan: an instruction for a sub-agent working toward `goal`."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    goal: str = Field(min_length=1)
    instruction: str = Field(min_length=1)
    depends_on: list[str] = Field(default_factory=list[str])
    """Ids of steps whose results this step needs; it starts when they are done."""


class RunPlan(BaseModel):
    """Delegate work: each step runs as a child conversation; independent steps run in
    parallel. Their results come back as one tool result, then the agent decides again."""

    kind: Literal["plan"] = "plan"
    call_id: str = Field(default="plan", min_length=1, max_length=128)
    steps: list[PlanStep] = Field(min_length=1)
    text: str | None = None


class Handoff(BaseModel):
    """Hand the conversation to another goal's agent (a router's decision)."""

    kind: Literal["handoff"] = "handoff"
    call_id: str = Field(default="handoff", min_length=1, max_length=128)
    goal: str = Field(min_length=1)
    text: str | None = None


class Review(BaseModel):
    """A reviewer's verdict on a proposed answer; `feedback` says what to change."""

    kind: Literal["review"] = "review"
    approved: bool
    feedback: str | None = None


Decision = Annotated[
    AskUser | CallTools | Finish | Refuse | RunPlan | Handoff | Review,
    Field(discriminator="kind"),
]


class GuardrailVerdict(BaseModel):
    """Whether a user message fits the goal; `reply` is the polite redirect if not."""

    allowed: bool
    reply: str | None = None
