"""The fake OpenAI-compatible server speaks the wire format clients expect."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from onward.testing import FakeFailure, FakeOpenAIServer, FakeReply, FakeToolCall


def sse_chunks(text: str) -> list[Any]:
    data = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


async def test_streamed_tool_calls_and_usage_chunk(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.enqueue(
        FakeReply(
            text="On it.",
            tool_calls=[FakeToolCall("add", {"a": 1, "b": 22}, id="call_1")],
            chunk_chars=5,
            prompt_tokens=30,
            completion_tokens=4,
        )
    )
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{fake_openai.base_url}/chat/completions", json=body)
    assert reply.headers["content-type"].startswith("text/event-stream")
    chunks = sse_chunks(reply.text)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["role"] == "assistant"
    assert "".join(d.get("content") or "" for d in deltas) == "On it."
    calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert calls[0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "add", "arguments": ""},
    }
    arguments = "".join(tc["function"]["arguments"] for tc in calls)
    assert json.loads(arguments) == {"a": 1, "b": 22} and len(calls) > 2
    assert all(tc["index"] == 0 for tc in calls)
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 30
    assert fake_openai.requests == [body]


async def test_no_usage_chunk_unless_asked(fake_openai: FakeOpenAIServer) -> None:
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            f"{fake_openai.base_url}/chat/completions", json={"model": "m", "stream": True}
        )
    chunks = sse_chunks(reply.text)
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_plain_json_failures_and_routing() -> None:
    def responder(body: dict[str, Any]) -> FakeReply | FakeFailure:
        return FakeReply(text=f"echo {body['model']}")

    async with FakeOpenAIServer(responder) as srv:
        srv.enqueue(
            FakeFailure(429, retry_after=2.5),
            FakeFailure(502, body="bad gateway"),
        )
        url = f"{srv.base_url}/chat/completions"
        async with httpx.AsyncClient() as client:
            limited = await client.post(url, json={"model": "m"})
            gateway = await client.post(url, json={"model": "m"})
            normal = await client.post(url, json={"model": "gpt-x"})
            missing = await client.post(f"{srv.base_url}/embeddings", json={})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2.5"
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"
    assert (gateway.status_code, gateway.text) == (502, "bad gateway")
    completion = normal.json()
    assert completion["model"] == "gpt-x"
    assert completion["choices"][0]["message"]["content"] == "echo gpt-x"
    assert completion["usage"]["total_tokens"] == 19
    assert missing.status_code == 404
    assert srv.total_requests == 3  # unknown routes are not counted


async def test_latency_delays_every_answer() -> None:
    async with FakeOpenAIServer(latency_s=0.3) as srv:
        srv.enqueue(FakeReply(text="slow", delay_s=0.2))
        async with httpx.AsyncClient() as client:
            started = time.monotonic()
            reply = await client.post(f"{srv.base_url}/chat/completions", json={"model": "m"})
            elapsed = time.monotonic() - started
    assert reply.json()["choices"][0]["message"]["content"] == "slow"
    assert elapsed >= 0.5
