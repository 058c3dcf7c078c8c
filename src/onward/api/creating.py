"""Starting a conversation so that a crash or a retry can neither hide nor double it.

The order is what makes it safe: (1) write the owner's index row, `pending`; (2)
start the workflow, using the existing one if its id has one; (3) mark the row
`active`. An API killed after (1) leaves a row and maybe a workflow; a retry with
the same `Idempotency-Key` derives the same id, finds the row, and runs (2) and (3)
again, which start nothing new. Without a retry, `onward.api.reconcile` settles the
row later. No workflow is ever started without a row naming its owner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from onward.agent.contracts import Budget, ConversationOptions
from onward.api.idempotency import conversation_id_for, fingerprint
from onward.api.index import ACTIVE, ConversationIndex, Reservation
from onward.api.schemas import CreateConversationRequest
from onward.client.conversations import Conversations, new_conversation_id
from onward.exceptions import ApiError


@dataclass(frozen=True)
class Created:
    conversation_id: str
    created_at: datetime


async def create(
    body: CreateConversationRequest,
    message: str | None,
    *,
    user: str,
    key: str | None,
    index: ConversationIndex,
    convs: Conversations,
    admit: Callable[[], Awaitable[None]],
) -> Created:
    """Create (or, for a repeated key, find) the conversation `body` asks for.

    `admit` checks the user's quota; only a conversation that is new counts against
    it, so a retry of a create that succeeded still gets its answer.
    """
    convs.catalog.startable(body.goal)  # an unknown goal is refused before anything is written
    cid = conversation_id_for(user, key) if key else new_conversation_id()
    reserved = await reserve(
        index, cid, user, body.goal, message or "", fingerprint(body), admit, what="conversation"
    )
    row = reserved.conversation
    if reserved.state == ACTIVE:
        return Created(cid, row.created_at)
    options = ConversationOptions(
        message_policy=body.options.message_policy,
        budget=Budget(**body.options.budget.model_dump()),
    )
    await convs.start(
        body.goal,
        owner=user,
        first_message=message,
        options=options,
        conversation_id=cid,
        existing_ok=True,
    )
    await index.activate(cid)
    return Created(cid, row.created_at)


async def reserve(
    index: ConversationIndex,
    cid: str,
    user: str,
    goal: str,
    title: str,
    request_hash: str,
    admit: Callable[[], Awaitable[None]],
    *,
    what: str,
) -> Reservation:
    """The index row for a conversation about to start (create or fork): written now
    (pending), or the one an earlier request with the same Idempotency-Key left, checked
    to be that same request. `admit` (the user's quota) runs only for a new row.

    Raises:
        ApiError: The id is another user's, the key was used for another request, or
            what it made has been deleted.
    """
    if not await index.has_row(cid):
        await admit()
    reserved = await index.reserve(cid, user, goal, title, request_hash=request_hash)
    if reserved.fresh:
        return reserved
    if reserved.conversation.owner != user:  # a random id collided with another user's
        raise ApiError(409, "conflict", "that conversation id is taken; retry")
    if reserved.request_hash != request_hash:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request; use a new key",
        )
    if reserved.deleted:
        raise ApiError(
            409, "input_rejected", f"the {what} made with this Idempotency-Key has been deleted"
        )
    return reserved
