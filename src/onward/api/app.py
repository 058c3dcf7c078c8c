"""The FastAPI application factory: `/v1` API, live events, web UI and `/healthz`."""

from __future__ import annotations

import asyncio
import copy
import importlib
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import TypeAdapter
from starlette.responses import Response
from starlette.types import Scope
from temporalio.client import Client
from uvicorn.config import LOGGING_CONFIG

from onward.agent.events import EVENT_ADAPTER, TokenDelta
from onward.api.auth import token_book
from onward.api.deps import ApiState
from onward.api.erasure import Eraser
from onward.api.errors import install_error_handlers
from onward.api.index import ConversationIndex
from onward.api.limits import BodyLimitMiddleware
from onward.api.reconcile import reconcile_forever
from onward.api.routers import conversations, goals, system
from onward.api.schemas import Health, TemporalHealth
from onward.api.settings import ApiSettings
from onward.api.temporal import TemporalConnection
from onward.config import Settings, get_settings
from onward.exceptions import UserError
from onward.goals.catalog import GoalCatalog
from onward.redaction import RedactingFilter

WEB_DIR = Path(str(files("onward").joinpath("web")))
# The page runs only its own script and talks only to its own origin: even text that
# slipped past escaping could not run inline script or send data elsewhere. No referrer,
# so a sign-in `?token=` never leaks through a followed link.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
PAGE_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "no-store"}


class _StaticFiles(StaticFiles):
    """The UI's files with the page's security headers: `/static/index.html` is the
    same page as `/`, and must not be framable or run others' script either."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        return response


def create_app(
    settings: Settings | None = None,
    *,
    client: Client | None = None,
    api_settings: ApiSettings | None = None,
    catalog: GoalCatalog | None = None,
) -> FastAPI:
    """Build the app.

    Args:
        settings: Process settings; default from the environment.
        client: An already-connected Temporal client to use; when None, the app
            connects lazily to the configured Temporal (and `/healthz` reports
            whether that works).
        api_settings: API-only settings (tokens, CORS, limits); default from the
            environment.
        catalog: The goals conversations may be started with; by default the goals
            `GoalCatalog.discover` finds (entry points and `settings.goal_modules`).
    """
    settings = settings or get_settings()
    api = api_settings or ApiSettings()
    temporal = TemporalConnection(settings)
    catalog = catalog or GoalCatalog.discover(settings.goal_modules)
    state = ApiState(
        settings=settings,
        api=api,
        catalog=catalog,
        tokens=token_book(api, settings.data_dir),
        index=ConversationIndex(settings.data_dir / "api.sqlite"),
        temporal=temporal,
        injected_client=client,
    )
    eraser = Eraser(state)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncGenerator[None]:
        # Deletions whose erasure, and creates whose start, did not finish before the
        # API last stopped.
        background = [
            asyncio.create_task(eraser.sweep()),
            asyncio.create_task(
                reconcile_forever(state, every_s=max(5.0, api.pending_create_grace_s))
            ),
        ]
        yield
        for task in background:
            task.cancel()
        await state.hub.close()

    app = FastAPI(
        title="onward",
        version="0.1.0",
        description="Durable AI agents on Temporal.",
        lifespan=lifespan,
    )
    app.state.eraser = eraser
    app.state.api = state

    install_error_handlers(app)
    # Added first = innermost: CORS wraps the limit so a 413 still carries CORS headers.
    app.add_middleware(BodyLimitMiddleware, max_bytes=api.max_body_bytes)
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["Location"],
        )
    for module in (conversations, goals, system):
        app.include_router(module.router)
    app.include_router(system.session_router)
    for router in contributed_routers(catalog):
        app.include_router(router)

    @app.get(
        "/healthz",
        tags=["health"],
        response_model=Health,
        responses={503: {"model": Health, "description": "Temporal is not reachable."}},
    )
    async def healthz() -> JSONResponse:  # pyright: ignore[reportUnusedFunction]
        """200 when Temporal is reachable, 503 with the reason when not."""
        ok, reason = await state.reachable()
        body = Health(
            status="ok" if ok else "unavailable",
            temporal=TemporalHealth(address=settings.target_address, reachable=ok, error=reason),
        )
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @app.get("/", include_in_schema=False)
    async def index_page() -> FileResponse:  # pyright: ignore[reportUnusedFunction]
        return FileResponse(WEB_DIR / "index.html", headers=PAGE_HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:  # pyright: ignore[reportUnusedFunction]
        # Browsers ask for it on every page that names no icon (and some that do).
        return FileResponse(
            WEB_DIR / "favicon.svg",
            media_type="image/svg+xml",
            headers={**SECURITY_HEADERS, "Cache-Control": "max-age=86400"},
        )

    app.mount("/static", _StaticFiles(directory=WEB_DIR), name="static")
    _document_stream_events(app, [g.name for g in catalog.listed()], settings.max_message_chars)
    return app


def contributed_routers(catalog: GoalCatalog) -> list[APIRouter]:
    """The routers the catalog's goal modules name (`API_ROUTERS`), imported now."""
    routers: list[APIRouter] = []
    for ref in catalog.api_routers:
        module, _, attribute = ref.partition(":")
        router = getattr(importlib.import_module(module), attribute, None)
        if not isinstance(router, APIRouter):
            raise UserError(f"`{ref}` (a goal module's API_ROUTERS) is not a FastAPI router")
        routers.append(router)
    return routers


def _document_request_rules(
    components: dict[str, Any], goal_names: list[str], max_message_chars: int
) -> None:
    """Say in the schema what this deployment refuses with a 422, so that a request the
    document calls valid is one the API accepts: a create's `goal` is one of the
    startable goals, and a message has a non-blank character and at most
    `max_message_chars` of them (a setting, hence added here)."""
    properties = components.get("CreateConversationRequest", {}).get("properties", {})
    goal = properties.get("goal")
    if isinstance(goal, dict) and goal_names:
        goal["enum"] = goal_names
        for bound in ("minLength", "maxLength"):
            goal.pop(bound, None)
    texts = [
        properties.get("message"),
        components.get("SendMessageRequest", {}).get("properties", {}).get("text"),
    ]
    for text in texts:
        if not isinstance(text, dict):
            continue
        field = cast(dict[str, Any], text)
        branches = cast(list[dict[str, Any]], field.get("anyOf", [field]))
        for branch in branches:
            if branch.get("type") == "string":
                branch.update(minLength=1, maxLength=max_message_chars, pattern=r"\S")


def _document_stream_events(app: FastAPI, goal_names: list[str], max_message_chars: int) -> None:
    """Add the SSE payload models to the OpenAPI components the events route cites,
    and the deployment's request rules (`_document_request_rules`)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            # The event union has no model of its own to name it: it is filed as
            # `ConversationEvent` (a `oneOf` by `type`) next to its members. Their
            # validation schema, because it lists their fields (what the serializer
            # that leaves out unset ones would hide).
            roots, extra = TypeAdapter.json_schemas(
                [
                    ("ConversationEvent", "validation", EVENT_ADAPTER),
                    ("TokenDelta", "serialization", TypeAdapter(TokenDelta)),
                ],
                ref_template="#/components/schemas/{model}",
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            definitions: dict[str, Any] = dict(extra.get("$defs", {}))
            definitions["ConversationEvent"] = roots[("ConversationEvent", "validation")]
            for name, definition in definitions.items():
                components.setdefault(name, definition)
            _document_request_rules(components, goal_names, max_message_chars)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with `RedactingFilter` on its handlers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": RedactingFilter}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    return config
