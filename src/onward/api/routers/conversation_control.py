"""`/v1/conversations/{id}/fork` and `/stop`: branch a conversation, stop its turn.

Included in the conversations router (same prefix, tags and error responses)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Response

from onward.api.deps import (
    ConversationsDep,
    CurrentUser,
    IndexDep,
    SettingsDep,
    StateDep,
    WrittenConversation,
)
from onward.api.errors import error_responses
from onward.api.forks import fork_conversation
from onward.api.idempotency import IdempotencyKey, update_id_for
from onward.api.links import links
from onward.api.quotas import check_open_conversations
from onward.api.schemas import ConversationCreated, ForkRequest, TurnStopped
from onward.api.stopping import stop_turn

router = APIRouter()
_INPUT = error_responses(400, 404, 409, 413, 429)


@router.post(
    "/{conversation_id}/fork",
    status_code=201,
    response_model=ConversationCreated,
    responses=error_responses(400, 404, 409, 413, 429),
    summary="Fork a conversation",
)
async def fork(
    body: ForkRequest,
    conversation: WrittenConversation,
    user: CurrentUser,
    convs: ConversationsDep,
    index: IndexDep,
    settings: SettingsDep,
    state: StateDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ConversationCreated:
    """Start a new conversation, yours, whose transcript is this one's up to `turn`
    turns or message index `at`, with the goal it ran with. Nothing before that point
    runs again (no model call, no tool call); approvals pending there are not carried
    over (the fork's first notice says so). 409 for a point past the transcript's end.
    With an `Idempotency-Key` a retry gets the same fork."""

    async def admit() -> None:
        await check_open_conversations(index, convs, user, state.api.user_max_open_conversations)

    forked = await fork_conversation(
        conversation,
        body,
        user=user,
        key=idempotency_key,
        index=index,
        convs=convs,
        admit=admit,
    )
    cid = forked.conversation_id
    response.headers["Location"] = f"/v1/conversations/{quote(cid)}"
    return ConversationCreated(
        id=cid, goal=forked.goal, created_at=forked.created_at, links=links(settings, cid)
    )


@router.post(
    "/{conversation_id}/stop",
    response_model=TurnStopped,
    responses=_INPUT,
    summary="Stop the turn in progress",
)
async def stop(
    conversation: WrittenConversation,
    convs: ConversationsDep,
    idempotency_key: IdempotencyKey = None,
) -> TurnStopped:
    """Cancel the model call in flight and end the turn; the conversation then waits
    for the next message. `stopped` is false when nothing was in progress."""
    cid = conversation.conversation_id
    update_id = (
        update_id_for("stop", conversation.owner, cid, idempotency_key, "")
        if idempotency_key
        else None
    )
    return await stop_turn(convs, cid, update_id=update_id)
