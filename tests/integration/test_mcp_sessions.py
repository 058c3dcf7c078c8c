"""Stateful MCP servers: one pooled session per conversation on a worker, opened
again (before a call is sent) when the server behind it died. Real subprocesses,
driven through the real activities."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import cast

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from onward.activities.mcp import McpActivities
from onward.agent.mcp import McpCallRequest
from onward.config import Settings
from onward.exceptions import ERR_MCP_CONFIG
from onward.store.transcripts import transcript_store
from onward.tools.mcp import McpServer, Secret
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

COUNTER = Path(__file__).with_name("mcp_counter_server.py")


async def bump(acts: McpActivities, server: McpServer, cid: str, call_id: str) -> dict[str, int]:
    request = McpCallRequest(
        conversation_id=cid, call_id=call_id, server=server.spec(), tool="bump", args={}
    )
    outcome = await ActivityEnvironment().run(acts.call_tool, request)
    assert outcome.ok, outcome.error
    return cast(dict[str, int], outcome.content)


async def test_a_stateful_session_is_kept_per_conversation_and_reopened_when_lost(
    settings: Settings,
) -> None:
    server = McpServer.stdio("counter", sys.executable, [str(COUNTER)], stateful=True)
    acts = McpActivities(settings, transcript_store(settings))
    async with acts.running():
        # Two calls at once (one decision, two tool calls) share one session.
        first, second = sorted(
            await asyncio.gather(
                bump(acts, server, "conv-a", "c1"), bump(acts, server, "conv-a", "c2")
            ),
            key=lambda r: r["count"],
        )
        other = await bump(acts, server, "conv-b", "c1")
        os.kill(second["pid"], signal.SIGKILL)  # the server dies between two calls
        after = await bump(acts, server, "conv-a", "c3")

    # The session is kept between one conversation's calls...
    assert (first["count"], second["count"]) == (1, 2) and first["pid"] == second["pid"]
    # ...another conversation has its own...
    assert other["count"] == 1 and other["pid"] != first["pid"]
    # ...and a dead one is replaced before the call is sent: it ran once, on the new one.
    assert after["count"] == 1 and after["pid"] != second["pid"]


async def test_a_stateless_server_gets_a_fresh_process_per_call(settings: Settings) -> None:
    server = McpServer.stdio("counter", sys.executable, [str(COUNTER)])
    acts = McpActivities(settings, transcript_store(settings))
    async with acts.running():
        one = await bump(acts, server, "conv-a", "c1")
        two = await bump(acts, server, "conv-a", "c2")
    assert one["count"] == two["count"] == 1 and one["pid"] != two["pid"]


async def test_env_secrets_reach_the_subprocess_and_a_missing_one_is_a_clear_error(
    session_data_dir: Path,
) -> None:
    server = McpServer.stdio(
        "counter",
        sys.executable,
        [str(COUNTER)],
        env={"COUNTER_API_KEY": Secret("counter-key"), "COUNTER_MODE": "test"},
    )
    request = McpCallRequest(
        conversation_id="c",
        call_id="e1",
        server=server.spec(),
        tool="getenv",
        args={"name": "COUNTER_API_KEY"},
    )
    keyed = make_settings(session_data_dir, mcp_secrets={"counter-key": "k-42"})
    with_secret = McpActivities(keyed, transcript_store(keyed))
    outcome = await ActivityEnvironment().run(with_secret.call_tool, request)
    assert outcome.ok and outcome.content == {"result": "k-42"}

    plain = make_settings(session_data_dir)
    without = McpActivities(plain, transcript_store(plain))
    with pytest.raises(ApplicationError) as failure:
        await ActivityEnvironment().run(without.call_tool, request)
    assert failure.value.type == ERR_MCP_CONFIG and failure.value.non_retryable
    assert "needs the secret `counter-key`" in failure.value.message
