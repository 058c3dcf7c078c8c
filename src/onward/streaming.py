"""Client-side reading of a conversation's live events (for SSE, CLI and tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import Client
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from onward.agent.events import TOPIC_DELTA, TOPIC_EVENTS, ConversationEvent, TokenDelta


@dataclass(frozen=True)
class StreamItem:
    """One item with its global offset (use it as the SSE event id)."""

    offset: int
    topic: str
    data: ConversationEvent | TokenDelta


async def conversation_events(
    client: Client,
    conversation_id: str,
    from_offset: int = 0,
    *,
    include_deltas: bool = True,
    poll_cooldown: timedelta = timedelta(milliseconds=50),
) -> AsyncIterator[StreamItem]:
    """Yield events from `from_offset` on, following continue-as-new, until the
    conversation ends and its retained events are drained."""
    stream = WorkflowStreamClient.create(client, conversation_id)
    topics = [TOPIC_EVENTS, TOPIC_DELTA] if include_deltas else [TOPIC_EVENTS]
    async for item in stream.subscribe(topics, from_offset, poll_cooldown=poll_cooldown):
        raw = item.data
        data: ConversationEvent | TokenDelta = (
            TokenDelta.model_validate(raw)
            if item.topic == TOPIC_DELTA
            else ConversationEvent.model_validate(raw)
        )
        yield StreamItem(offset=item.offset, topic=item.topic, data=data)
