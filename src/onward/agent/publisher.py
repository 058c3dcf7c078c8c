"""Workflow-side publishing: every transcript change becomes a stream event."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowTopicHandle

from onward.agent.contracts import ConversationState
from onward.agent.events import (
    EVENT_TOPIC_TYPE,
    TOPIC_EVENTS,
    ConversationEvent,
    MessageEvent,
    StatusChanged,
)
from onward.agent.messages import Message

STREAM_OFFSET_QUERY = "__temporal_workflow_stream_offset"
"""`WorkflowStream`'s query for its next global offset (base offset + log length)."""


class Publisher:
    """Appends to the transcript and publishes the matching durable event."""

    def __init__(self, state: ConversationState, stream: WorkflowStream) -> None:
        self._s = state
        self.stream = stream
        self._events: WorkflowTopicHandle[ConversationEvent] = stream.topic(
            TOPIC_EVENTS, type=EVENT_TOPIC_TYPE
        )
        self._last_status: tuple[str, str | None] | None = None

    def say(self, message: Message) -> None:
        self._s.messages.append(message)
        self.emit(MessageEvent(message=message, index=self._s.message_count - 1))

    def emit(self, event: ConversationEvent) -> None:
        self._events.publish(event)

    def last_offset(self) -> int:
        """The global offset of the newest stream item, on any topic and whoever
        published it (an activity's deltas too); -1 while the stream is empty."""
        # The stream keeps its offsets private but answers them by query; calling
        # that handler reads them without issuing a command.
        next_offset = cast("Callable[[], int]", workflow.get_query_handler(STREAM_OFFSET_QUERY))
        return next_offset() - 1

    def forget_status(self) -> None:
        """A model activity may have published a status of its own (retrying): the next
        status is published even if it equals the last one published here."""
        self._last_status = None

    def status(self, status: str, detail: str | None) -> None:
        if self._last_status != (status, detail):
            self._last_status = (status, detail)
            self.emit(StatusChanged(status=status, detail=detail))
