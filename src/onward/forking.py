"""Forking a conversation: a new conversation whose transcript is another's up to a
point, by reference into the transcript store, so nothing before that point runs again
(no model call, no tool call). The fork runs with the goal spec the original ran with.
"""

from __future__ import annotations

import uuid

from temporalio.service import RPCError

from onward.agent.contracts import (
    QUERY_FORK_SOURCE,
    WORKFLOW_NAME,
    ForkSource,
    ForkStart,
    StartConversation,
)
from onward.agent.messages import Message, ToolCallMessage, UserMessage
from onward.conversations import WORKFLOW_TASK_TIMEOUT, Conversations
from onward.exceptions import InputRejected
from onward.store.transcripts import transcript_store


def fork_point(messages: list[Message], *, turn: int | None, at: int | None) -> int:
    """The transcript index a fork is made at: after `turn` turns (before the next user
    message), or the message index `at`.

    Raises:
        InputRejected: Neither or both given, or a point past the end.
    """
    if (turn is None) == (at is None):
        raise InputRejected("give either a turn or a message index to fork at")
    if at is not None:
        if not 0 <= at <= len(messages):
            raise InputRejected(f"message index {at} is outside 0..{len(messages)}")
        return at
    assert turn is not None
    users = [i for i, m in enumerate(messages) if isinstance(m, UserMessage)]
    if not 0 <= turn <= len(users):
        raise InputRejected(f"turn {turn} is outside 0..{len(users)}")
    return users[turn] if turn < len(users) else len(messages)


async def fork(
    convs: Conversations,
    source_id: str,
    *,
    owner: str,
    turn: int | None = None,
    at: int | None = None,
    conversation_id: str | None = None,
) -> str:
    """Start a fork of `source_id`; returns the new conversation's id."""
    handle = convs.client.get_workflow_handle(source_id)
    try:
        source = await handle.query(QUERY_FORK_SOURCE, result_type=ForkSource)
    except RPCError as exc:
        raise convs._rpc(source_id, exc) from exc
    store = transcript_store(convs.settings)
    stored = await store.read(source.transcript)
    window = source.messages[max(0, len(stored) - source.window_start) :]
    transcript = [*stored, *window]
    point = fork_point(transcript, turn=turn, at=at)
    head, rest = await store.prefix(source.transcript, min(point, len(stored)))
    rest = [*rest, *transcript[len(stored) : point]] if point > len(stored) else rest
    # Results held by reference belong to the source: the fork gets them inline.
    rest = await store.resolve_results(source_id, rest)
    rest = [
        m.model_copy(update={"content_ref": None}) if m.kind == "tool_result" else m for m in rest
    ]
    prefix = transcript[:point]
    answered = {m.call_id for m in prefix if m.kind == "tool_result"}
    dropped = sum(1 for m in prefix if isinstance(m, ToolCallMessage) and m.call_id not in answered)
    cid = conversation_id or f"conv-{uuid.uuid4().hex[:12]}"
    start = StartConversation(
        conversation_id=cid,
        owner=owner,
        goal=source.goal,
        options=source.options,
        fork=ForkStart(
            source_id=source_id,
            at=point,
            turns=sum(isinstance(m, UserMessage) for m in prefix),
            transcript=head,
            messages=rest,
            dropped_approvals=dropped,
            call_ids=[m.call_id for m in prefix if isinstance(m, ToolCallMessage)],
        ),
    )
    await convs.client.start_workflow(
        WORKFLOW_NAME,
        start,
        id=cid,
        task_queue=convs.settings.task_queue,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
    )
    return cid
