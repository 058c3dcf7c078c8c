"""A conversation's state across runs: how a run starts (new, forked, carried over by
continue-as-new), what it carries to the next run, and what readers see of it."""

from __future__ import annotations

from typing import NoReturn

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream

from onward.agent import transcript as window
from onward.agent.contracts import (
    ConversationSnapshot,
    ConversationState,
    ForkSource,
    ForkStart,
    PendingApproval,
    StartConversation,
    StateQuery,
)
from onward.agent.events import RETAINED_ITEMS
from onward.agent.status import StatusBoard


def initial_state(start: StartConversation) -> ConversationState:
    """The state a run begins with: carried over, forked from another conversation, or
    new (its first message waiting in the inbox)."""
    s = start.carried or ConversationState(
        conversation_id=start.conversation_id,
        owner=start.owner,
        goal=start.goal,
        options=start.options,
        parent=start.parent,
    )
    if start.fork is not None and start.carried is None:
        fork = start.fork
        # Nothing before the fork point runs again: the transcript is a reference.
        s.transcript = fork.transcript
        s.window_start = fork.transcript.count if fork.transcript else 0
        s.messages = list(fork.messages)
        s.turns = fork.turns
        s.call_ids = list(fork.call_ids)
    if start.first_message and start.carried is None:
        # Here, not in `run`: messages signalled with the start are handled before
        # `run` begins, and the first message must stay first.
        s.inbox.append(start.first_message)
    return s


def fork_notice(fork: ForkStart) -> str:
    text = f"Forked from `{fork.source_id}` after message {fork.at} (turn {fork.turns})."
    if fork.dropped_approvals:
        text += (
            f" {fork.dropped_approvals} approval(s) pending at that point were not carried "
            "over: ask again to run those tools."
        )
    return text


def should_continue_as_new(s: ConversationState, turns_this_run: int) -> bool:
    if turns_this_run >= s.options.turns_before_continue_as_new:
        return True
    return workflow.info().is_continue_as_new_suggested()


async def continue_as_new(s: ConversationState, stream: WorkflowStream) -> NoReturn:
    """End this run and start the next with references, not messages, once every
    handler has finished. Does not return."""
    stream.detach_pollers()
    await workflow.wait_condition(workflow.all_handlers_finished)
    s.runs += 1
    window.trim(s)  # the next run carries references, not messages
    # Bound what the next run carries: old offsets get a `reset`.
    carried = stream.get_state()
    stream.truncate(max(0, carried.base_offset + len(carried.log) - RETAINED_ITEMS))
    s.stream = stream.get_state()
    workflow.continue_as_new(
        StartConversation(
            conversation_id=s.conversation_id,
            owner=s.owner,
            goal=s.goal,
            options=s.options,
            carried=s,
        )
    )


def fork_source(s: ConversationState, pending: dict[str, PendingApproval]) -> ForkSource:
    return ForkSource(
        goal=s.goal,
        options=s.options,
        owner=s.owner,
        turns=s.turns,
        transcript=s.transcript,
        window_start=s.window_start,
        messages=s.messages,
        pending_call_ids=list(pending),
    )


def snapshot(
    s: ConversationState,
    status: StatusBoard,
    pending: dict[str, PendingApproval],
    query: StateQuery,
    stream_offset: int,
) -> ConversationSnapshot:
    """What the `state` query answers: the window's messages from `query.offset` on,
    as of stream item `stream_offset`."""
    return ConversationSnapshot(
        conversation_id=s.conversation_id,
        owner=s.owner,
        goal=s.goal.name,
        status=status.status,
        status_detail=status.detail,
        pending_approvals=list(pending.values()),
        usage=s.usage,
        budget=s.options.budget,
        message_count=s.message_count,
        turns=s.turns,
        runs=s.runs,
        model_name=s.model_name,
        offset=query.offset,
        messages=s.messages[max(0, query.offset - s.window_start) :],
        answer=s.answer,
        messages_offset=max(query.offset, s.window_start),
        transcript=s.transcript,
        stream_offset=stream_offset,
    )
