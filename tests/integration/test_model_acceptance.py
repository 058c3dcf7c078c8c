"""A real provider model end to end: the `openai:` client over real HTTP against the fake
OpenAI-compatible server, real workers on the real dev server.

Covers streamed tool calls, Retry-After, transient and permanent provider errors, a
worker SIGKILLed mid-stream, and switching models in the middle of a conversation.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from onward.agent.contracts import ConversationSnapshot
from onward.agent.decisions import AskUser
from onward.agent.messages import (
    AssistantMessage,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.models.providers import FORBID_ENV, GUARDRAIL_MAX_TOKENS, ProviderModel
from onward.processes import spawn, stop
from onward.testing import (
    FakeFailure,
    FakeOpenAIServer,
    FakeReply,
    FakeToolCall,
    ScriptedModel,
)
from onward.testing._fake_openai_wire import send_json, stream_chunks
from onward.testing.fake_openai import FakeResponse
from tests.conftest import AgentFactory
from tests.workflows import toolbox

pytestmark = pytest.mark.integration

MODEL = "openai:gpt-4o-mini"
REPO = Path(__file__).resolve().parents[2]
Json = dict[str, Any]
Kind = Literal["guardrail", "decide"]


# ------------------------------------------------------------------ the provider


@dataclass(frozen=True)
class Seen:
    """One request the fake provider received, and when (monotonic clock)."""

    at: float
    kind: Kind
    body: Json

    def mentions(self, text: str) -> bool:
        return any(text in str(m.get("content") or "") for m in self.body["messages"])


Plan = Callable[[Json, int], FakeResponse]
"""The answer to the n-th (1-based) decide request, from its body."""


class Provider:
    """The fake server's responder: allows every message at the guardrail and answers
    decide requests with `plan`; records each request with its arrival time."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    def __call__(self, body: Json) -> FakeResponse:
        # The topic check shares the decisions' prompt prefix; only its output cap
        # tells it apart.
        cap = body.get("max_completion_tokens", body.get("max_tokens"))
        kind: Kind = "guardrail" if cap == GUARDRAIL_MAX_TOKENS else "decide"
        with self._lock:
            self.seen.append(Seen(time.monotonic(), kind, body))
            n = sum(1 for s in self.seen if s.kind == kind)
        if kind == "guardrail":
            return FakeReply(text="Sure.")  # anything but `refuse` lets the message in
        return self.plan(body, n)

    def decides(self, marker: str | None = None) -> list[Seen]:
        with self._lock:
            return [
                s
                for s in self.seen
                if s.kind == "decide" and (marker is None or s.mentions(marker))
            ]


def tool_results(body: Json) -> dict[str, str]:
    return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}


def add_then_finish(body: Json) -> FakeReply:
    """Add 2 and 3 with the tool, then finish with the tool's result."""
    results = tool_results(body)
    if "c-add" not in results:
        return FakeReply(tool_calls=[FakeToolCall("add", {"a": 2, "b": 3}, id="c-add")])
    return FakeReply(tool_calls=[FakeToolCall("finish", {"answer": f"2 + 3 = {results['c-add']}"})])


def after_failures(*failures: FakeResponse) -> Plan:
    """The first decide requests fail with `failures`, later ones run `add_then_finish`."""

    def plan(body: Json, n: int) -> FakeResponse:
        return failures[n - 1] if n <= len(failures) else add_then_finish(body)

    return plan


def provider_model(srv: FakeOpenAIServer) -> ProviderModel:
    settings = Settings(
        _env_file=None,  # pyright: ignore[reportCallIssue]
        model=MODEL,
        openai_base_url=srv.base_url,
        openai_api_key="test",  # pyright: ignore[reportArgumentType]
    )
    return ProviderModel(MODEL, settings)


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as srv:
        yield srv


def notices(snap: ConversationSnapshot) -> list[NoticeMessage]:
    return [m for m in snap.messages if isinstance(m, NoticeMessage)]


def ended(snap: ConversationSnapshot) -> bool:
    return snap.status == "ended"


# ------------------------------------------------------------------ 1. tool calls


def math_plan(body: Json, n: int) -> FakeReply:
    """(2+3) and 4*5 in parallel, their sum, whether it is even, then the answer; every
    argument after the first step comes from the tool results the model was sent."""
    results = tool_results(body)
    if not results:
        return FakeReply(
            text="Working it out.",
            tool_calls=[
                FakeToolCall("add", {"a": 2, "b": 3}, id="c-add"),
                FakeToolCall("multiply", {"a": 4, "b": 5}, id="c-mul"),
            ],
            chunk_chars=3,
        )
    if "c-sum" not in results:
        args = {"a": int(results["c-add"]), "b": int(results["c-mul"])}
        return FakeReply(tool_calls=[FakeToolCall("add", args, id="c-sum")], chunk_chars=2)
    if "c-desc" not in results:
        args = {"value": int(results["c-sum"])}
        return FakeReply(tool_calls=[FakeToolCall("describe", args, id="c-desc")])
    described = json.loads(results["c-desc"])
    parity = "even" if described["even"] else "odd"
    answer = f"The total is {described['value']}, which is {parity}."
    return FakeReply(tool_calls=[FakeToolCall("finish", {"answer": answer})], chunk_chars=5)


async def test_streamed_tool_calls_drive_a_conversation_to_finish(
    fake_server: FakeOpenAIServer, dev_agent: AgentFactory
) -> None:
    provider = Provider(math_plan)
    fake_server.responder = provider
    async with dev_agent(provider_model(fake_server)) as convs:
        cid = await convs.start(toolbox.MATH.name, first_message="What is 2+3 plus 4*5, even?")
        result = await asyncio.wait_for(convs.result(cid), 30)
        snap = await convs.snapshot(cid)

    assert result.answer == "The total is 25, which is odd."
    assert [(r.tool, r.args, r.result) for r in result.tool_calls] == [
        ("add", {"a": 2, "b": 3}, 5),
        ("multiply", {"a": 4, "b": 5}, 20),
        ("add", {"a": 5, "b": 20}, 25),
        ("describe", {"value": 25}, {"value": 25, "even": False}),
    ]
    assert sorted(k for _, k in toolbox.CALLS if k.startswith(cid)) == sorted(
        f"{cid}:{c}" for c in ("c-add", "c-mul", "c-sum", "c-desc")
    )
    decides = provider.decides()
    assert len(decides) == 4
    assert all(s.body["stream"] is True for s in decides)
    assert snap.model_name == MODEL
    assert snap.usage.requests == 4  # four decisions, the topic judged within the first
    assert snap.usage.cost_usd is not None and snap.usage.cost_usd > 0
    assert not notices(snap)


# ------------------------------------------------------------------ 2-4. errors


async def test_rate_limit_waits_for_retry_after(
    fake_server: FakeOpenAIServer, dev_agent: AgentFactory
) -> None:
    provider = Provider(after_failures(FakeFailure(429, retry_after=2)))
    fake_server.responder = provider
    async with dev_agent(provider_model(fake_server)) as convs:
        cid = await convs.start(toolbox.MATH.name, first_message="What is 2 + 3?")
        result = await asyncio.wait_for(convs.result(cid), 30)
        snap = await convs.snapshot(cid)

    assert result.answer == "2 + 3 = 5"
    failed, retried = provider.decides()[:2]
    gap = retried.at - failed.at
    print(f"429 Retry-After: 2 -> retried after {gap:.2f} s")
    # The retry policy alone would retry after 1 s; the provider asked for 2.
    assert gap >= 2.0
    assert gap < 6.0
    assert not notices(snap)


async def test_server_error_is_retried_without_telling_the_user(
    fake_server: FakeOpenAIServer, dev_agent: AgentFactory
) -> None:
    provider = Provider(after_failures(FakeFailure(503)))
    fake_server.responder = provider
    async with dev_agent(provider_model(fake_server)) as convs:
        cid = await convs.start(toolbox.MATH.name, first_message="What is 2 + 3?")
        result = await asyncio.wait_for(convs.result(cid), 30)
        snap = await convs.snapshot(cid)

    assert result.answer == "2 + 3 = 5"
    assert len(provider.decides()) == 3  # the 503, its retry, the answer after the tool
    assert not notices(snap)
    assert [type(m) for m in snap.messages] == [
        UserMessage,
        ToolCallMessage,
        ToolResultMessage,
        AssistantMessage,
    ]


async def test_auth_error_is_not_retried_and_the_conversation_stays_alive(
    fake_server: FakeOpenAIServer, dev_agent: AgentFactory
) -> None:
    bad_key = FakeFailure(
        401,
        body={
            "error": {
                "message": "Incorrect API key provided",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
    )
    provider = Provider(after_failures(bad_key))
    fake_server.responder = provider
    async with dev_agent(provider_model(fake_server)) as convs:
        cid = await convs.start(toolbox.MATH.name, first_message="What is 2 + 3?")
        snap = await convs.wait_for(
            cid, lambda s: s.status == "waiting_for_user" and bool(notices(s))
        )
        assert len(provider.decides()) == 1  # a permanent error is not retried
        [notice] = notices(snap)
        assert notice.level == "error"
        assert "401" in notice.text and "Incorrect API key provided" in notice.text

        await convs.send(cid, "Please try again.")
        result = await asyncio.wait_for(convs.result(cid), 30)

    assert result.answer == "2 + 3 = 5"
    assert len(provider.decides()) == 3


# ------------------------------------------------------------------ 5. SIGKILL


class SlowStreamServer(FakeOpenAIServer):
    """Streams the first streamed answer one chunk every `chunk_delay_s`, until `cut`.

    Later answers stream at full speed.
    """

    def __init__(self, responder: Callable[[Json], FakeResponse], chunk_delay_s: float) -> None:
        super().__init__(responder)
        self.chunk_delay_s = chunk_delay_s
        self.chunks_sent = 0
        self.mid_stream = threading.Event()
        self.cut = threading.Event()
        self._slowed = False

    async def _answer(self, body: Json, send: Any) -> None:
        if self._slowed or not body.get("stream"):
            await super()._answer(body, send)
            return
        self._slowed = True
        reply = self._next_response(body)
        if not isinstance(reply, FakeReply):
            await send_json(send, 500, {"error": {"message": "slow streams need a FakeReply"}})
            return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for item in stream_chunks(reply, str(body["model"]), include_usage=True):
            if self.cut.is_set():
                break
            data = f"data: {json.dumps(item)}\n\n".encode()
            await send({"type": "http.response.body", "body": data, "more_body": True})
            self.chunks_sent += 1
            if self.chunks_sent >= 3:
                self.mid_stream.set()
                # The provider stalls mid-answer until the test has killed the worker
                # (a minute at most): the kill lands mid-stream on any machine.
                await asyncio.to_thread(self.cut.wait, 60)
            await asyncio.sleep(self.chunk_delay_s)  # the provider's pace, not a wait
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def worker_env(settings: Settings, target: str, base_url: str, heartbeat_s: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONWARD_")}
    env.update(
        {
            FORBID_ENV: os.environ[FORBID_ENV],  # loopback only, like this process
            "ONWARD_TEMPORAL_ADDRESS": target,
            "ONWARD_DATA_DIR": str(settings.data_dir),
            "ONWARD_TASK_QUEUE": settings.task_queue,
            "ONWARD_LLM_TASK_QUEUE": settings.llm_task_queue,
            "ONWARD_MODEL": MODEL,
            "ONWARD_OPENAI_BASE_URL": base_url,
            "ONWARD_OPENAI_API_KEY": "test",
            "ONWARD_MODEL_HEARTBEAT_TIMEOUT": str(heartbeat_s),
            "ONWARD_GOAL_MODULES": "tests.workflows.toolbox",
        }
    )
    return env


async def llm_pollers(client: Client, queue: str, at_least: int, timeout_s: float = 60) -> None:
    """Wait until `at_least` workers poll the llm activity queue."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    )
    deadline = time.monotonic() + timeout_s
    while len((await client.workflow_service.describe_task_queue(request)).pollers) < at_least:
        assert time.monotonic() < deadline, f"fewer than {at_least} workers poll {queue}"
        await asyncio.sleep(0.2)


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return spawn([sys.executable, "-m", "onward", "worker"], env=env, log=log, cwd=REPO)


async def test_worker_killed_mid_stream_is_replaced_and_the_call_rerun(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    assert os.environ.get(FORBID_ENV) == "1"
    heartbeat_s = 3
    settings = settings.model_copy(
        update={"model_heartbeat_timeout": timedelta(seconds=heartbeat_s)}
    )
    marker = f"kill-{settings.task_queue}"

    def plan(body: Json, n: int) -> FakeReply:
        if tool_results(body):
            return add_then_finish(body)
        text = "Let me add those two numbers for you, one careful step at a time."
        call = FakeToolCall("add", {"a": 2, "b": 3}, id="c-add")
        return FakeReply(text=text, tool_calls=[call], chunk_chars=2)

    provider = Provider(plan)
    target = dev_env.client.service_client.config.target_host
    workers: list[subprocess.Popen[bytes]] = []
    with SlowStreamServer(provider, chunk_delay_s=0.25) as srv:
        env = worker_env(settings, target, srv.base_url, heartbeat_s)
        try:
            workers.append(start_worker(env, tmp_path / "worker-1.log"))
            convs = Conversations(dev_env.client, settings)
            cid = await convs.start(toolbox.MATH.name, first_message=f"What is 2 + 3? ({marker})")
            ready = await asyncio.to_thread(srv.mid_stream.wait, 30)
            assert ready, (tmp_path / "worker-1.log").read_text()[-3000:]
            # A second worker stands by, as in any deployment with more than one: the
            # failover measured is the heartbeat timeout and the hand-over, not how
            # long a Python process takes to import on a loaded machine.
            workers.append(start_worker(env, tmp_path / "worker-2.log"))
            await llm_pollers(dev_env.client, settings.llm_task_queue, at_least=2)

            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            killed_at = time.monotonic()
            srv.cut.set()

            snap = await convs.wait_for(cid, ended, timeout_s=40)
        finally:
            for proc in workers:
                stop(proc)

    first, rerun = provider.decides(marker)[:2]
    assert first.at < killed_at < rerun.at
    failover = rerun.at - killed_at
    print(f"worker SIGKILL mid-stream -> model call re-run after {failover:.2f} s")
    assert failover <= heartbeat_s + 7
    assert rerun.body["messages"] == first.body["messages"]  # the same call, re-run
    assert snap.answer == "2 + 3 = 5"
    assert [type(m) for m in snap.messages] == [
        UserMessage,
        AssistantMessage,
        ToolCallMessage,
        ToolResultMessage,
        AssistantMessage,
    ]
    assert not notices(snap)


# ------------------------------------------------------------------ 6. model switch


async def test_switching_to_a_provider_model_keeps_the_transcript(
    fake_server: FakeOpenAIServer, dev_agent: AgentFactory
) -> None:
    opening = "Hello, I need help with a sum."
    question = "Which two numbers should I add?"
    async with dev_agent(ScriptedModel([AskUser(text=question)])) as convs:
        cid = await convs.start(toolbox.MATH.name, first_message=opening)
        await convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.message_count == 2)

    provider = Provider(lambda body, n: add_then_finish(body))
    fake_server.responder = provider
    async with dev_agent(provider_model(fake_server)) as convs:
        await convs.send(cid, "2 and 3, please.")
        snap = await convs.wait_for(cid, ended, timeout_s=30)

    first = provider.decides()[0].body["messages"]
    assert [(m["role"], m.get("content")) for m in first[1:]] == [
        ("user", opening),
        ("assistant", question),
        ("user", "2 and 3, please."),
    ]
    assert snap.model_name == MODEL
    assert snap.answer == "2 + 3 = 5"
    assert [(type(m), getattr(m, "text", None)) for m in snap.messages] == [
        (UserMessage, opening),
        (AssistantMessage, question),
        (UserMessage, "2 and 3, please."),
        (ToolCallMessage, None),
        (ToolResultMessage, None),
        (AssistantMessage, "2 + 3 = 5"),
    ]
