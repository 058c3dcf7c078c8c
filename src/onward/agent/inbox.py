"""The conversation's inbox: user messages accepted while the agent works, taken in order.

A message arrives by signal or update at any time; one that arrives during a turn
waits here (or, under the `interrupt` policy, supersedes the model call in flight).
Every message gets an id, and an id seen recently is taken once.
"""

from __future__ import annotations

from temporalio import workflow

from onward.agent.contracts import ConversationState, SendMessage, SendMessageResult
from onward.agent.events import MessageQueued
from onward.agent.messages import NoticeMessage, UserMessage
from onward.agent.publisher import Publisher

SEEN_MESSAGE_IDS = 256
"""Message ids remembered for de-duplication (a retry comes soon after the original)."""


def quoted(text: str, limit: int = 200) -> str:
    return f"“{text if len(text) <= limit else text[: limit - 1] + '…'}”"


class Inbox:
    """Accepts and hands out one conversation's user messages."""

    def __init__(self, state: ConversationState, out: Publisher) -> None:
        self._s = state
        self._out = out
        self.interrupt = False
        """Set when a message arrived under the `interrupt` policy during a turn."""

    def take(self) -> SendMessage:
        """The oldest waiting message, with an id (every message gets one, so a client
        can match what it sent; plain strings were recorded by older versions)."""
        item = self._s.inbox.pop(0)
        taken = item if isinstance(item, SendMessage) else SendMessage(text=item)
        if taken.message_id is None:
            taken = taken.model_copy(update={"message_id": f"m-{workflow.uuid4().hex[:16]}"})
        return taken

    def accept(self, msg: SendMessage, in_turn: bool) -> SendMessageResult:
        s = self._s
        mid = msg.message_id
        if mid is not None and (
            mid in s.seen_message_ids
            or any(isinstance(i, SendMessage) and i.message_id == mid for i in s.inbox)
        ):
            return SendMessageResult(queued=True, message_id=mid)  # a re-send: taken once
        if mid is not None:
            s.seen_message_ids = [*s.seen_message_ids, mid][-SEEN_MESSAGE_IDS:]
        idle = not in_turn and not s.inbox
        s.inbox.append(msg)
        if not idle:
            self._out.emit(MessageQueued(detail=msg.text, message_id=mid))
            if s.options.message_policy == "interrupt":
                self.interrupt = True
        # When idle the loop takes it next, so its position is known now.
        return SendMessageResult(
            index=s.message_count if idle else None, queued=not idle, message_id=mid
        )

    def take_interrupting(self) -> None:
        """Under the `interrupt` policy, move waiting messages into the transcript now:
        the next model call sees them."""
        if self._s.options.message_policy == "interrupt":
            while self._s.inbox:
                taken = self.take()
                self._out.say(UserMessage(text=taken.text, id=taken.message_id))
        self.interrupt = False

    def report_unread(self) -> None:
        """Say which accepted messages the agent will never read: the sender learns it."""
        while self._s.inbox:
            unread = self.take()
            self._out.say(
                NoticeMessage(
                    text="Not processed, because the conversation ended first: "
                    f"{quoted(unread.text)}",
                    level="warning",
                )
            )
