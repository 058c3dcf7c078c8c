"""The embedded server is SIGKILLed and restarted on the same SQLite file mid-conversation."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
from onward.client.connect import connect
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.processes import free_port
from onward.server import EmbeddedServer
from onward.testing import ScriptedModel
from onward.worker import build_workers, running_workers
from tests.conftest import TEST_GOAL_MODULES
from tests.workflows import toolbox

pytestmark = pytest.mark.integration


@pytest.mark.timeout(180)
async def test_conversation_survives_a_server_restart(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        embedded_port=free_port(),
        task_queue="restart",
        llm_task_queue="restart-llm",
        goal_modules=TEST_GOAL_MODULES,
    )
    model = ScriptedModel(
        [
            CallTools(calls=[ToolCall(call_id="a", tool="add", args={"a": 20, "b": 22})]),
            AskUser(text="The sum is 42. Multiply it by what?"),
            CallTools(calls=[ToolCall(call_id="m", tool="multiply", args={"a": 42, "b": 2})]),
            Finish(answer="84"),
        ]
    )
    server = EmbeddedServer(settings, headless=True)
    server.start()
    try:
        client = await connect(settings)
        async with running_workers(build_workers(client, settings, model)):
            convs = Conversations(client, settings)
            cid = await convs.start(toolbox.MATH.name, first_message="add 20 and 22")
            await convs.wait_for(cid, lambda s: s.status == "waiting_for_user", timeout_s=30)

            assert server.process is not None
            server.process.send_signal(signal.SIGKILL)
            server.process.wait()
            server.process = None
            server.start()  # same port, same SQLite file

            # The same client and worker reconnect on their own.
            await convs.send(cid, "by 2")
            result = await convs.result(cid)
    finally:
        server.stop()
    assert result.answer == "84"
    assert [(r.tool, r.result) for r in result.tool_calls] == [("add", 42), ("multiply", 84)]
    assert sum(1 for _, key in toolbox.CALLS if key.startswith(cid + ":")) == 2
