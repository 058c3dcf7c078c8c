"""onward in the history scenario: one conversation of up to 1,000 turns (one user
message, one 2 KB tool result, one reply each) on the bench's embedded server, then a
`Replayer` (a fresh worker) replays its current run and its largest one."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.worker import Replayer

from bench.cluster import BENCH_GOAL_MODULE, Cluster, scenario_settings
from bench.history_size import (
    conversation_figures,
    drive_turns,
    fetch_runs,
    figures_of,
    timed_replay,
)
from bench.manual import GOAL_MANUAL, TOOL_NAME, CallLogs, reply_text, user_text
from onward.agent.contracts import SIGNAL_SEND_MESSAGE, SendMessage
from onward.agent.decisions import AskUser, CallTools, ToolCall
from onward.agent.messages import ToolResultMessage, UserMessage
from onward.agent.workflow import ConversationWorkflow
from onward.client.connect import data_converter
from onward.client.conversations import Conversations
from onward.models.base import ModelRequest
from onward.testing import ScriptedModel, Step
from onward.worker import build_workers, running_workers, workflow_runner

MANUAL_MODULE = "bench.manual"


def page_reader(logs: CallLogs) -> ScriptedModel:
    """A `ScriptedModel` that plays the scenario: read the page the user names, then
    reply; every call is logged under its conversation."""

    def script(request: ModelRequest) -> Step:
        log = logs.get(request.conversation_id)
        log.call()
        last = request.messages[-1]
        if isinstance(last, UserMessage):
            n = int(last.text.split()[-1])
            return CallTools(calls=[ToolCall(call_id=f"read-{n}", tool=TOOL_NAME, args={"n": n})])
        if not isinstance(last, ToolResultMessage) or not last.ok:
            raise AssertionError(f"benchmark: unexpected last message {last!r}")
        log.replied()
        return AskUser(text=reply_text(int(last.content["page"])))

    return ScriptedModel(script)


async def onward_history(cluster: Cluster, *, turns: int, time_cap_s: float) -> dict[str, Any]:
    """Drive the conversation, then read its histories and time the replays."""
    settings = scenario_settings(cluster.settings, goal_modules=[BENCH_GOAL_MODULE, MANUAL_MODULE])
    client = cluster.client
    cid = f"history-onward-{uuid.uuid4().hex[:8]}"
    logs = CallLogs()
    log = logs.open(cid)
    model = page_reader(logs)
    handle = client.get_workflow_handle(cid)

    async def send(n: int) -> None:
        await handle.signal(SIGNAL_SEND_MESSAGE, SendMessage(text=user_text(n), message_id=f"p{n}"))

    async with running_workers(build_workers(client, settings, model)):
        await Conversations(client, settings).start(GOAL_MANUAL, conversation_id=cid)
        # The scripted model keeps every request (each with the whole transcript):
        # drop them after each turn, or memory grows with the square of the turns.
        drive = await drive_turns(
            client, cid, send, log, turns, time_cap_s=time_cap_s, after_turn=model.calls.clear
        )
    runs = await fetch_runs(client, cid)
    out = conversation_figures(drive, log, figures_of(runs, SIGNAL_SEND_MESSAGE, drive.answered))

    def replayer() -> Replayer:
        return Replayer(
            workflows=[ConversationWorkflow],
            data_converter=data_converter(settings),
            workflow_runner=workflow_runner(settings),
        )

    largest = max(runs, key=lambda r: sum(e.ByteSize() for e in r[1].events))
    out["replay"] = {
        "how": "temporalio.worker.Replayer, new for each replay, on the fetched history",
        "current_run": await timed_replay(replayer, runs[-1][1]),
        "largest_run": await timed_replay(replayer, largest[1]),
    }
    out["turns_before_continue_as_new"] = settings.turns_before_continue_as_new
    out["tool"] = "normal activity"
    return out
