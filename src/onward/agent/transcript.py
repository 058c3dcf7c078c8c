"""The workflow's view of its transcript: a bounded window over the transcript store.

The whole transcript lives in the store, written by the decide activity. The workflow
keeps what the current turn added plus what is not stored yet (`ConversationState.
messages`, from `window_start` on) and a `TranscriptRef` to the stored prefix. Every
model request carries that ref and only the unstored messages, so history grows with
what a turn adds, not with the length of the conversation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from onward.agent.contracts import ConversationState, TranscriptRef
from onward.agent.messages import Message, ToolCallMessage, ToolResultMessage
from onward.agent.specs import GoalSpec

CALL_IDS_KEPT = 2000
"""Tool call ids remembered so a new call never reuses one (idempotency keys are
conversation id + call id); old turns' ids are in the store, this keeps them cheap."""
TOOL_RECORDS_KEPT = 100
"""Tool call records kept in state (for sagas and results); older ones are in the store."""


def spec_ref(goal: GoalSpec) -> str:
    """The content address of a goal spec (the same the store gives its blob)."""
    return "sha256:" + hashlib.sha256(goal.model_dump_json().encode()).hexdigest()


def unstored(s: ConversationState) -> list[Message]:
    """The window's messages the store does not hold yet."""
    return s.messages[max(0, s.stored_count - s.window_start) :]


def by_reference(messages: Iterable[Message]) -> list[Message]:
    """`messages` as an activity input: tool results the store holds go by reference,
    so no result of any size is copied into a later activity's input."""
    out: list[Message] = []
    for m in messages:
        if isinstance(m, ToolResultMessage) and m.content_ref and m.content is not None:
            m = m.model_copy(update={"content": None})
        out.append(m)
    return out


def adopt(s: ConversationState, ref: TranscriptRef | None) -> None:
    """Record that the store now holds the transcript up to `ref` (from an activity)."""
    if ref is None or ref.count <= s.stored_count or ref.count > s.message_count:
        return
    s.transcript = ref


def trim(s: ConversationState) -> None:
    """Drop stored messages from the window (at a turn's start and before continuing
    as new): what is left is bounded by one turn's additions."""
    drop = s.stored_count - s.window_start
    if drop > 0:
        remember_call_ids(s, s.messages[:drop])
        del s.messages[:drop]
        s.window_start = s.stored_count
    for record in s.tool_calls:
        if record.result_ref is not None:
            record.result = None  # earlier turns' results: by reference only


def remember_call_ids(s: ConversationState, messages: Iterable[Message]) -> None:
    ids = [m.call_id for m in messages if isinstance(m, ToolCallMessage)]
    if ids:
        s.call_ids = [*s.call_ids, *ids][-CALL_IDS_KEPT:]


def taken_call_ids(s: ConversationState) -> set[str]:
    return (
        set(s.call_ids)
        | {r.call_id for r in s.tool_calls}
        | {m.call_id for m in s.messages if isinstance(m, ToolCallMessage)}
    )
