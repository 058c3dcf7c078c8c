"""A provider outage: 503s and requests that hang past the client timeout, then recovery.

Conversations in flight during the outage finish once the provider is back, and the
user never sees an error: retrying is Temporal's job, not the user's.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from onward.agent.messages import NoticeMessage
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.models.providers import ProviderModel
from onward.testing import FakeFailure, FakeHang, FakeOpenAIServer, FakeReply, FakeToolCall
from onward.testing.fake_openai import FakeResponse
from onward.worker import build_workers, running_workers
from tests.workflows import toolbox

pytestmark = pytest.mark.integration

MODEL = "openai:gpt-4o-mini"
HTTP_TIMEOUT = timedelta(seconds=2)
OUTAGE = (FakeFailure(503), FakeHang(), FakeFailure(503), FakeHang(), FakeFailure(503), FakeHang())
Json = dict[str, Any]


class OutageThenMath:
    """The first `len(OUTAGE)` requests (guardrail checks and decisions alike) fail;
    afterwards the provider adds the two numbers of the question with the tool."""

    def __init__(self) -> None:
        self.received = 0
        self.failed: list[FakeResponse] = []
        self.outage_over_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self, body: Json) -> FakeResponse:
        with self._lock:
            self.received += 1
            if self.received <= len(OUTAGE):
                failure = OUTAGE[self.received - 1]
                self.failed.append(failure)
                return failure
            if self.outage_over_at is None:
                self.outage_over_at = time.monotonic()
        tools: list[Json] = body.get("tools") or []
        if [t["function"]["name"] for t in tools] == ["verdict"]:
            return FakeReply(tool_calls=[FakeToolCall("verdict", {"allowed": True})])
        messages: list[Json] = body["messages"]
        results = [m["content"] for m in messages if m["role"] == "tool"]
        if results:
            return FakeReply(tool_calls=[FakeToolCall("finish", {"answer": f"= {results[0]}"})])
        question = next(str(m["content"]) for m in messages if m["role"] == "user")
        found = re.search(r"(\d+) \+ (\d+)", question)
        assert found is not None, question
        args = {"a": int(found.group(1)), "b": int(found.group(2))}
        return FakeReply(tool_calls=[FakeToolCall("add", args, id="c-add")])


async def test_conversations_ride_out_an_outage_without_errors(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    # The activity's start-to-close timeout is well above the HTTP timeout, so a hung
    # request fails as the provider client's timeout (transient) and is retried.
    settings = settings.model_copy(update={"model_timeout": timedelta(seconds=15)})
    provider = OutageThenMath()
    with FakeOpenAIServer(provider) as srv:
        model_settings = Settings(
            _env_file=None,  # pyright: ignore[reportCallIssue]
            model=MODEL,
            openai_base_url=srv.base_url,
            openai_api_key="test",  # pyright: ignore[reportArgumentType]
            model_timeout=HTTP_TIMEOUT,
        )
        model = ProviderModel(MODEL, model_settings)
        started = time.monotonic()
        async with running_workers(build_workers(dev_env.client, settings, model)):
            convs = Conversations(dev_env.client, settings)
            sums = {3: (1, 2), 30: (10, 20), 300: (100, 200)}
            ids = {
                total: await convs.start(toolbox.MATH.name, first_message=f"What is {a} + {b}?")
                for total, (a, b) in sums.items()
            }
            results = await asyncio.wait_for(
                asyncio.gather(*(convs.result(cid) for cid in ids.values())), 40
            )
            snaps = [await convs.snapshot(cid) for cid in ids.values()]
        finished = time.monotonic()

    assert [r.answer for r in results] == [f"= {total}" for total in ids]
    for snap in snaps:
        assert not [m for m in snap.messages if isinstance(m, NoticeMessage)], snap.messages
        assert snap.status == "ended"
    # The outage happened as scripted: every failure was served, hangs included.
    assert provider.failed == list(OUTAGE)
    assert provider.outage_over_at is not None
    assert provider.outage_over_at - started >= HTTP_TIMEOUT.total_seconds()
    # Hung calls were given up by the client's timeout, not the activity's.
    assert finished - started < settings.model_timeout.total_seconds()
    print(
        f"outage of {len(OUTAGE)} requests: provider back after "
        f"{provider.outage_over_at - started:.1f} s, 3 conversations done after "
        f"{finished - started:.1f} s"
    )
