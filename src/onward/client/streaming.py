"""Client-side reading of a conversation's live events (for SSE, CLI and tests).

Each item is decoded once, from its payload's JSON straight into its typed model (a
`ConversationEvent` or a `TokenDelta`, chosen by topic), and not first into a dict.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.common import RawValue
from temporalio.contrib.workflow_streams import PollInput, PollResult, WorkflowStreamClient
from temporalio.contrib.workflow_streams._types import _decode_payload
from temporalio.converter import PayloadConverter

from onward.agent.events import (
    EVENT_TOPIC_TYPE,
    TOPIC_DELTA,
    TOPIC_EVENTS,
    ConversationEvent,
    TokenDelta,
)

_POLL = "__temporal_workflow_stream_poll"
"""The stream's read handler: an update that waits for items, and a query (same name)
that returns the retained items at once."""


@dataclass(frozen=True)
class StreamItem:
    """One item with its global offset (use it as the SSE event id)."""

    offset: int
    topic: str
    data: ConversationEvent | TokenDelta


def _item(converter: PayloadConverter, offset: int, topic: str, payload: Payload) -> StreamItem:
    data: ConversationEvent | TokenDelta = (
        converter.from_payload(payload, TokenDelta)
        if topic == TOPIC_DELTA
        else converter.from_payload(payload, EVENT_TOPIC_TYPE)
    )
    return StreamItem(offset=offset, topic=topic, data=data)


async def conversation_events(
    client: Client,
    conversation_id: str,
    from_offset: int = 0,
    *,
    include_deltas: bool = True,
    poll_cooldown: timedelta = timedelta(milliseconds=50),
) -> AsyncIterator[StreamItem]:
    """Yield events from `from_offset` on, following continue-as-new, until the
    conversation ends and its retained events are drained.

    Each call holds one long-poll Temporal update on the workflow while it waits, and
    Temporal allows few per workflow: serve many readers of one conversation from one
    of these (`onward.api.stream_hub`), not one each.
    """
    stream = WorkflowStreamClient.create(client, conversation_id)
    converter = client.data_converter.payload_converter
    topics = [TOPIC_EVENTS, TOPIC_DELTA] if include_deltas else [TOPIC_EVENTS]
    # Raw payloads: the topics carry different types, decoded by `_item` by topic.
    async for item in stream.subscribe(
        topics, from_offset, result_type=RawValue, poll_cooldown=poll_cooldown
    ):
        yield _item(converter, item.offset, item.topic, item.data.payload)


async def retained_events(
    client: Client, conversation_id: str, from_offset: int, until_offset: int
) -> AsyncIterator[StreamItem]:
    """The items already in the stream from `from_offset` up to (not including)
    `until_offset`, read with queries: no waiting, and no update held on the workflow."""
    handle = client.get_workflow_handle(conversation_id)
    converter = client.data_converter.payload_converter
    offset = from_offset
    while offset < until_offset:
        result = await handle.query(
            _POLL,
            PollInput(topics=[TOPIC_EVENTS, TOPIC_DELTA], from_offset=offset),
            result_type=PollResult,
        )
        for wire in result.items:
            if wire.offset >= until_offset:
                return
            yield _item(converter, wire.offset, wire.topic, _decode_payload(wire.data))
        if not result.items or result.next_offset <= offset:
            return
        offset = result.next_offset
