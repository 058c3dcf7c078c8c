"""Workers: the conversation/tool queue and the capped llm queue.

Scale-out is more processes running this on the same task queues; Temporal
distributes the work. The llm worker's `max_concurrent_activities` caps concurrent
model calls per worker, and its task-queue rate limit caps them in total.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from onward.activities.evals import EvalActivities
from onward.activities.llm import LlmActivities
from onward.activities.mcp import McpActivities
from onward.activities.tools import ToolActivities
from onward.agent.evals import EvalWorkflow
from onward.agent.graphs import foreign_graphs
from onward.agent.workflow import ConversationWorkflow
from onward.config import Settings, WorkflowSandbox
from onward.goals.catalog import GoalCatalog
from onward.models.base import Model
from onward.observability import tracing_interceptor
from onward.store.transcripts import transcript_store


def sandbox_mode(settings: Settings) -> WorkflowSandbox:
    """The sandbox `settings.workflow_sandbox` means once goals are loaded.

    `auto` runs without the sandbox unless a loaded goal runs graph code from outside
    onward inside the workflow. onward's own workflow code, bundled graphs included,
    is kept deterministic by the replay tests of saved histories (DESIGN section 3);
    for it the sandbox only costs time: ~2-3 ms of worker CPU on every agent step
    (bench/: per-step p50 about 3 ms lower without it). User graph code gets Temporal's
    checks.
    """
    if settings.workflow_sandbox != "auto":
        return settings.workflow_sandbox
    return "shared" if foreign_graphs() else "off"


def workflow_runner(settings: Settings) -> WorkflowRunner:
    """How workflow code runs, per `sandbox_mode(settings)`.

    `shared` keeps the sandbox's checks (restricted builtins such as `open`, and calls
    such as `time.time()` on modules imported during a run) but loads modules once
    per worker. onward's workflow code is imported passed through already, so the
    SDK's default (`isolated`), which re-executes the workflow module for every run,
    only re-isolates that module's constants, for ~10-20 ms of CPU per conversation
    start or cache miss (bench/: idle starts cost the worker 5 ms instead of 16-21).
    `off` also drops the sandbox's per-activation cost and every check with it.
    """
    mode = sandbox_mode(settings)
    if mode == "off":
        return UnsandboxedWorkflowRunner()
    if mode == "isolated":
        return SandboxedWorkflowRunner()
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
    )


def build_workers(
    client: Client,
    settings: Settings,
    model: Model,
    *,
    catalog: GoalCatalog | None = None,
    interceptors: Sequence[Interceptor] = (),
    max_cached_workflows: int = 1000,
) -> list[Worker]:
    """The workers one onward worker process runs.

    Args:
        catalog: The goals whose tools these workers run; by default the goals
            `GoalCatalog.discover` finds (entry points and `settings.goal_modules`).
        max_cached_workflows: Workflows kept in memory between tasks; 0 forces a full
            replay on every task (used by tests to prove replay safety).
    """
    catalog = catalog or GoalCatalog.discover(settings.goal_modules)
    store = transcript_store(settings)
    llm = LlmActivities(model, store, settings=settings)
    tools = ToolActivities(store, catalog)
    evals = EvalActivities(client, settings, store, catalog)
    workers = [
        Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[ConversationWorkflow, EvalWorkflow],
            activities=[tools.run_tool, *evals.all()],
            # MCP list/call activities, and their pooled sessions closed with the worker.
            plugins=[McpActivities(settings, store).plugin()],
            workflow_runner=workflow_runner(settings),
            interceptors=interceptors,
            max_cached_workflows=max_cached_workflows,
            # A restarted worker picks up a dead one's workflows quickly.
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
        ),
        Worker(
            client,
            task_queue=settings.llm_task_queue,
            activities=llm.all(),
            max_concurrent_activities=settings.llm_concurrency,
            max_task_queue_activities_per_second=settings.llm_requests_per_second,
            interceptors=interceptors,
        ),
    ]
    return workers


@asynccontextmanager
async def running_workers(workers: Sequence[Worker]) -> AsyncGenerator[None]:
    """Run `workers` for the duration of the block; shut them down cleanly after."""
    async with AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        yield


async def run_worker(
    settings: Settings, client: Client, model: Model, catalog: GoalCatalog | None = None
) -> None:
    """Run until cancelled (SIGINT/SIGTERM)."""
    tracing = tracing_interceptor(settings)
    workers = build_workers(
        client, settings, model, catalog=catalog, interceptors=[tracing] if tracing else []
    )
    async with running_workers(workers):
        await asyncio.Event().wait()
