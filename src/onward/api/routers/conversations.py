"""`/v1/conversations`: start, list, read, talk to, approve for, stream and delete."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, get_args
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Header, Query, Response
from fastapi.responses import StreamingResponse

from onward.agent.contracts import Budget, ConversationOptions
from onward.agent.events import EventType
from onward.api.deps import (
    ConversationsDep,
    CurrentUser,
    IndexDep,
    OwnedConversation,
    ReadableConversation,
    ReadableStream,
    SettingsDep,
    StateDep,
    TemporalClientDep,
)
from onward.api.erasing import EraserDep
from onward.api.errors import ApiError, error_responses
from onward.api.schemas import (
    ApprovalRecorded,
    ApprovalRequest,
    BudgetState,
    ConversationCreated,
    ConversationDetail,
    ConversationLinks,
    ConversationList,
    ConversationSummary,
    CreateConversationRequest,
    MessageAccepted,
    RaiseBudgetRequest,
    SendMessageRequest,
)
from onward.api.sse import conversation_sse, resume_offset
from onward.config import Settings
from onward.conversations import ConversationNotFound
from onward.exceptions import InputRejected

router = APIRouter(
    prefix="/v1/conversations",
    tags=["conversations"],
    responses=error_responses(401, 422, 503),
)
_OWNED = error_responses(404)
_INPUT = error_responses(400, 404, 409, 413)
_NO_MESSAGES = 2**31 - 1
"""A transcript offset past any real one, for snapshots that need no messages."""


def workflow_url(settings: Settings, conversation_id: str) -> str:
    """The conversation's workflow page in the Temporal Web UI."""
    namespace = quote(settings.temporal_namespace, safe="")
    return f"{settings.web_ui_url}/namespaces/{namespace}/workflows/{quote(conversation_id)}"


def links(settings: Settings, conversation_id: str) -> ConversationLinks:
    own = f"/v1/conversations/{quote(conversation_id)}"
    return ConversationLinks(
        self=own, events=f"{own}/events", workflow=workflow_url(settings, conversation_id)
    )


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
    responses=error_responses(400, 413),
    summary="Start a conversation",
)
async def create_conversation(
    body: CreateConversationRequest,
    user: CurrentUser,
    convs: ConversationsDep,
    index: IndexDep,
    settings: SettingsDep,
    response: Response,
) -> ConversationCreated:
    """Start a conversation with `goal`, optionally with a first message."""
    message = checked_text(body.message, settings) if body.message is not None else None
    options = ConversationOptions(
        message_policy=body.options.message_policy,
        budget=Budget(**body.options.budget.model_dump()),
    )
    cid = await convs.start(body.goal, owner=user, first_message=message, options=options)
    created = await index.add(cid, user, body.goal, message or "")
    response.headers["Location"] = f"/v1/conversations/{quote(cid)}"
    return ConversationCreated(
        id=cid, goal=body.goal, created_at=created, links=links(settings, cid)
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
    responses=_OWNED,
    summary="Read a conversation",
)
async def get_conversation(
    conversation: ReadableConversation,
    convs: ConversationsDep,
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
    snap = await convs.snapshot(cid, offset)
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
    conversation: OwnedConversation,
    convs: ConversationsDep,
    index: IndexDep,
    settings: SettingsDep,
) -> MessageAccepted:
    """Send a user message; the reply arrives on the event stream."""
    text = checked_text(body.text, settings)
    result = await convs.send(conversation.conversation_id, text)
    if not conversation.title:
        await index.title_if_untitled(conversation.conversation_id, conversation.owner, text)
    return MessageAccepted(index=result.index, queued=result.queued)


@router.post(
    "/{conversation_id}/approvals/{call_id}",
    response_model=ApprovalRecorded,
    responses=_INPUT,
    summary="Approve or reject a tool call",
)
async def decide_approval(
    call_id: str,
    body: ApprovalRequest,
    conversation: OwnedConversation,
    convs: ConversationsDep,
) -> ApprovalRecorded:
    """Decide a pending approval. 409 when it is stale or its arguments changed."""
    await convs.decide(
        conversation.conversation_id, call_id, body.decision, body.args_hash, body.feedback
    )
    return ApprovalRecorded(call_id=call_id, decision=body.decision)


@router.post(
    "/{conversation_id}/budget",
    response_model=BudgetState,
    responses=_INPUT,
    summary="Raise the budget",
)
async def raise_budget(
    body: RaiseBudgetRequest, conversation: OwnedConversation, convs: ConversationsDep
) -> BudgetState:
    """Raise the token and/or cost limit; a paused conversation continues."""
    if body.max_tokens is None and body.max_cost_usd is None:
        raise ApiError(422, "invalid_request", "name a new `max_tokens` or `max_cost_usd`")
    cid = conversation.conversation_id
    await convs.raise_budget(cid, body.max_tokens, body.max_cost_usd)
    snap = await convs.snapshot(cid, offset=_NO_MESSAGES)
    return BudgetState(budget=snap.budget, usage=snap.usage)


def _sse_event(names: list[str], payload: dict[str, Any]) -> dict[str, Any]:
    """One kind of event as OpenAPI 3.2 documents event streams: `data` is JSON text."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"enum": names},
            "id": {"type": "string"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": payload,
            },
        },
    }


def _one_string(name: str) -> dict[str, Any]:
    return {"type": "object", "required": [name], "properties": {name: {"type": "string"}}}


_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`text/event-stream`. Each event's `id` is its stream offset; "
        "`event` is the `ConversationEvent.type` (data: a `ConversationEvent`) or "
        "`delta` (data: a `TokenDelta`). `end` (no id) follows the last event of an "
        "ended conversation; `stream_error` (no id) reports a failure to read the stream. "
        "Comment lines are keep-alives.",
        "content": {
            "text/event-stream": {
                "schema": {
                    "oneOf": [
                        _sse_event(
                            list(get_args(EventType)),
                            {"$ref": "#/components/schemas/ConversationEvent"},
                        ),
                        _sse_event(["delta"], {"$ref": "#/components/schemas/TokenDelta"}),
                        _sse_event(["end"], _one_string("conversation_id")),
                        _sse_event(["stream_error"], _one_string("reason")),
                    ]
                }
            }
        },
    },
    **error_responses(404),
}


@router.get(
    "/{conversation_id}/events",
    response_class=StreamingResponse,
    responses=_SSE_DOC,
    summary="Stream live events (SSE)",
)
async def stream_events(
    conversation: ReadableStream,
    client: TemporalClientDep,
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
    the token as `?token=` here, since `EventSource` cannot send headers.
    """
    body = conversation_sse(
        client,
        conversation.conversation_id,
        resume_offset(last_event_id, after),
        state.api.sse_keepalive_s,
    )
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
