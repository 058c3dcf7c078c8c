"""Server-sent events: the conversation's stream as `text/event-stream` (the decoder
clients read it with is `onward.client.sse`).

Each stream item becomes one SSE event whose `id:` is its global stream offset, so a
client that reconnects with `Last-Event-ID: n` (or `?after=n`) receives exactly the
items after `n`: nothing missed, nothing twice, even across API restarts, because the
offsets live in the workflow, not in the API process.

Event names are the `ConversationEvent.type` (`message`, `status`, …) or `delta` for
streamed model text. Three more carry no id: `worker` when whether a worker runs the
conversation changes (`{"polling": false, "detail": …}` while none does, then
`{"polling": true}`), `end` when the conversation has ended and every retained item
was sent, and `stream_error` if reading the stream failed (not `error`, which
browsers' `EventSource` reserves for connection failures).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable

from temporalio.client import Client
from temporalio.service import RPCError

from onward.agent.events import TokenDelta
from onward.api.stream_hub import StreamHub, StreamLagged
from onward.api.worker_watch import WorkerStatus
from onward.client.streaming import StreamItem

KEEPALIVE = b": keep-alive\n\n"
RETRY_MS = 2000
"""How long browsers wait before reconnecting a dropped stream."""


def encode(event: str, data: str, event_id: int | None = None) -> bytes:
    """One SSE event. Multi-line `data` is split into several `data:` lines."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {part}" for part in data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


def event_name(item: StreamItem) -> str:
    return "delta" if isinstance(item.data, TokenDelta) else item.data.type


def resume_offset(last_event_id: str | None, after: int | None) -> int:
    """The first offset to send, from `Last-Event-ID` and/or `?after=`.

    Both name the last offset the client has; a browser reconnecting sends the header
    while the URL keeps the original `after`, so the larger (newer) one wins.
    """
    seen = [after] if after is not None else []
    if last_event_id is not None and last_event_id.strip().lstrip("-").isdigit():
        seen.append(int(last_event_id.strip()))
    return max(seen) + 1 if seen else 0


def stream_error_reason(exc: BaseException) -> str:
    """What went wrong, said as what it is."""
    if isinstance(exc, StreamLagged):
        return str(exc)
    if isinstance(exc, RPCError):
        return f"Temporal refused or failed the stream read: {exc.message or exc}"
    return f"{type(exc).__name__}: {exc}"


async def conversation_sse(
    hub: StreamHub,
    client: Client,
    conversation_id: str,
    from_offset: int,
    keepalive_s: float,
    on_close: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    """The SSE body: events from `from_offset` on, keep-alives while idle, then `end`.
    `on_close` runs when the body ends, however it ends."""
    queue: asyncio.Queue[StreamItem | WorkerStatus | BaseException | None] = asyncio.Queue(
        maxsize=256
    )

    async def pump() -> None:
        try:
            async for item in hub.subscribe(client, conversation_id, from_offset):
                await queue.put(item)
            await queue.put(None)
        except Exception as exc:  # reported to the client as a `stream_error` event
            await queue.put(exc)

    reader = asyncio.create_task(pump(), name=f"sse-{conversation_id}")
    getter: asyncio.Task[StreamItem | WorkerStatus | BaseException | None] | None = None
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        while True:
            # One pending `get` survives keep-alive timeouts, so no item is dropped.
            getter = getter or asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter}, timeout=keepalive_s)
            if not done:
                yield KEEPALIVE
                continue
            got = getter.result()
            getter = None
            if got is None:
                yield encode("end", json.dumps({"conversation_id": conversation_id}))
                return
            if isinstance(got, BaseException):
                reason = stream_error_reason(got)
                yield encode("stream_error", json.dumps({"reason": reason}))
                return
            if isinstance(got, WorkerStatus):
                yield encode("worker", json.dumps(got.payload()))
                continue
            # The item was decoded once, into its model; this is its only encoding.
            yield encode(event_name(got), got.data.model_dump_json(), got.offset)
    finally:
        for task in (reader, getter):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if on_close is not None:
            on_close()
