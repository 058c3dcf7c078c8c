"""Reading one conversation whole, from outside: its transcript (the window its
workflow holds plus the older messages in the transcript store, tool results
resolved), the goal spec it runs with, its usage and what its histories record.

Export reads recorded conversations this way, and the compare activity reads the
candidate conversation of an eval the same way, so both sides are read alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client
from temporalio.service import RPCError

from onward.agent.contracts import QUERY_FORK_SOURCE, ForkSource
from onward.agent.messages import Message, ToolResultMessage, Usage
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.evals.format import EvalCase
from onward.evals.histories import HistoryFacts, history_facts


@dataclass
class ConversationRecord:
    conversation_id: str
    source: ForkSource
    transcript: list[Message]
    """Results inline, no references (a record is read elsewhere, without the store)."""
    usage: Usage
    model_name: str | None
    answer: str | None
    facts: HistoryFacts

    def to_case(self) -> EvalCase:
        return EvalCase(
            id=self.conversation_id,
            goal=self.source.goal,
            transcript=self.transcript,
            decisions=self.facts.decisions,
            usage=self.usage,
            model_name=self.model_name,
            reached=self.answer is not None,
            answer=self.answer,
            model_seconds=self.facts.model_seconds,
        )


async def read_conversation(
    client: Client, settings: Settings, conversation_id: str
) -> ConversationRecord:
    """Everything an eval needs of `conversation_id` (running or closed: a query on a
    closed workflow is answered by a worker replaying it).

    Raises:
        ConversationNotFound: No such conversation.
    """
    convs = Conversations(client, settings)
    snap = await convs.snapshot(conversation_id)
    try:
        source = await client.get_workflow_handle(conversation_id).query(
            QUERY_FORK_SOURCE, result_type=ForkSource
        )
    except RPCError as exc:
        raise convs._rpc(conversation_id, exc) from exc
    transcript = [
        m.model_copy(update={"content_ref": None}) if isinstance(m, ToolResultMessage) else m
        for m in snap.messages
    ]
    return ConversationRecord(
        conversation_id=conversation_id,
        source=source,
        transcript=transcript,
        usage=snap.usage,
        model_name=snap.model_name,
        answer=snap.answer,
        facts=await history_facts(client, conversation_id),
    )
