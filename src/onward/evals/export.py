"""`onward eval export`: recorded conversations to an eval-set file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from temporalio.client import Client

from onward.config import Settings
from onward.evals.format import EvalCase, EvalSet
from onward.evals.reading import read_conversation


async def export_conversations(
    client: Client,
    settings: Settings,
    conversation_ids: Sequence[str],
    *,
    name: str = "eval set",
    description: str = "",
) -> EvalSet:
    """An eval set of `conversation_ids` as they are now (running or ended).

    Raises:
        ConversationNotFound: One of them does not exist.
    """
    now = datetime.now(UTC)
    cases: list[EvalCase] = []
    for cid in conversation_ids:
        record = await read_conversation(client, settings, cid)
        cases.append(record.to_case().model_copy(update={"recorded_at": now}))
    return EvalSet(name=name, description=description, cases=cases)
