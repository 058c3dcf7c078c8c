"""Workflow-side publishing: every transcript change becomes a stream event."""

from __future__ import annotations

from typing import Any

from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowTopicHandle

from onward.agent.contracts import ConversationState
from onward.agent.events import TOPIC_EVENTS, ConversationEvent
from onward.agent.messages import Message


class Publisher:
    """Appends to the transcript and publishes the matching durable event."""

    def __init__(self, state: ConversationState, stream: WorkflowStream) -> None:
        self._s = state
        self.stream = stream
        self._events: WorkflowTopicHandle[ConversationEvent] = stream.topic(
            TOPIC_EVENTS, type=ConversationEvent
        )
        self._last_status: tuple[str, str | None] | None = None

    def say(self, message: Message) -> None:
        self._s.messages.append(message)
        self.emit(
            ConversationEvent(type="message", message=message, index=self._s.message_count - 1)
        )

    def emit(self, event: ConversationEvent) -> None:
        self._events.publish(event)

    def event(self, type_: Any, **fields: Any) -> None:
        self.emit(ConversationEvent(type=type_, **fields))

    def forget_status(self) -> None:
        """A model activity may have published a status of its own (retrying): the next
        status is published even if it equals the last one published here."""
        self._last_status = None

    def status(self, status: str, detail: str | None) -> None:
        if self._last_status != (status, detail):
            self._last_status = (status, detail)
            self.event("status", status=status, detail=detail)
