"""onward itself: per-step latency (unloaded) and throughput (1,000 at once).

The worker runs in this process with an instant `ScriptedModel`, so every measured
millisecond is orchestration: Temporal round trips, history writes, (de)serialisation
and onward's workflow code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil
from temporalio.client import Client
from temporalio.worker import Worker

from bench.cluster import Cluster, scenario_settings
from bench.goal import StepScript
from bench.history import Breakdown, step_breakdown
from bench.stats import process_cpu_s, summary_ms
from onward.activities.llm import LlmActivities
from onward.activities.tools import ToolActivities
from onward.agent.workflow import ConversationWorkflow
from onward.client.conversations import Conversations
from onward.config import Settings, WorkflowSandbox
from onward.goals.catalog import GoalCatalog
from onward.models.base import Model
from onward.store.transcripts import transcript_store
from onward.testing import ScriptedModel
from onward.worker import build_workers, running_workers, workflow_runner

BuildWorkers = Callable[[Client, Settings, Model], Sequence[Worker]]

START_CONCURRENCY = 100
"""Concurrent workflow starts: enough to fill the server, few enough not to time out."""


@dataclass
class Run:
    script: StepScript
    conversation_ids: list[str]
    wall_s: float
    first_finish_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict[str, Any])


async def run_conversations(
    client: Client,
    settings: Settings,
    *,
    goal: str,
    conversations: int,
    steps: int,
    concurrency: int,
    prefix: str,
    build: BuildWorkers = build_workers,
) -> Run:
    """Run `conversations` to their end, at most `concurrency` at a time."""
    script = StepScript(steps)
    workers = build(client, settings, ScriptedModel(script))
    convs = Conversations(client, settings)
    ids = [f"{prefix}-{i}" for i in range(conversations)]
    running = asyncio.Semaphore(concurrency)
    starting = asyncio.Semaphore(START_CONCURRENCY)

    async def one(cid: str) -> None:
        async with running:
            async with starting:
                await convs.start(goal, first_message="go", conversation_id=cid)
            await convs.result(cid)

    async with running_workers(workers):
        began = time.perf_counter()
        await asyncio.gather(*(one(cid) for cid in ids))
        wall = time.perf_counter() - began
    first = min(script.finished.values(), default=began) - began
    return Run(script=script, conversation_ids=ids, wall_s=wall, first_finish_s=first)


async def breakdown(client: Client, conversation_ids: list[str]) -> dict[str, float]:
    total = Breakdown()
    for cid in conversation_ids:
        history = await client.get_workflow_handle(cid).fetch_history()
        total.add(step_breakdown(history.events))
    return total.per_step_ms()


def one_queue_workers(client: Client, settings: Settings, model: Model) -> list[Worker]:
    """What-if, not how onward runs: model calls on the conversation's own task queue,
    so the server hands each one to the worker in its workflow task's reply (eager
    activity dispatch) instead of through the llm queue, and nothing caps them."""
    catalog = GoalCatalog.discover(settings.goal_modules)
    store = transcript_store(settings)
    return [
        Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[ConversationWorkflow],
            activities=[
                ToolActivities(store, catalog).run_tool,
                *LlmActivities(model, store).all(),
            ],
            workflow_runner=workflow_runner(settings),
        )
    ]


async def latency(
    cluster: Cluster,
    *,
    goal: str,
    conversations: int,
    steps: int,
    tag: str,
    one_queue: bool = False,
    sandbox: WorkflowSandbox | None = None,
) -> dict[str, Any]:
    """Per-step time with one conversation at a time (no queueing), plus where it goes;
    `one_queue`: with `one_queue_workers`; `sandbox`: instead of the configured mode."""
    client, settings = cluster.client, scenario_settings(cluster.settings)
    if sandbox is not None:
        settings = settings.model_copy(update={"workflow_sandbox": sandbox})
    build: BuildWorkers = build_workers
    if one_queue:
        settings = settings.model_copy(update={"llm_task_queue": settings.task_queue})
        build = one_queue_workers
    # One warm-up conversation: first-use costs (imports, connections) are not steps.
    await run_conversations(
        client,
        settings,
        goal=goal,
        conversations=1,
        steps=2,
        concurrency=1,
        prefix=f"warm-{tag}",
        build=build,
    )
    run = await run_conversations(
        client,
        settings,
        goal=goal,
        conversations=conversations,
        steps=steps,
        concurrency=1,
        prefix=f"lat-{tag}",
        build=build,
    )
    out: dict[str, Any] = summary_ms(run.script.step_seconds())
    out["breakdown_ms_per_step"] = await breakdown(client, run.conversation_ids)
    out["conversations"] = conversations
    out["steps_per_conversation"] = steps
    return out


async def throughput(
    cluster: Cluster, *, goal: str, conversations: int, steps: int, tag: str
) -> dict[str, Any]:
    """All conversations started at once; steps/s and conversations/s end to end."""
    client, settings = cluster.client, scenario_settings(cluster.settings)
    here = psutil.Process()
    cpu = process_cpu_s(here), cluster.server_cpu_s()
    run = await run_conversations(
        client,
        settings,
        goal=goal,
        conversations=conversations,
        steps=steps,
        concurrency=conversations,
        prefix=f"tp-{tag}",
    )
    harness_cpu, server_cpu = process_cpu_s(here) - cpu[0], cluster.server_cpu_s() - cpu[1]
    done = run.script.steps_done()
    loaded = summary_ms(run.script.step_seconds())
    return {
        "conversations": conversations,
        "steps_per_conversation": steps,
        "steps": done,
        "wall_s": round(run.wall_s, 3),
        "steps_per_s": round(done / run.wall_s, 1),
        "conversations_per_s": round(conversations / run.wall_s, 2),
        "first_finish_s": round(run.first_finish_s, 3),
        "step_p50_under_load_ms": loaded["p50_ms"],
        "step_p95_under_load_ms": loaded["p95_ms"],
        "model_calls": sum(len(times) for times in run.script.calls.values()),
        "llm_concurrency": settings.llm_concurrency,
        # The in-process worker and the client share this process.
        "worker_and_client_cpu_ms_per_step": round(harness_cpu * 1000 / done, 2),
        "server_cpu_ms_per_step": round(server_cpu * 1000 / done, 2),
    }
