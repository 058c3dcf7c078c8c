"""Serializable descriptions of goals and tools, as recorded in workflow history.

A conversation records the `GoalSpec` it started with, so replay and continue-as-new
never depend on whatever code is deployed later.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

ApprovalPolicy = Literal["auto", "confirm", "deny"]


class RetrySpec(BaseModel):
    max_attempts: int = Field(default=3, ge=0)
    initial_interval_s: float = Field(default=1.0, gt=0)
    backoff: float = Field(default=2.0, ge=1)
    max_interval_s: float = Field(default=30.0, gt=0)


class ToolSpec(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""
    approval: ApprovalPolicy = "auto"
    timeout_s: float = 30.0
    retry: RetrySpec = Field(default_factory=RetrySpec)
    compensation: str | None = None
    """Name of the tool that undoes this one; it receives this call's args and result."""
    task_queue: str | None = None
    local: bool = False
    """Run as a local activity: lower latency for short tools; needs no other queue."""
    follow_ups: list[str] = Field(default_factory=list[str])
    """Tools that usually come next with this one's result (e.g. `find_events` ->
    `search_flights`): a hint every model reads, never a rule the workflow enforces."""
    model_visible: bool = True
    """False for a tool only the workflow runs (a saga's compensation): it is never
    offered to a model, and a model's call to it is refused like a tool outside the goal."""


class ExampleTurn(BaseModel):
    user: str
    assistant: str


class GoalSpec(BaseModel):
    name: str
    description: str
    instructions: str
    tools: list[ToolSpec]
    starter_prompt: str = ""
    examples: list[ExampleTurn] = Field(default_factory=list[ExampleTurn])
    saga: bool = False
    """When a tool call fails, undo earlier calls that have a compensation, newest first."""
    agents: list[GoalSpec] = Field(default_factory=list["GoalSpec"])
    """Goals this agent may delegate plan steps to (or hand off to, when `handoff`)."""
    handoff: bool = False
    """A router: it hands the whole conversation to one of `agents` instead of planning."""
    reviewer: GoalSpec | None = None
    """Reviews the answer after a plan ran; a rejection sends its feedback back to this
    agent, which plans again (completed steps are not re-run)."""
    max_review_rounds: int = Field(default=3, ge=1)
    plan_deadline_s: float | None = Field(default=None, gt=0)
    """Steps still running this long after a plan started are cancelled and reported."""
    max_plan_steps: int = Field(default=8, ge=1)
    graph: str | None = None
    """Name of a registered LangGraph reasoning graph that replaces the default loop."""
    end_on_finish: bool = False
    """End the conversation when the goal is finished. By default a finished goal
    answers the turn and the conversation stays open for follow-ups."""
    guardrail: bool = True
    """Let the model refuse a new user message that is outside the goal (a `Refuse`
    decision, judged in the same call as the decision, never a separate one)."""

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)

    def agent(self, name: str) -> GoalSpec | None:
        return next((a for a in self.agents if a.name == name), None)
