"""Peer: the OpenAI Agents SDK on Temporal, in the history scenario.

Set up as the integration documents it: `OpenAIAgentsPlugin` on the client (model
calls become activities), the tool an activity through `activity_as_tool`, and
`Runner.run` inside the workflow. (`temporalio.contrib.openai_agents` forwards to
the standalone `temporalio-openai-agents` package; this imports it directly, as its
README asks of new code.) Multi-turn as their samples do it: the workflow keeps the
run's input list (`result.to_input_list()`) and appends each user message.

The model comes from `TestModelProvider`, the integration's documented test seam,
around a small `agents.Model` that reads the page the user names, then replies:
instant, like onward's `ScriptedModel`. Tracing is off (it would export to OpenAI).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from agents import (
    Agent,
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    RunConfig,
    Runner,
    Tool,
    TResponseInputItem,
)
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.openai_agents import ModelActivityParameters, OpenAIAgentsPlugin
from temporalio.openai_agents import workflow as agents_workflow
from temporalio.openai_agents.testing import ResponseBuilders, TestModelProvider
from temporalio.worker import Replayer, Worker

from bench.history_size import (
    conversation_figures,
    drive_turns,
    fetch_runs,
    figures_of,
    timed_replay,
)
from bench.manual import INSTRUCTIONS, TOOL_NAME, CallLogs, page, page_number, reply_text, user_text

if TYPE_CHECKING:
    from agents.items import TResponseStreamEvent
    from openai.types.responses.response_prompt_param import ResponsePromptParam

SIGNAL = "user_message"
LOGS = CallLogs()
"""The model runs inside an activity of this process: it finds its conversation's log
by the activity's workflow id."""


def answer(input: str | list[TResponseInputItem]) -> tuple[ModelResponse, bool]:
    """The page reader's response to `input`, and whether it is the turn's reply."""
    items: list[Any] = [{"role": "user", "content": input}] if isinstance(input, str) else input
    last = cast(dict[str, Any], items[-1])
    if last.get("type") == "function_call_output":
        # The tool's output is `str()` of its result: "{'page': N, 'text': ...}".
        n = page_number(str(last["output"]).split(",", 1)[0])
        return ResponseBuilders.output_message(reply_text(n)), True
    n = page_number(str(last["content"]))
    call = ResponseBuilders.tool_call(
        json.dumps({"n": n}), TOOL_NAME, call_id=f"read-{n}", item_id=f"fc-{n}"
    )
    return call, False


class PageReaderModel(Model):
    """Calls `read_page` for the page the user names; after the tool's output, replies."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> ModelResponse:
        log = LOGS.get(activity.info().workflow_id or "")
        log.call()
        response, is_reply = answer(input)
        if is_reply:
            log.replied()
        return response

    def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the benchmark does not stream")


@activity.defn(name=TOOL_NAME)
async def read_page(n: int) -> dict[str, object]:
    """Read page `n` of the manual (about 2 KB of text)."""
    return page(n)


@workflow.defn(name="BenchOpenAIAgentsManual")
class OpenAIAgentsManualWorkflow:
    """One conversation: each user message (a signal) is one `Runner.run` over the
    input list the workflow keeps."""

    def __init__(self) -> None:
        self._inbox: list[str] = []
        self._items: list[TResponseInputItem] = []

    @workflow.signal(name=SIGNAL)
    def user_message(self, text: str) -> None:
        self._inbox.append(text)

    @workflow.run
    async def run(self) -> None:
        agent = Agent[None](
            name="bench-manual",
            instructions=INSTRUCTIONS,
            tools=[
                agents_workflow.activity_as_tool(
                    read_page, start_to_close_timeout=timedelta(seconds=30)
                )
            ],
        )
        while True:
            await workflow.wait_condition(lambda: bool(self._inbox))
            message: TResponseInputItem = {"role": "user", "content": self._inbox.pop(0)}
            result = await Runner.run(
                agent, [*self._items, message], run_config=RunConfig(tracing_disabled=True)
            )
            self._items = result.to_input_list()


def _plugin() -> OpenAIAgentsPlugin:
    return OpenAIAgentsPlugin(
        model_params=ModelActivityParameters(start_to_close_timeout=timedelta(seconds=60)),
        model_provider=TestModelProvider(PageReaderModel()),
        add_temporal_spans=False,
    )


async def openai_agents_history(
    address: str, namespace: str, *, turns: int, time_cap_s: float
) -> dict[str, Any]:
    """The scenario on the OpenAI Agents SDK, with its own client (its plugin)."""
    client = await Client.connect(address, namespace=namespace, plugins=[_plugin()])
    queue = f"bench-openai-agents-{uuid.uuid4().hex[:6]}"
    wid = f"history-openai-agents-{uuid.uuid4().hex[:8]}"
    log = LOGS.open(wid)
    handle = client.get_workflow_handle(wid)

    async def send(n: int) -> None:
        await handle.signal(SIGNAL, user_text(n))

    try:
        worker = Worker(
            client,
            task_queue=queue,
            workflows=[OpenAIAgentsManualWorkflow],
            activities=[read_page],
        )
        async with worker:
            await client.start_workflow(OpenAIAgentsManualWorkflow.run, id=wid, task_queue=queue)
            drive = await drive_turns(client, wid, send, log, turns, time_cap_s=time_cap_s)
            if drive.stopped.startswith("time cap"):
                await handle.terminate("benchmark: time cap")
        runs = await fetch_runs(client, wid)
        out = conversation_figures(drive, log, figures_of(runs, SIGNAL, drive.answered))

        def replayer() -> Replayer:
            return Replayer(workflows=[OpenAIAgentsManualWorkflow], plugins=[_plugin()])

        out["replay"] = {
            "how": "temporalio.worker.Replayer, new for each replay, on the fetched history",
            "current_run": await timed_replay(replayer, runs[-1][1]),
        }
    finally:
        LOGS.close(wid)
    out["tool"] = "normal activity (activity_as_tool)"
    out["workflow_sandbox"] = "Temporal's default (sandboxed), as their docs run it"
    return out
