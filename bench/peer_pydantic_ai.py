"""Peer: Pydantic AI's Temporal durability, in the history scenario.

Set up as Pydantic AI documents it: an `Agent` with the `TemporalDurability`
capability (the successor of the deprecated `TemporalAgent` wrapper, which records
the same activities and payloads), listed in `__pydantic_ai_agents__` of a workflow,
and `PydanticAIPlugin` on the client. Model requests and the tool call run as
activities. Multi-turn as their docs show it: the workflow keeps the message history
and passes it to each turn's `agent.run(message_history=...)`.

The model is a `FunctionModel` (Pydantic AI's own fake), instant like onward's
`ScriptedModel`: it reads the page the user names, then replies.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.durable_exec.temporal import (
    PydanticAIPlugin,
    PydanticAIWorkflow,
    TemporalDurability,
)
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Replayer, Worker

from bench.history_size import (
    conversation_figures,
    drive_turns,
    fetch_runs,
    figures_of,
    timed_replay,
)
from bench.manual import INSTRUCTIONS, TOOL_NAME, CallLogs, page, page_number, reply_text, user_text

SIGNAL = "user_message"
LOGS = CallLogs()
"""The model runs inside an activity of this process: it finds its conversation's log
by the activity's workflow id."""


def answer(messages: list[ModelMessage]) -> tuple[ModelResponse, bool]:
    """The page reader's response to `messages`, and whether it is the turn's reply."""
    last = messages[-1]
    assert isinstance(last, ModelRequest), last
    part = last.parts[-1]
    if isinstance(part, ToolReturnPart):
        content: Any = part.content
        return ModelResponse(parts=[TextPart(reply_text(int(content["page"])))]), True
    assert isinstance(part, UserPromptPart) and isinstance(part.content, str), part
    n = page_number(part.content)
    return ModelResponse(parts=[ToolCallPart(TOOL_NAME, {"n": n}, tool_call_id=f"read-{n}")]), False


def _respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    log = LOGS.get(activity.info().workflow_id or "")
    log.call()
    response, is_reply = answer(messages)
    if is_reply:
        log.replied()
    return response


agent = Agent(
    FunctionModel(_respond, model_name="bench-page-reader"),
    name="bench_manual",
    instructions=INSTRUCTIONS,
    capabilities=[TemporalDurability()],
)


@agent.tool_plain(name=TOOL_NAME)
async def read_page(n: int) -> dict[str, object]:
    """Read page `n` of the manual (about 2 KB of text)."""
    return page(n)


@workflow.defn(name="BenchPydanticAIManual")
class PydanticAIManualWorkflow(PydanticAIWorkflow):
    """One conversation: each user message (a signal) is one agent run over the
    message history the workflow keeps."""

    __pydantic_ai_agents__ = [agent]

    def __init__(self) -> None:
        self._inbox: list[str] = []
        self._history: list[ModelMessage] = []

    @workflow.signal(name=SIGNAL)
    def user_message(self, text: str) -> None:
        self._inbox.append(text)

    @workflow.run
    async def run(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._inbox))
            result = await agent.run(self._inbox.pop(0), message_history=self._history)
            self._history = result.all_messages()


async def pydantic_ai_history(
    address: str, namespace: str, *, turns: int, time_cap_s: float
) -> dict[str, Any]:
    """The scenario on Pydantic AI, with its own client (its plugin's converter)."""
    client = await Client.connect(address, namespace=namespace, plugins=[PydanticAIPlugin()])
    queue = f"bench-pydantic-ai-{uuid.uuid4().hex[:6]}"
    wid = f"history-pydantic-ai-{uuid.uuid4().hex[:8]}"
    log = LOGS.open(wid)
    handle = client.get_workflow_handle(wid)

    async def send(n: int) -> None:
        await handle.signal(SIGNAL, user_text(n))

    try:
        async with Worker(client, task_queue=queue, workflows=[PydanticAIManualWorkflow]):
            await client.start_workflow(PydanticAIManualWorkflow.run, id=wid, task_queue=queue)
            drive = await drive_turns(client, wid, send, log, turns, time_cap_s=time_cap_s)
            if drive.stopped.startswith("time cap"):
                await handle.terminate("benchmark: time cap")
        runs = await fetch_runs(client, wid)
        out = conversation_figures(drive, log, figures_of(runs, SIGNAL, drive.answered))

        def replayer() -> Replayer:
            return Replayer(workflows=[PydanticAIManualWorkflow], plugins=[PydanticAIPlugin()])

        out["replay"] = {
            "how": "temporalio.worker.Replayer, new for each replay, on the fetched history",
            "current_run": await timed_replay(replayer, runs[-1][1]),
        }
    finally:
        LOGS.close(wid)
    out["tool"] = "normal activity (TemporalDurability's default)"
    out["workflow_sandbox"] = "Temporal's default (sandboxed), as their docs run it"
    return out
