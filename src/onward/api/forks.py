"""Forking a conversation over the API, as safe against a crash or a retry as a create.

The same order as `onward.api.creating`: the owner's index row first (`pending`),
then the workflow (an existing one with the id is the one asked for), then the row
`active`. With an `Idempotency-Key` the fork's id derives from the key, the caller and
the source, so a retry finds the row and the workflow and starts nothing new; a row
left pending by a killed API is settled by `onward.api.reconcile` like a create's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from onward.api.creating import reserve
from onward.api.errors import ApiError
from onward.api.idempotency import fingerprint
from onward.api.index import ACTIVE, ConversationIndex, IndexedConversation
from onward.api.schemas import ForkRequest
from onward.client.conversations import Conversations, new_conversation_id
from onward.client.forking import fork_point, read_source, start_fork
from onward.exceptions import InputRejected


@dataclass(frozen=True)
class Forked:
    conversation_id: str
    goal: str
    created_at: datetime


def fork_id_for(user: str, source_id: str, key: str) -> str:
    """The conversation id a fork of `source_id` with `key` makes for `user`."""
    digest = hashlib.sha256("\0".join(("fork", user, source_id, key)).encode()).hexdigest()
    return f"conv-{digest[:24]}"


def _title(source: IndexedConversation) -> str:
    return f"Fork of {source.title}" if source.title else "Fork"


async def fork_conversation(
    source: IndexedConversation,
    body: ForkRequest,
    *,
    user: str,
    key: str | None,
    index: ConversationIndex,
    convs: Conversations,
    admit: Callable[[], Awaitable[None]],
) -> Forked:
    """Fork `source` (the caller's) at the point `body` names.

    Raises:
        ApiError: 409 for a point outside the transcript or when the fork made with
            this key was deleted; 422 for a key reused for another request.
    """
    view = await read_source(convs, source.conversation_id)
    try:
        point = fork_point(view.transcript, turn=body.turn, at=body.at)
    except InputRejected as exc:
        # The request is well-formed; the conversation is not that long (yet): state.
        raise ApiError(409, "invalid_fork_point", exc.reason) from exc
    cid = fork_id_for(user, source.conversation_id, key) if key else new_conversation_id()
    reserved = await reserve(
        index, cid, user, source.goal, _title(source), fingerprint(body), admit, what="fork"
    )
    row = reserved.conversation
    if reserved.state == ACTIVE:
        return Forked(cid, row.goal, row.created_at)
    await start_fork(convs, view, point, owner=user, conversation_id=cid)
    await index.activate(cid)
    return Forked(cid, row.goal, row.created_at)
