"""Stateful MCP servers: one pooled session per conversation on a worker, opened
again (before a call is sent) when the server behind it died. Real subprocesses,
driven through the real activities."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import cast

import pytest
from temporalio.testing import ActivityEnvironment

from onward.activities.mcp import McpActivities
from onward.agent.mcp import McpCallRequest
from onward.config import Settings
from onward.tools.mcp import McpServer

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
    acts = McpActivities(settings)
    async with acts.running():
        first = await bump(acts, server, "conv-a", "c1")
        second = await bump(acts, server, "conv-a", "c2")
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
    acts = McpActivities(settings)
    async with acts.running():
        one = await bump(acts, server, "conv-a", "c1")
        two = await bump(acts, server, "conv-a", "c2")
    assert one["count"] == two["count"] == 1 and one["pid"] != two["pid"]
