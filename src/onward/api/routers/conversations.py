"""`/v1/conversations`: start, list, read, talk to, approve for, stream and delete."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Header, Query, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from temporalio.service import RPCError

from onward.api.creating import create
from onward.api.deps import (
    ConversationsDep,
    CurrentUser,
    IndexDep,
    OwnedConversation,
    ReadableConversation,
    ReadableStream,
    SettingsDep,
    StateDep,
    StreamUser,
    TemporalClientDep,
    WritingUser,
    WrittenConversation,
)
from onward.api.erasure import EraserDep
from onward.api.errors import ApiError, error_responses, not_found
from onward.api.idempotency import IdempotencyKey, fingerprint, message_id_for, update_id_for
from onward.api.links import links, workflow_url
from onward.api.quotas import check_open_conversations
from onward.api.routers import conversation_control
from onward.api.schemas import (
    ApprovalRecorded,
    ApprovalRequest,
    BudgetState,
    ConversationCreated,
    ConversationDetail,
    ConversationEnded,
    ConversationList,
    ConversationSummary,
    CreateConversationRequest,
    EndRequest,
    MessageAccepted,
    RaiseBudgetRequest,
    SendMessageRequest,
)
from onward.api.sse import conversation_sse, resume_offset
from onward.api.sse_doc import SSE_DOC
from onward.api.worker_watch import NO_WORKER_STATUSES, WORKER_DOWN_DETAIL
from onward.client.conversations import ConversationNotFound
from onward.config import Settings
from onward.exceptions import InputRejected

__all__ = ["router", "workflow_url"]

router = APIRouter(
    prefix="/v1/conversations",
    tags=["conversations"],
    responses=error_responses(401, 422, 503),
)
_OWNED = error_responses(404)
_INPUT = error_responses(400, 404, 409, 413, 429)
_NO_MESSAGES = 2**31 - 1
"""A transcript offset past any real one, for snapshots that need no messages."""
SNAPSHOT_TIMEOUT_S = 10.0
"""How long reading a conversation waits for a worker to answer: only a worker can
(Temporal would hold the request about 30 s before saying none polls), and a page
that loads a conversation should say promptly that no worker runs."""


def checked_text(text: str, settings: Settings) -> str:
    """`text` if it is a message the agent may receive; 422 with the reason otherwise."""
    if not text.strip():
        raise ApiError(422, "empty_message", "the message is empty")
    if len(text) > settings.max_message_chars:
        raise ApiError(
            422,
            "message_too_long",
            f"the message has {len(text)} characters; the limit is {settings.max_message_chars}",
        )
    return text


@router.post(
    "",
    status_code=201,
    response_model=ConversationCreated,
    responses=error_responses(400, 409, 413, 429),
    summary="Start a conversation",
)
async def create_conversation(
    body: CreateConversationRequest,
    user: WritingUser,
    convs: ConversationsDep,
    index: IndexDep,
    settings: SettingsDep,
    state: StateDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> ConversationCreated:
    """Start a conversation with `goal`, optionally with a first message.

    With an `Idempotency-Key`, a retry of the same request returns the same
    conversation (never a second one); the same key with another body is a 422.
    """
    message = checked_text(body.message, settings) if body.message is not None else None

    async def admit() -> None:
        await check_open_conversations(index, convs, user, state.api.user_max_open_conversations)

    created = await create(
        body, message, user=user, key=idempotency_key, index=index, convs=convs, admit=admit
    )
    cid = created.conversation_id
    response.headers["Location"] = f"/v1/conversations/{quote(cid)}"
    return ConversationCreated(
        id=cid, goal=body.goal, created_at=created.created_at, links=links(settings, cid)
    )


@router.get("", response_model=ConversationList, summary="List my conversations")
async def list_conversations(
    user: CurrentUser,
    index: IndexDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 100,
) -> ConversationList:
    """The caller's conversations, newest first (deleted ones excluded)."""
    rows = await index.list_owned(user, limit)
    return ConversationList(
        conversations=[
            ConversationSummary(
                id=r.conversation_id,
                goal=r.goal,
                title=r.title,
                created_at=r.created_at,
                links=links(settings, r.conversation_id),
            )
            for r in rows
        ]
    )


@router.get(
    "/{conversation_id}",
    response_model=ConversationDetail,
    responses=error_responses(404, 503),
    summary="Read a conversation",
)
async def get_conversation(
    conversation: ReadableConversation,
    convs: ConversationsDep,
    index: IndexDep,
    settings: SettingsDep,
    offset: Annotated[
        int, Query(ge=0, description="Return transcript messages from this index on.")
    ] = 0,
) -> ConversationDetail:
    """Status, pending approvals, usage, budget and the transcript from `offset`.

    Also answers for the caller's child conversations (a plan's steps, ids
    `<parent>~<step key>`), read-only: their approvals are decided on the parent.
    """
    cid = conversation.conversation_id
    try:
        snap = await convs.snapshot(cid, offset, rpc_timeout_s=SNAPSHOT_TIMEOUT_S)
    except RPCError as exc:
        if exc.status in NO_WORKER_STATUSES:
            raise ApiError(503, "worker_unavailable", WORKER_DOWN_DETAIL) from exc
        raise
    if snap.status == "ended" and conversation.parent_id is None:
        await index.mark_closed([cid])  # no longer counts against the owner's cap
    fields: dict[str, Any] = dict(snap)
    return ConversationDetail(
        **fields,
        title=conversation.title,
        created_at=conversation.created_at,
        links=links(settings, cid),
    )


@router.delete(
    "/{conversation_id}",
    status_code=204,
    response_class=Response,
    responses=_OWNED,
    summary="Delete a conversation",
)
async def delete_conversation(
    conversation: OwnedConversation,
    convs: ConversationsDep,
    index: IndexDep,
    user: CurrentUser,
    eraser: EraserDep,
    background: BackgroundTasks,
) -> None:
    """End the conversation if it is running and remove it from the API for good; its
    Temporal history, and its sub-agents', is erased once it has closed."""
    cid = conversation.conversation_id
    # Already ended or gone from Temporal: deleting it is still what the user wants.
    with contextlib.suppress(InputRejected, ConversationNotFound):
        await convs.end(cid, "deleted by its owner")
    await index.mark_deleted(cid, user)
    background.add_task(eraser.sweep)


@router.post(
    "/{conversation_id}/messages",
    status_code=202,
    response_model=MessageAccepted,
    responses=_INPUT,
    summary="Send a message",
)
async def send_message(
    body: SendMessageRequest,
    conversation: WrittenConversation,
    convs: ConversationsDep,
    index: IndexDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> MessageAccepted:
    """Send a user message; the reply arrives on the event stream.

    Accepted means kept: the agent takes it in arrival order, or, if the
    conversation ends first, a notice names its `id`. With an `Idempotency-Key` a
    retry gets the same `id` and the message is taken once.
    """
    text = checked_text(body.text, settings)
    cid = conversation.conversation_id
    message_id = (
        message_id_for(conversation.owner, cid, idempotency_key) if idempotency_key else None
    )
    sent = await convs.send(cid, text, message_id=message_id)
    if not conversation.title:
        await index.title_if_untitled(cid, conversation.owner, text)
    return MessageAccepted(id=sent.message_id)


@router.post(
    "/{conversation_id}/approvals/{call_id}",
    response_model=ApprovalRecorded,
    responses=_INPUT,
    summary="Approve or reject a tool call",
)
async def decide_approval(
    call_id: str,
    body: ApprovalRequest,
    conversation: WrittenConversation,
    convs: ConversationsDep,
    idempotency_key: IdempotencyKey = None,
) -> ApprovalRecorded:
    """Decide a pending approval. 409 when it is stale, its arguments changed, or it
    was decided otherwise already (the body then names the `decision` that stands)."""
    cid = conversation.conversation_id
    update_id = (
        update_id_for(
            "approval", conversation.owner, cid, idempotency_key, f"{call_id}:{fingerprint(body)}"
        )
        if idempotency_key
        else None
    )
    await convs.decide(
        cid, call_id, body.decision, body.args_hash, body.feedback, update_id=update_id
    )
    return ApprovalRecorded(call_id=call_id, decision=body.decision)


@router.post(
    "/{conversation_id}/budget",
    response_model=BudgetState,
    responses=_INPUT,
    summary="Raise the budget",
)
async def raise_budget(
    body: RaiseBudgetRequest,
    conversation: WrittenConversation,
    convs: ConversationsDep,
    idempotency_key: IdempotencyKey = None,
) -> BudgetState:
    """Raise the token and/or cost limit; a paused conversation continues."""
    if body.max_tokens is None and body.max_cost_usd is None:
        raise ApiError(422, "invalid_request", "name a new `max_tokens` or `max_cost_usd`")
    cid = conversation.conversation_id
    update_id = (
        update_id_for("budget", conversation.owner, cid, idempotency_key, fingerprint(body))
        if idempotency_key
        else None
    )
    await convs.raise_budget(cid, body.max_tokens, body.max_cost_usd, update_id=update_id)
    snap = await convs.snapshot(cid, offset=_NO_MESSAGES)
    return BudgetState(budget=snap.budget, usage=snap.usage)


@router.post(
    "/{conversation_id}/end",
    response_model=ConversationEnded,
    responses=_INPUT,
    summary="End a conversation",
)
async def end_conversation(
    conversation: WrittenConversation,
    convs: ConversationsDep,
    index: IndexDep,
    body: EndRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> ConversationEnded:
    """End the conversation (it stays readable; DELETE also erases it). Ending one
    that has ended already is not an error: the answer is the same."""
    cid = conversation.conversation_id
    reason = (body or EndRequest()).reason
    update_id = (
        update_id_for("end", conversation.owner, cid, idempotency_key, reason)
        if idempotency_key
        else None
    )
    with contextlib.suppress(InputRejected):  # ended already: that is what was asked
        await convs.end(cid, reason, update_id=update_id)
    await index.mark_closed([cid])
    return ConversationEnded(id=cid)


@router.get(
    "/{conversation_id}/events",
    response_class=StreamingResponse,
    responses=SSE_DOC,
    summary="Stream live events (SSE)",
)
async def stream_events(
    conversation: ReadableStream,
    user: StreamUser,
    client: TemporalClientDep,
    convs: ConversationsDep,
    state: StateDep,
    after: Annotated[
        int | None, Query(ge=-1, description="Send only events with a larger offset.")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", description="Sent by reconnecting SSE clients."),
    ] = None,
) -> StreamingResponse:
    """The conversation's events from the start, or after `Last-Event-ID` / `after`.

    Ends when the conversation has ended and its events were sent. Browsers may pass
    the token as `?token=` here, since `EventSource` cannot send headers. Every
    client of one conversation is served by one reader of its stream; a user may
    hold `ONWARD_USER_MAX_STREAMS` streams open (429 above).
    """
    cid = conversation.conversation_id
    if not await convs.exists(cid):  # e.g. a child step that was never started
        raise not_found(cid)
    slot = state.streams.acquire(user)
    body = conversation_sse(
        state.hub,
        client,
        cid,
        resume_offset(last_event_id, after),
        state.api.sse_keepalive_s,
        on_close=slot.release,
    )
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        # Also when the body never ran (the client left before it started).
        background=BackgroundTask(slot.release),
    )


router.include_router(conversation_control.router)
