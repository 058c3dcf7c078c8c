"""While no worker runs, the event stream says so, and a message sent meanwhile is kept.

Real dev server, a real worker that is stopped and started again, the API on a real
uvicorn server, and a provider (the fake OpenAI server) that answers 503s until it is
fixed: the stream shows the model being retried, then `worker polling=false`; a
message sent then is acknowledged at once; once a worker runs again and the provider
is back, `worker polling=true` comes and both questions are answered, each once.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from onward.agent.messages import AssistantMessage, UserMessage
from onward.api.app import create_app
from onward.api.stream_hub import StreamHub
from onward.api.worker_watch import WORKER_DOWN_DETAIL
from onward.client.conversations import Conversations
from onward.client.sse import SseDecoder, SseEvent
from onward.config import Settings
from onward.models.providers import ProviderModel
from onward.testing import FakeFailure, FakeOpenAIServer, FakeReply, FakeToolCall
from onward.testing.fake_openai import FakeResponse
from onward.worker import build_workers, running_workers
from tests.api.conftest import ALICE, api_settings, serve
from tests.workflows import toolbox

pytestmark = pytest.mark.integration

MODEL = "openai:gpt-4o-mini"
Json = dict[str, Any]


class AdderBehindAnOutage:
    """503 while `broken`; otherwise adds the two numbers of the last question with the
    `add` tool and answers with the sum."""

    def __init__(self) -> None:
        self.broken = True
        self.failures = 0

    def __call__(self, body: Json) -> FakeResponse:
        if self.broken:
            self.failures += 1
            return FakeFailure(503)
        messages: list[Json] = body["messages"]
        last = messages[-1]
        if last["role"] == "tool":
            return FakeReply(
                tool_calls=[FakeToolCall("finish", {"answer": f"= {last['content']}"})]
            )
        question = next(str(m["content"]) for m in reversed(messages) if m["role"] == "user")
        found = re.search(r"(\d+) \+ (\d+)", question)
        assert found is not None, question
        args = {"a": int(found.group(1)), "b": int(found.group(2))}
        return FakeReply(tool_calls=[FakeToolCall("add", args)])


class StreamRecorder:
    """Reads one SSE response in the background; `wait` for an event with a deadline."""

    def __init__(self) -> None:
        self.events: list[SseEvent] = []
        self._changed = asyncio.Condition()

    async def read(self, response: httpx.Response) -> None:
        decoder = SseDecoder()
        async for line in response.aiter_lines():
            event = decoder.feed(line)
            if event is not None:
                async with self._changed:
                    self.events.append(event)
                    self._changed.notify_all()

    async def wait(self, what: str, pred: Callable[[SseEvent], bool], timeout_s: float) -> SseEvent:
        async def found() -> SseEvent:
            async with self._changed:
                while True:
                    hit = next((e for e in self.events if pred(e)), None)
                    if hit is not None:
                        return hit
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(found(), timeout_s)
        except TimeoutError:
            seen = [(e.event, e.data[:120]) for e in self.events[-8:]]
            raise AssertionError(f"no {what} within {timeout_s}s; last events: {seen}") from None


def _data(event: SseEvent) -> Json:
    return json.loads(event.data)


def _retrying(e: SseEvent) -> bool:
    if e.event != "status":
        return False
    d = _data(e)
    return d.get("status") == "retrying_model" and d.get("attempt", 0) >= 2 and "retry_in_s" in d


def _worker(polling: bool) -> Callable[[SseEvent], bool]:
    return lambda e: e.event == "worker" and _data(e)["polling"] is polling


def _answer(text: str) -> Callable[[SseEvent], bool]:
    def pred(e: SseEvent) -> bool:
        if e.event != "message":
            return False
        message = _data(e)["message"]
        return message["kind"] == "assistant" and message.get("text") == text

    return pred


async def test_the_stream_reports_a_stopped_worker_and_a_queued_message_is_answered_once(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    provider = AdderBehindAnOutage()
    with FakeOpenAIServer(provider) as srv:
        model_settings = Settings(
            _env_file=None,  # pyright: ignore[reportCallIssue]
            model=MODEL,
            openai_base_url=srv.base_url,
            openai_api_key="test",  # pyright: ignore[reportArgumentType]
            model_timeout=timedelta(seconds=5),
        )
        model = ProviderModel(MODEL, model_settings)
        # Its own limits: other tests of the session leave alice conversations open.
        config = api_settings(user_max_open_conversations=0)
        app = create_app(settings, client=dev_env.client, api_settings=config)
        # Quicker than production's few seconds, so the test does not idle.
        app.state.api.hub = StreamHub(check_after_s=1.0, recheck_s=1.0, probe_timeout_s=1.0)
        convs = Conversations(dev_env.client, settings)
        stream = StreamRecorder()
        async with AsyncExitStack() as stack:
            url = await stack.enter_async_context(serve(app))
            http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            worker = AsyncExitStack()
            await worker.enter_async_context(
                running_workers(build_workers(dev_env.client, settings, model))
            )
            created = await http.post(
                "/v1/conversations",
                json={"goal": toolbox.OPEN_MATH.name, "message": "What is 1 + 2?"},
                headers=ALICE,
            )
            assert created.status_code == 201, created.text
            cid = created.json()["id"]
            response = await stack.enter_async_context(
                http.stream("GET", f"/v1/conversations/{cid}/events", headers=ALICE)
            )
            assert response.status_code == 200
            reader = asyncio.create_task(stream.read(response))
            try:
                retrying = await stream.wait("a retrying_model status", _retrying, 30)
                assert _data(retrying)["retry_in_s"] > 0

                await worker.aclose()  # the only worker stops
                stopped_at = time.monotonic()
                down = await stream.wait("worker polling=false", _worker(False), 30)
                noticed_after = time.monotonic() - stopped_at
                assert _data(down) == {"polling": False, "detail": WORKER_DOWN_DETAIL}
                assert down.id is None

                sent_at = time.monotonic()
                sent = await http.post(
                    f"/v1/conversations/{cid}/messages",
                    json={"text": "What is 10 + 20?"},
                    headers=ALICE,
                )
                ack_s = time.monotonic() - sent_at
                assert sent.status_code == 202, sent.text
                assert ack_s < 1.0
                message_id = sent.json()["id"]

                provider.broken = False
                async with running_workers(build_workers(dev_env.client, settings, model)):
                    up = await stream.wait("worker polling=true", _worker(True), 30)
                    first = await stream.wait("the first answer", _answer("= 3"), 60)
                    await stream.wait("the queued message's answer", _answer("= 30"), 60)
                    snap = await convs.snapshot(cid)
            finally:
                reader.cancel()
                await worker.aclose()

    order = stream.events.index
    assert order(retrying) < order(down) < order(up) < order(first)
    assert [_data(e)["polling"] for e in stream.events if e.event == "worker"] == [False, True]
    users = [m for m in snap.messages if isinstance(m, UserMessage)]
    assert [m.text for m in users] == ["What is 1 + 2?", "What is 10 + 20?"]
    assert users[1].id == message_id  # taken once, under the id it was given
    answers = [m.text for m in snap.messages if isinstance(m, AssistantMessage)]
    assert answers == ["= 3", "= 30"]
    adds = [key for name, key in toolbox.CALLS if name == "add" and key.startswith(cid)]
    assert len(adds) == 2
    assert provider.failures >= 1
    print(
        f"worker stop noticed on the stream after {noticed_after:.1f} s; "
        f"message acknowledged in {ack_s * 1000:.0f} ms while no worker ran"
    )
