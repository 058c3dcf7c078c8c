"""Live events of a conversation, published on its workflow stream.

Durable events go on topic `events` from the workflow; token deltas go on topic
`delta`, published in batches by the model activity. Each item has a global,
monotonic offset that clients use as the SSE event id to resume exactly where they
left off.

`ConversationEvent` is a union discriminated by `type`: one model per kind, with
exactly the fields that kind carries, so a misspelt field is a type error where the
event is built. The JSON is the wire format (SSE, the web UI) and what continue-as-new
carries, so it must not change: fields keep the order and names of the single model
these replaced, and unset fields are left out.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast, get_args

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

from onward.agent.messages import Message, Usage

TOPIC_EVENTS = "events"
TOPIC_DELTA = "delta"
RETAINED_ITEMS = 64
"""Stream items kept across continue-as-new (a few turns, enough for a client that
lost its connection for a moment); older offsets get a `reset` and read the transcript
instead. Small, so a run's input does not grow with the conversation."""


class _Event(BaseModel):
    # Field order in every subclass follows the order of the one model these replaced
    # (type, message, index, status, detail, usage, call_id, tool, args, args_hash, ok,
    # decision, agent, conversation_id, message_id, attempt, retry_in_s): the JSON of
    # each event stays byte-for-byte what it was.

    @model_serializer(mode="wrap")
    def _without_nones(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Optional fields left unset stay out of the stream (and out of what
        # continue-as-new carries), as they always have.
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class MessageEvent(_Event):
    """A message was appended to the transcript at `index`."""

    type: Literal["message"] = "message"
    message: Message
    index: int


class MessageQueued(_Event):
    """A user message arrived during a turn and waits for it to end."""

    type: Literal["message_queued"] = "message_queued"
    detail: str
    """The queued message's text."""
    message_id: str | None = None
    """The id the client sent the message with (None: it sent none)."""


class StatusChanged(_Event):
    """The conversation's status; `retrying_model` comes from the model activity."""

    type: Literal["status"] = "status"
    status: str
    detail: str | None = None
    attempt: int | None = None
    """For `retrying_model`: the attempt that is about to run (or running)."""
    retry_in_s: float | None = None
    """For `retrying_model` after a failure: seconds until the next attempt."""


class UsageChanged(_Event):
    """The conversation's total usage after a model call or a sub-agent."""

    type: Literal["usage"] = "usage"
    usage: Usage


class ModelCallStarted(_Event):
    type: Literal["model_call_started"] = "model_call_started"
    detail: str
    """The number of this model call in the run."""


class ToolCallProposed(_Event):
    type: Literal["tool_call_proposed"] = "tool_call_proposed"
    call_id: str
    tool: str
    args: dict[str, Any]
    args_hash: str


class ToolCallStarted(_Event):
    type: Literal["tool_call_started"] = "tool_call_started"
    call_id: str
    tool: str


class ToolCallFinished(_Event):
    type: Literal["tool_call_finished"] = "tool_call_finished"
    call_id: str
    tool: str
    ok: bool


class ApprovalRequested(_Event):
    """A tool call waits for a person; `agent` and `conversation_id` are set when a
    sub-agent's approval is surfaced here."""

    type: Literal["approval_requested"] = "approval_requested"
    call_id: str
    tool: str
    args: dict[str, Any]
    args_hash: str
    agent: str | None = None
    conversation_id: str | None = None


class ApprovalDecided(_Event):
    type: Literal["approval_decided"] = "approval_decided"
    call_id: str
    tool: str
    decision: str
    """`approve`, `reject`, `expired` or (a sub-agent's) `closed`."""
    agent: str | None = None
    conversation_id: str | None = None


class AgentStarted(_Event):
    """A sub-agent (goal `agent`) started as child conversation `conversation_id`."""

    type: Literal["agent_started"] = "agent_started"
    agent: str
    conversation_id: str


class AgentFinished(_Event):
    type: Literal["agent_finished"] = "agent_finished"
    detail: str
    """The sub-agent's outcome, or `reused` for a result remembered from before."""
    ok: bool
    agent: str
    conversation_id: str


class HandedOff(_Event):
    """The conversation was handed to goal `agent`."""

    type: Literal["handoff"] = "handoff"
    agent: str


class Reviewed(_Event):
    """Reviewer `agent` judged a draft answer."""

    type: Literal["review"] = "review"
    detail: str | None = None
    """The reviewer's feedback."""
    ok: bool
    agent: str


ConversationEvent = Annotated[
    MessageEvent
    | MessageQueued
    | StatusChanged
    | UsageChanged
    | ModelCallStarted
    | ToolCallProposed
    | ToolCallStarted
    | ToolCallFinished
    | ApprovalRequested
    | ApprovalDecided
    | AgentStarted
    | AgentFinished
    | HandedOff
    | Reviewed,
    Field(discriminator="type"),
]
"""One durable event (the type of topic `events`)."""

EVENT_ADAPTER: TypeAdapter[ConversationEvent] = TypeAdapter(ConversationEvent)
"""Validates and dumps any `ConversationEvent` (JSON or a dict, by `type`)."""

EVENT_TOPIC_TYPE = cast("type[ConversationEvent]", ConversationEvent)
"""`ConversationEvent` as the value type of the `events` topic: the streams API takes
a `type[T]`, which an annotated union is not to a type checker, though the pydantic
data converter decodes it (it builds a `TypeAdapter` of whatever it is given)."""

EVENT_MODELS: tuple[type[_Event], ...] = get_args(get_args(ConversationEvent)[0])

EventType = Literal[
    "message",
    "message_queued",
    "status",
    "usage",
    "model_call_started",
    "tool_call_proposed",
    "tool_call_started",
    "tool_call_finished",
    "approval_requested",
    "approval_decided",
    "agent_started",
    "agent_finished",
    "handoff",
    "review",
]
"""Every `ConversationEvent.type` (a unit test checks it matches the union)."""


class TokenDelta(BaseModel):
    """Streamed model text; superseded by the `message` event that follows."""

    call: str
    """The model call (activity id) the text belongs to; a retried call restarts it."""
    attempt: int = 1
    text: str
