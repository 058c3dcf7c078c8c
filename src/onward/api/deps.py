"""What routes depend on, as `Annotated` aliases: the user, Temporal, the index.

Routes declare `user: CurrentUser`, `convs: ConversationsDep`,
`conversation: OwnedConversation` … and never read `app.state` themselves.

Access rule: a user reaches the conversations the API started for them
(`OwnedConversation`, every route). The read-only routes (`ReadableConversation`: a
conversation's state and its event stream) also reach their child conversations, ids
`<parent>~<step key>` started by the parent's workflow, which have no index row of
their own; everyone else gets the same 404 as for a missing conversation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from onward.api.auth import TokenBook
from onward.api.errors import not_found
from onward.api.index import ConversationIndex, IndexedConversation
from onward.api.quotas import StreamSlots, WriteRate
from onward.api.session import COOKIE_NAME, SAFE_METHODS, same_origin, user_for_cookie
from onward.api.settings import ApiSettings
from onward.api.stream_hub import StreamHub
from onward.api.temporal import TemporalConnection
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.exceptions import ApiError
from onward.goals.catalog import GoalCatalog


@dataclass
class ApiState:
    """Everything the routes share, kept on `app.state.api`."""

    settings: Settings
    api: ApiSettings
    catalog: GoalCatalog
    """The goals conversations may be started with."""
    tokens: TokenBook
    index: ConversationIndex
    temporal: TemporalConnection
    injected_client: Client | None = None
    """A client the embedding code already connected (tests, one-process setups)."""
    hub: StreamHub = field(default_factory=StreamHub)
    """The one reader of each conversation's event stream in this process."""
    writes: WriteRate = field(default_factory=lambda: WriteRate(0))
    streams: StreamSlots = field(default_factory=lambda: StreamSlots(0))
    _conversations: Conversations | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.writes = WriteRate(self.api.user_writes_per_minute)
        self.streams = StreamSlots(self.api.user_max_streams)

    async def client(self) -> Client:
        """The Temporal client: the injected one, or the lazily made connection."""
        if self.injected_client is not None:
            return self.injected_client
        return await self.temporal.client()

    async def conversations(self) -> Conversations:
        client = await self.client()
        # The lazy connection is re-made after a failure; follow it.
        if self._conversations is None or self._conversations.client is not client:
            self._conversations = Conversations(client, self.settings, self.catalog)
        return self._conversations

    async def reachable(self) -> tuple[bool, str | None]:
        """Whether Temporal answers a health check, and why not."""
        if self.injected_client is None:
            return await self.temporal.reachable()
        try:
            ok = await self.injected_client.service_client.check_health()
        except Exception as exc:  # any failure means "not reachable", with its reason
            return False, f"{type(exc).__name__}: {exc}"
        return ok, None if ok else "health check returned not serving"


def get_state(request: Request) -> ApiState:
    state = request.app.state.api
    assert isinstance(state, ApiState)
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


def app_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


def app_catalog(state: StateDep) -> GoalCatalog:
    return state.catalog


CatalogDep = Annotated[GoalCatalog, Depends(app_catalog)]

_bearer = HTTPBearer(
    auto_error=False, description="A token from `ONWARD_API_TOKENS` or `<data_dir>/api-token`."
)
_query_token = APIKeyQuery(
    name="token",
    auto_error=False,
    description="The bearer token as a query parameter, for `EventSource`, which cannot "
    "send headers. Accepted on the events route only.",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "send `Authorization: Bearer <token>` with a valid token "
        "(the local one is in `<data_dir>/api-token`; `onward up` prints a sign-in URL)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _cross_site() -> ApiError:
    return ApiError(
        403,
        "cross_site_request",
        "a request that changes something is accepted with the session cookie only "
        "from this site's own pages; API clients send `Authorization: Bearer <token>`",
    )


def _authenticate(tokens: TokenBook, token: str | None, request: Request | None = None) -> str:
    if token is None and request is not None:
        # No bearer token: the web page's session cookie, if the request is its own.
        user = user_for_cookie(tokens, request.cookies.get(COOKIE_NAME))
        if user is not None:
            if request.method not in SAFE_METHODS and not same_origin(request):
                raise _cross_site()
            return user
    user = tokens.user_for(token)
    if user is None:
        raise _unauthorized()
    return user


async def current_user(state: StateDep, credentials: BearerCredentials, request: Request) -> str:
    """The user named by the `Authorization: Bearer` token, or by the web page's
    session cookie (`onward.api.session`)."""
    return _authenticate(state.tokens, credentials.credentials if credentials else None, request)


async def stream_user(
    state: StateDep,
    credentials: BearerCredentials,
    query_token: Annotated[str | None, Depends(_query_token)],
    request: Request,
) -> str:
    """Like `current_user`, but also accepts `?token=` (`EventSource` clients that
    hold a token; the web page uses its cookie)."""
    token = credentials.credentials if credentials else query_token
    return _authenticate(state.tokens, token, request)


CurrentUser = Annotated[str, Depends(current_user)]
StreamUser = Annotated[str, Depends(stream_user)]


async def writing_user(state: StateDep, user: CurrentUser) -> str:
    """`current_user`, counted against their write rate (429 above it)."""
    state.writes.take(user)
    return user


WritingUser = Annotated[str, Depends(writing_user)]
"""The caller of a POST: authenticated, then rate-limited."""


async def get_index(state: StateDep) -> ConversationIndex:
    return state.index


IndexDep = Annotated[ConversationIndex, Depends(get_index)]


def _unavailable(exc: Exception) -> ApiError:
    detail = str(exc) or type(exc).__name__
    return ApiError(503, "temporal_unavailable", f"Temporal is not reachable: {detail}")


async def get_client(state: StateDep) -> Client:
    try:
        return await state.client()
    except Exception as exc:  # connection failures of any kind: tell the caller why
        raise _unavailable(exc) from exc


async def get_conversations(state: StateDep) -> Conversations:
    try:
        return await state.conversations()
    except Exception as exc:  # connection failures of any kind: tell the caller why
        raise _unavailable(exc) from exc


TemporalClientDep = Annotated[Client, Depends(get_client)]
ConversationsDep = Annotated[Conversations, Depends(get_conversations)]
ConversationId = Annotated[str, Path(description="The conversation (= workflow) id.")]


def _or_404(found: IndexedConversation | None, conversation_id: str) -> IndexedConversation:
    if found is None:
        raise not_found(conversation_id)
    return found


async def owned_conversation(
    conversation_id: ConversationId, user: CurrentUser, index: IndexDep
) -> IndexedConversation:
    """The conversation if the caller owns it; 404 otherwise (also for other users')."""
    return _or_404(await index.get(conversation_id, user), conversation_id)


async def written_conversation(
    conversation_id: ConversationId, user: WritingUser, index: IndexDep
) -> IndexedConversation:
    """`owned_conversation` for a POST (the caller's write rate counts it)."""
    return _or_404(await index.get(conversation_id, user), conversation_id)


async def readable_conversation(
    conversation_id: ConversationId, user: CurrentUser, index: IndexDep
) -> IndexedConversation:
    """`owned_conversation`, or a child conversation of one the caller owns (see
    `ConversationIndex.get_readable`); for the read-only routes."""
    return _or_404(await index.get_readable(conversation_id, user), conversation_id)


async def readable_stream(
    conversation_id: ConversationId, user: StreamUser, index: IndexDep
) -> IndexedConversation:
    """`readable_conversation` for the events route (token also from `?token=`)."""
    return _or_404(await index.get_readable(conversation_id, user), conversation_id)


OwnedConversation = Annotated[IndexedConversation, Depends(owned_conversation)]
WrittenConversation = Annotated[IndexedConversation, Depends(written_conversation)]
"""The caller's conversation, for routes that send it input."""
ReadableConversation = Annotated[IndexedConversation, Depends(readable_conversation)]
"""The caller's conversation or one of its children: only for routes that read."""
ReadableStream = Annotated[IndexedConversation, Depends(readable_stream)]
