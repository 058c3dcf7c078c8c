"""API test fixtures: the app over a real worker, as an in-process ASGI client or a
real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client

from onward.api.app import create_app
from onward.api.settings import ApiSettings
from onward.client.conversations import Conversations
from onward.client.erasure import runs_of
from onward.client.sse import SseDecoder, SseEvent
from onward.config import Settings
from onward.models.base import Model
from onward.processes import free_port
from tests.conftest import AgentFactory
from tests.workflows import toolbox

assert toolbox.MATH.name == "test-math"  # importing registers the test goal

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


def api_settings(**overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {"api_tokens": {"alice-token": "alice", "bob-token": "bob"}}
    values.update(overrides)
    return ApiSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Api:
    """A running API: an HTTP client for it, the app, and the Temporal-side facade."""

    http: httpx.AsyncClient
    app: FastAPI
    convs: Conversations
    settings: Settings


ApiFactory = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
def api(dev_agent: AgentFactory, settings: Settings) -> ApiFactory:
    """`async with api(model, api_config=..., **settings_overrides) as a:` — the app (ASGI
    transport) with a real worker on the dev server."""

    @asynccontextmanager
    async def run(
        model: Model, *, api_config: ApiSettings | None = None, **overrides: Any
    ) -> AsyncGenerator[Api]:
        async with dev_agent(model) as convs:
            app_settings = settings.model_copy(update=overrides)
            app = create_app(
                app_settings,
                client=convs.client,
                api_settings=api_config or api_settings(),
                catalog=convs.catalog,
            )
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                yield Api(http=http, app=app, convs=convs, settings=app_settings)

    return run


@asynccontextmanager
async def serve(app: FastAPI, port: int | None = None) -> AsyncGenerator[str]:
    """Run `app` on a real uvicorn server on 127.0.0.1; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 20
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            task.cancel()
            raise RuntimeError(f"uvicorn did not start on port {port}")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        # Open event streams never finish by themselves: drop their connections, as a
        # dying process would, so clients see the server go away and must reconnect.
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if isinstance(transport, asyncio.Transport):
                transport.abort()
        await task


async def sse_events(
    response: httpx.Response, stop: Callable[[SseEvent], bool] | None = None
) -> list[SseEvent]:
    """Decode `response` until the stream ends or `stop(event)` is true (inclusive)."""
    decoder = SseDecoder()
    events: list[SseEvent] = []
    async for line in response.aiter_lines():
        event = decoder.feed(line)
        if event is None:
            continue
        events.append(event)
        if stop is not None and stop(event):
            break
    return events


async def read_stream(
    http: httpx.AsyncClient,
    cid: str,
    headers: dict[str, str],
    *,
    params: dict[str, Any] | None = None,
    stop: Callable[[SseEvent], bool] | None = None,
    timeout_s: float = 30,
) -> list[SseEvent]:
    """GET the events route and decode it (to its end, or until `stop`)."""
    async with asyncio.timeout(timeout_s):
        async with http.stream(
            "GET", f"/v1/conversations/{cid}/events", headers=headers, params=params
        ) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            return await sse_events(response, stop)


async def wait_erased(client: Client, workflow_id: str, timeout_s: float = 30.0) -> None:
    """Until the server knows no run of `workflow_id` (deletion is asynchronous there);
    AssertionError naming what is left otherwise."""
    deadline = time.monotonic() + timeout_s
    while left := await runs_of(client, workflow_id):
        if time.monotonic() > deadline:
            raise AssertionError(f"{workflow_id} not erased within {timeout_s}s: {left}")
        await asyncio.sleep(0.1)
