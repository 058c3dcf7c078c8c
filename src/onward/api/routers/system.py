"""`/v1/me` and `/v1/info`: who the caller is, and what this deployment runs."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter

from onward.api.deps import CurrentUser, SettingsDep, StateDep
from onward.api.errors import error_responses
from onward.api.routers.conversations import workflow_url
from onward.api.schemas import Info, Limits, Me, ModelInfo, TemporalInfo
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


@router.get("/info", response_model=Info, summary="Deployment info")
async def info(user: CurrentUser, settings: SettingsDep, state: StateDep) -> Info:
    """The configured model (and whether it is the offline one), Temporal Web UI links
    and request limits, for clients such as the web UI."""
    del user  # authentication only
    model = settings.model.strip()
    return Info(
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
    )
