"""Live events of a conversation, published on its workflow stream.

Durable events go on topic `events` from the workflow; token deltas go on topic
`delta`, published in batches by the model activity. Each item has a global,
monotonic offset that clients use as the SSE event id to resume exactly where they
left off.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

from onward.agent.messages import Message, Usage

TOPIC_EVENTS = "events"
TOPIC_DELTA = "delta"
RETAINED_ITEMS = 64
"""Stream items kept across continue-as-new (a few turns, enough for a client that
lost its connection for a moment); older offsets get a `reset` and read the transcript
instead. Small, so a run's input does not grow with the conversation."""

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


class ConversationEvent(BaseModel):
    """One durable event. `index` is the transcript position for `message` events."""

    type: EventType
    message: Message | None = None
    index: int | None = None
    status: str | None = None
    detail: str | None = None
    usage: Usage | None = None
    call_id: str | None = None
    tool: str | None = None
    args: dict[str, Any] | None = None
    args_hash: str | None = None
    ok: bool | None = None
    decision: str | None = None
    agent: str | None = None
    """The goal of the sub-agent (or new agent, for a handoff) the event is about."""
    conversation_id: str | None = None
    """The child conversation an `agent_*` event or a surfaced approval belongs to."""
    message_id: str | None = None
    """The user message a `message_queued` event is about (its text is `detail`)."""
    attempt: int | None = None
    """For `retrying_model`: the attempt that is about to run (or running)."""
    retry_in_s: float | None = None
    """For `retrying_model` after a failure: seconds until the next attempt."""

    @model_serializer(mode="wrap")
    def _without_nones(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Each event uses a few of these fields: unset ones stay out of the stream (and
        # out of what continue-as-new carries).
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class TokenDelta(BaseModel):
    """Streamed model text; superseded by the `message` event that follows."""

    call: str
    """The model call (activity id) the text belongs to; a retried call restarts it."""
    attempt: int = 1
    text: str
