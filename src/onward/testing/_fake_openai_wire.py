"""The OpenAI Chat Completions wire format of `FakeOpenAIServer`'s scripted responses:
completions, streamed chunks (tool-call fragments, the usage chunk) and error bodies,
and sending them over ASGI."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onward.testing.fake_openai import FakeFailure, FakeReply, FakeToolCall, Json

Send = Callable[[Mapping[str, Any]], Awaitable[None]]


def _usage(reply: FakeReply) -> Json:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
    }


def _finish_reason(reply: FakeReply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _call_id(call: FakeToolCall, index: int) -> str:
    return call.id or f"call_{index}_{uuid.uuid4().hex[:8]}"


def completion(reply: FakeReply, model: str) -> Json:
    message: Json = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": _call_id(call, i),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json()},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(reply)}],
        "usage": _usage(reply),
    }


def _pieces(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def stream_chunks(reply: FakeReply, model: str, include_usage: bool) -> list[Json]:
    base: Json = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(delta: Json, finish: str | None = None) -> Json:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    for piece in _pieces(reply.text, reply.chunk_chars) if reply.text else []:
        chunks.append(chunk({"content": piece}))
    for i, call in enumerate(reply.tool_calls):
        opening = {
            "index": i,
            "id": _call_id(call, i),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [opening]}))
        for piece in _pieces(call.arguments_json(), reply.chunk_chars):
            fragment = {"index": i, "function": {"arguments": piece}}
            chunks.append(chunk({"tool_calls": [fragment]}))
    chunks.append(chunk({}, _finish_reason(reply)))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": _usage(reply)})
    return chunks


def error_body(message: str, kind: str) -> Json:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


async def send_failure(send: Send, failure: FakeFailure) -> None:
    headers: list[tuple[bytes, bytes]] = []
    if failure.retry_after is not None:
        value = failure.retry_after
        text = f"{value:g}" if isinstance(value, float | int) else value
        headers.append((b"retry-after", text.encode()))
    if isinstance(failure.body, str):
        payload = failure.body.encode()
        headers.append((b"content-type", b"text/plain"))
        await _send_raw(send, failure.status, payload, headers)
        return
    body = dict(failure.body) if failure.body is not None else None
    kind = "rate_limit_exceeded" if failure.status == 429 else "server_error"
    await send_json(
        send, failure.status, body or error_body(f"fake {failure.status}", kind), headers
    )


async def _send_raw(
    send: Send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    headers = [*headers, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def send_json(
    send: Send, status: int, body: Json, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await _send_raw(
        send, status, payload, [*(headers or []), (b"content-type", b"application/json")]
    )


async def send_stream(send: Send, reply: FakeReply, model: str, include_usage: bool) -> None:
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for item in stream_chunks(reply, model, include_usage):
        data = f"data: {json.dumps(item)}\n\n".encode()
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
