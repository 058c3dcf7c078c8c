"""Request and response bodies of the HTTP API.

Requests (`*Request`) are what clients may send, with nothing the server decides
(owner, ids, timeouts); responses are what the server returns. Workflow contract
models are reused where the API shows them unchanged (`Usage`, `Budget`, messages).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from onward.agent.contracts import Budget, ConversationSnapshot, MessagePolicy
from onward.agent.messages import Usage
from onward.agent.specs import ApprovalPolicy


class _Request(BaseModel):
    # A misspelt field is a mistake the client wants to hear about, not silently lose.
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ requests


class BudgetRequest(_Request):
    max_tokens: int | None = Field(default=None, ge=1, description="Total token limit.")
    max_cost_usd: float | None = Field(
        default=None,
        gt=0,
        # JSON `1e999` parses as infinity: a limit nobody can reach is refused, not stored.
        allow_inf_nan=False,
        description="Cost limit in USD (a finite number).",
    )


class OptionsRequest(_Request):
    message_policy: MessagePolicy = Field(
        default="queue",
        description="`queue`: a message sent mid-turn waits for its turn. `interrupt`: it "
        "cancels the model call in flight and the agent plans again with it.",
    )
    budget: BudgetRequest = Field(default_factory=BudgetRequest)


class CreateConversationRequest(_Request):
    goal: str = Field(min_length=1, max_length=200, description="A goal name from /v1/goals.")
    message: str | None = Field(default=None, description="Optional first user message.")
    options: OptionsRequest = Field(default_factory=OptionsRequest)


class SendMessageRequest(_Request):
    text: str = Field(min_length=1, description="The user's message.")


class ApprovalRequest(_Request):
    decision: Literal["approve", "reject"]
    args_hash: str = Field(
        min_length=1,
        description="The `args_hash` of the pending approval: binds the decision to the "
        "exact arguments the user saw.",
    )
    feedback: str | None = Field(
        default=None, max_length=2000, description="Told to the agent with a rejection."
    )


def _limits_not_null(schema: dict[str, Any]) -> None:
    """The schema of a budget raise: at least one limit, and no `null` (leaving a limit
    out keeps it; `null` would read as "no limit")."""
    schema["minProperties"] = 1
    for prop in schema.get("properties", {}).values():
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if branches:
            prop.update(branches[0])
        prop.pop("default", None)


class RaiseBudgetRequest(_Request):
    """At least one new limit; a limit left out stays as it is."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_limits_not_null)

    max_tokens: int | None = Field(default=None, ge=1, description="New token limit.")
    max_cost_usd: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="New cost limit in USD (finite)."
    )

    @model_validator(mode="before")
    @classmethod
    def _one_limit_given(cls, data: object) -> object:
        # `null` is not a limit: leave the field out to keep it as it is.
        if not isinstance(data, dict):
            return data
        given = cast(dict[str, object], data)
        nulls = [name for name, value in given.items() if value is None]
        if nulls:
            raise ValueError(f"`{nulls[0]}` may not be null; leave it out to keep it")
        if not given:
            raise ValueError("name a new `max_tokens` or `max_cost_usd`")
        return given


# ----------------------------------------------------------------- responses


class ConversationLinks(BaseModel):
    self: str
    events: str
    workflow: str
    """The conversation's workflow in the Temporal Web UI."""


class ConversationCreated(BaseModel):
    id: str
    goal: str
    created_at: datetime
    links: ConversationLinks


class ConversationSummary(BaseModel):
    id: str
    goal: str
    title: str
    """The first message, shortened ('' when the conversation started without one)."""
    created_at: datetime
    links: ConversationLinks


class ConversationList(BaseModel):
    conversations: list[ConversationSummary]


class ConversationDetail(ConversationSnapshot):
    """The workflow's snapshot (messages from `offset` on) plus what the API knows."""

    title: str
    created_at: datetime
    links: ConversationLinks


class MessageAccepted(BaseModel):
    """The message is held for the conversation and will be taken in arrival order.

    Its position is not known yet: the `message` event and the transcript carry the
    same `id` once the agent takes it (a notice names it if the conversation ends
    first)."""

    id: str
    """The message id (derived from the `Idempotency-Key` when one was sent)."""
    queued: Literal[True] = True


class EndRequest(_Request):
    reason: str = Field(
        default="ended by user", min_length=1, max_length=200, description="Why it ended."
    )


class ConversationEnded(BaseModel):
    id: str
    status: Literal["ended"] = "ended"


class ApprovalRecorded(BaseModel):
    call_id: str
    decision: Literal["approve", "reject"]


class BudgetState(BaseModel):
    budget: Budget
    usage: Usage


class ToolInfo(BaseModel):
    name: str
    description: str
    approval: ApprovalPolicy
    """`auto` runs at once, `confirm` waits for a human, `deny` never runs."""
    parameters: dict[str, Any]
    """JSON schema of the arguments."""


class GoalInfo(BaseModel):
    name: str
    description: str
    starter_prompt: str
    tools: list[ToolInfo]


class GoalList(BaseModel):
    goals: list[GoalInfo]


class Me(BaseModel):
    user: str


class ModelInfo(BaseModel):
    name: str
    """The configured model id (`offline`, `openai:gpt-4o-mini`, …)."""
    description: str
    offline: bool
    """True for the built-in offline model: the UI labels it clearly."""


class TemporalInfo(BaseModel):
    namespace: str
    web_ui_url: str
    workflow_url_template: str
    """Replace `{id}` with a conversation id for its workflow page."""


class Limits(BaseModel):
    max_message_chars: int
    max_body_bytes: int


class Info(BaseModel):
    version: str
    model: ModelInfo
    temporal: TemporalInfo
    limits: Limits


class TemporalHealth(BaseModel):
    address: str
    reachable: bool
    error: str | None


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    temporal: TemporalHealth


def _exactly_one_point(schema: dict[str, Any]) -> None:
    """The schema of a fork request: exactly one of the two, neither `null`."""
    schema["minProperties"] = 1
    schema["maxProperties"] = 1
    for prop in schema.get("properties", {}).values():
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if branches:
            prop.update(branches[0])
        prop.pop("default", None)


class ForkRequest(_Request):
    """Where to fork: after `turn` turns (before the next user message), or at
    transcript message index `at`. Exactly one. A point past the conversation's end
    is a 409 (the schema cannot know how long the conversation is)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_exactly_one_point)

    turn: int | None = Field(
        default=None, ge=0, description="Turns to keep: 0 keeps none, 3 keeps the first three."
    )
    at: int | None = Field(
        default=None, ge=0, description="Transcript messages to keep (an index into it)."
    )

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        given = cast(dict[str, object], data)
        if any(value is None for value in given.values()) or len(given) != 1:
            raise ValueError("give exactly one of `turn` or `at`, as a number")
        return given


class TurnStopped(BaseModel):
    """What a stop did."""

    stopped: bool
    """True when a turn was in progress and was stopped (its model call cancelled)."""
    detail: str
