"""Forking a conversation: a new conversation whose transcript is another's up to a
point, by reference into the transcript store, so nothing before that point runs again
(no model call, no tool call). The fork runs with the goal spec the original ran with.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from onward.agent.contracts import (
    QUERY_FORK_SOURCE,
    WORKFLOW_NAME,
    ForkSource,
    ForkStart,
    StartConversation,
)
from onward.agent.messages import Message, ToolCallMessage, UserMessage
from onward.client.conversations import WORKFLOW_TASK_TIMEOUT, Conversations
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


@dataclass(frozen=True)
class SourceView:
    """What a fork is made from: the source's goal, options and whole transcript."""

    source_id: str
    source: ForkSource
    stored: int
    """Messages of `transcript` that are in the store (the rest are the window)."""
    transcript: list[Message]


async def read_source(convs: Conversations, source_id: str) -> SourceView:
    """The source conversation's goal, options and transcript (store and window).

    Raises:
        ConversationNotFound: No such conversation.
    """
    handle = convs.client.get_workflow_handle(source_id)
    try:
        source = await handle.query(QUERY_FORK_SOURCE, result_type=ForkSource)
    except RPCError as exc:
        raise convs._rpc(source_id, exc) from exc  # pyright: ignore[reportPrivateUsage]
    stored = await transcript_store(convs.settings).read(source.transcript)
    window = source.messages[max(0, len(stored) - source.window_start) :]
    return SourceView(source_id, source, len(stored), [*stored, *window])


async def start_fork(
    convs: Conversations, view: SourceView, point: int, *, owner: str, conversation_id: str
) -> str:
    """Start the fork of `view` at transcript index `point` (from `fork_point`) under
    `conversation_id`. Starting it again with the same id starts nothing new (a
    retried request gets the first fork)."""
    store = transcript_store(convs.settings)
    source, transcript = view.source, view.transcript
    head, rest = await store.prefix(source.transcript, min(point, view.stored))
    rest = [*rest, *transcript[view.stored : point]] if point > view.stored else rest
    # Results held by reference belong to the source: the fork gets them inline.
    rest = await store.resolve_results(view.source_id, rest)
    rest = [
        m.model_copy(update={"content_ref": None}) if m.kind == "tool_result" else m for m in rest
    ]
    prefix = transcript[:point]
    answered = {m.call_id for m in prefix if m.kind == "tool_result"}
    # A call in the prefix without a result was waiting (for an approval, or to run):
    # the fork's first notice says it was not carried over.
    dropped = sum(1 for m in prefix if isinstance(m, ToolCallMessage) and m.call_id not in answered)
    start = StartConversation(
        conversation_id=conversation_id,
        owner=owner,
        goal=source.goal,
        options=source.options,
        fork=ForkStart(
            source_id=view.source_id,
            at=point,
            turns=sum(isinstance(m, UserMessage) for m in prefix),
            transcript=head,
            messages=rest,
            dropped_approvals=dropped,
            call_ids=[m.call_id for m in prefix if isinstance(m, ToolCallMessage)],
        ),
    )
    with contextlib.suppress(WorkflowAlreadyStartedError):  # only with REJECT_DUPLICATE
        await convs.client.start_workflow(
            WORKFLOW_NAME,
            start,
            id=conversation_id,
            task_queue=convs.settings.task_queue,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # Never a second run under an id that has one, even once it has closed.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    return conversation_id


async def fork(
    convs: Conversations,
    source_id: str,
    *,
    owner: str,
    turn: int | None = None,
    at: int | None = None,
    conversation_id: str | None = None,
) -> str:
    """Start a fork of `source_id`; returns the new conversation's id.

    Raises:
        ConversationNotFound: No such conversation.
        InputRejected: A bad fork point (see `fork_point`).
    """
    view = await read_source(convs, source_id)
    point = fork_point(view.transcript, turn=turn, at=at)
    cid = conversation_id or f"conv-{uuid.uuid4().hex[:12]}"
    return await start_fork(convs, view, point, owner=owner, conversation_id=cid)
