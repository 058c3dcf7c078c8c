"""The terminal chat's client of onward's HTTP API, and the typed events it reads.

Events arrive as SSE and are decoded into the models the server published
(`ConversationEvent`, `TokenDelta`), so the chat reads fields, not dictionary keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, get_args
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from onward.agent.events import EVENT_ADAPTER, ConversationEvent, EventType, TokenDelta
from onward.client.sse import SseDecoder, SseEvent
from onward.exceptions import ChatError

RECONNECTS = 5
_DURABLE = frozenset(get_args(EventType))


class WorkerChanged(BaseModel):
    """The stream's `worker` event: whether a worker runs the conversation."""

    polling: bool
    detail: str | None = None


ChatEvent = ConversationEvent | TokenDelta | WorkerChanged


def decode(event: SseEvent) -> ChatEvent | None:
    """The event's model; None for an event name this chat does not know (a newer
    server's), which it skips.

    Raises:
        ChatError: A known event whose data does not fit its model.
    """
    try:
        if event.event in _DURABLE:
            return EVENT_ADAPTER.validate_json(event.data)
        if event.event == "delta":
            return TokenDelta.model_validate_json(event.data)
        if event.event == "worker":
            return WorkerChanged.model_validate_json(event.data)
    except ValidationError as exc:
        reason = f"the API sent a `{event.event}` event this chat cannot read: {exc}"
        raise ChatError(reason) from exc
    return None


class ApiClient:
    """A small client of onward's HTTP API (the calls the terminal chat needs)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = await self.http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ChatError(
                f"the API at {self.http.base_url} is not reachable ({exc!r}); "
                "start it with `onward up`"
            ) from exc
        if response.status_code == 204:
            return None
        if response.is_error:
            raise ChatError(_reason(response))
        return response.json()

    async def events(self, conversation_id: str, after: int = -1) -> AsyncGenerator[ChatEvent]:
        """The conversation's events after offset `after`, reconnecting (from the last
        offset seen) when the connection drops, until the conversation ends."""
        path = f"/v1/conversations/{quote(conversation_id)}/events"
        failures = 0
        while True:
            try:
                async with self.http.stream(
                    "GET", path, headers={"Last-Event-ID": str(after)}
                ) as response:
                    if response.is_error:
                        await response.aread()
                        raise ChatError(_reason(response))
                    decoder = SseDecoder()
                    async for line in response.aiter_lines():
                        event = decoder.feed(line)
                        if event is None:
                            continue
                        if event.event == "end":
                            return
                        if event.event == "stream_error":
                            raise ChatError(f"the event stream failed: {event.data}")
                        if event.id is not None:
                            after = int(event.id)
                        failures = 0
                        decoded = decode(event)
                        if decoded is not None:
                            yield decoded
            except httpx.TransportError as exc:
                failures += 1
                if failures > RECONNECTS:
                    raise ChatError(f"lost the event stream ({exc!r})") from exc
                await asyncio.sleep(0.25 * 2**failures)  # back off before reconnecting


def _reason(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['reason']} ({response.status_code} {error['code']})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


def client_for(base_url: str, token: str) -> httpx.AsyncClient:
    """An HTTP client for the API; reads wait long enough for keep-alives."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(30.0, read=60.0),
    )
