"""`/v1/me`, `/v1/info` and `/session`: who the caller is, what this deployment runs
(and the words its events use), and the web page's sign-in."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, Field

from onward.agent.contracts import MessagePolicy, Status
from onward.agent.events import EventType
from onward.agent.messages import NoticeLevel
from onward.api.deps import CurrentUser, SettingsDep, StateDep
from onward.api.errors import ApiError, ErrorBody, error_responses
from onward.api.routers.conversations import workflow_url
from onward.api.schemas import Info, Limits, Me, ModelInfo, TemporalInfo
from onward.api.session import COOKIE_NAME, issue, same_origin
from onward.config import OFFLINE_MODEL
from onward.models.factory import describe_model
from onward.redaction import mask_urls, public_url

router = APIRouter(prefix="/v1", tags=["system"], responses=error_responses(401))


def _version() -> str:
    try:
        return version("onward")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


@router.get("/me", response_model=Me, summary="Who am I")
async def me(user: CurrentUser) -> Me:
    """The user the bearer token belongs to."""
    return Me(user=user)


STATUS_WORDS: dict[str, str] = {
    "waiting_for_user": "waiting for you",
    "thinking": "thinking…",
    "retrying_model": "retrying the model",
    "running_tools": "running tools",
    "waiting_for_approval": "waiting for approval",
    "delegating": "agents working",
    "budget_exhausted": "budget reached",
    "ended": "ended",
}
"""Each `Status` in words for people (a unit test checks that none is missing)."""
BUSY_STATUSES = ("thinking", "retrying_model", "running_tools", "delegating")
"""Statuses of a turn in progress: the ones a stop request can end."""
STREAM_ONLY_EVENTS = ("delta", "end", "stream_error", "worker")
"""SSE event names that are not a `ConversationEvent.type`: token text, the stream's
end, a failure to read it, and whether a worker polls the conversation's queue."""


class Vocabulary(BaseModel):
    """The words the event stream and the conversation state use, from the same
    definitions the server uses, so a client's copy cannot drift."""

    event_types: list[str]
    """`ConversationEvent.type` values (the SSE `event` names of durable events)."""
    stream_events: list[str]
    """The other SSE event names (`delta`, `end`, `stream_error`, `worker`)."""
    statuses: list[str]
    status_words: dict[str, str]
    """Each status as the UI shows it."""
    busy_statuses: list[str]
    """Statuses of a turn in progress (the UI offers to stop it)."""
    notice_levels: list[str]
    message_policies: list[str]


def vocabulary() -> Vocabulary:
    """The event names, statuses (with their words) and notice levels."""
    return Vocabulary(
        event_types=list(get_args(EventType)),
        stream_events=list(STREAM_ONLY_EVENTS),
        statuses=list(get_args(Status)),
        status_words={str(s): STATUS_WORDS.get(str(s), str(s)) for s in get_args(Status)},
        busy_statuses=list(BUSY_STATUSES),
        notice_levels=list(get_args(NoticeLevel)),
        message_policies=list(get_args(MessagePolicy)),
    )


class DeploymentInfo(Info):
    vocabulary: Vocabulary
    """The words the event stream uses (`Vocabulary`)."""


@router.get("/info", response_model=DeploymentInfo, summary="Deployment info")
async def info(user: CurrentUser, settings: SettingsDep, state: StateDep) -> DeploymentInfo:
    """The configured model (and whether it is the offline one), Temporal Web UI links
    request limits, and the words of the event stream, for clients such as the web
    UI."""
    del user  # authentication only
    model = settings.model.strip()
    return DeploymentInfo(
        version=_version(),
        model=ModelInfo(
            name=model,
            description=mask_urls(describe_model(settings)),
            offline=model == OFFLINE_MODEL,
        ),
        temporal=TemporalInfo(
            namespace=settings.temporal_namespace,
            web_ui_url=public_url(settings.web_ui_url),
            workflow_url_template=workflow_url(settings, "{id}").replace("%7Bid%7D", "{id}"),
        ),
        limits=Limits(
            max_message_chars=settings.max_message_chars,
            max_body_bytes=state.api.max_body_bytes,
        ),
        vocabulary=vocabulary(),
    )


class SignIn(BaseModel):
    token: str = Field(min_length=1, max_length=500, description="An API token.")


_CROSS_SITE_DOC: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "The request came from another site's page."}
}
_SIGN_IN_DOC = {**_CROSS_SITE_DOC, **error_responses(422)}


def _not_this_site() -> ApiError:
    return ApiError(403, "cross_site_request", "sign in from this site's own page")


session_router = APIRouter(tags=["session"])
"""The browser's sign-in, outside `/v1`: it takes a token in its body instead of a
header, and `/v1` is the bearer-token API."""


@session_router.post(
    "/session",
    response_model=Me,
    summary="Sign a browser in",
    responses=_SIGN_IN_DOC,
)
async def sign_in(
    request: Request,
    response: Response,
    state: StateDep,
    body: Annotated[SignIn, Body()],
) -> Me:
    """Exchange a token for an HttpOnly, SameSite=Strict session cookie: the web page
    then holds no token in script-readable storage or in any URL."""
    if not same_origin(request):
        raise _not_this_site()
    user = state.tokens.user_for(body.token)
    if user is None:
        raise ApiError(401, "unauthorized", "that token is not valid")
    cookie = issue(body.token, user)
    response.set_cookie(
        COOKIE_NAME,
        cookie.value,
        max_age=cookie.max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return Me(user=user)


@session_router.delete(
    "/session", status_code=204, summary="Sign a browser out", responses=_CROSS_SITE_DOC
)
async def sign_out(request: Request) -> Response:
    """Clear the session cookie."""
    if not same_origin(request):
        raise _not_this_site()
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response
