"""Running an eval from outside: store the cases, start `EvalWorkflow`, follow it.

The cases go into the transcript store (as blobs of the run), and the workflow gets
their refs: an eval of hundreds of conversations keeps its history small, and every
worker sharing the store reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import timedelta

from temporalio.client import Client
from temporalio.service import RPCError

from onward.agent.eval_contracts import (
    EVAL_WORKFLOW_NAME,
    QUERY_EVAL_PROGRESS,
    Candidate,
    EvalCaseRef,
    EvalProgress,
    EvalReport,
    EvalRun,
)
from onward.client.conversations import WORKFLOW_TASK_TIMEOUT, default_options
from onward.config import Settings
from onward.evals.format import EvalSet
from onward.goals.catalog import GoalCatalog
from onward.store.transcripts import transcript_store

ProgressCallback = Callable[[EvalProgress], None]


def new_run_id() -> str:
    return f"eval-{uuid.uuid4().hex[:12]}"


async def store_cases(settings: Settings, run_id: str, eval_set: EvalSet) -> list[EvalCaseRef]:
    """Put each case in the transcript store as a blob of `run_id`; their refs."""
    store = transcript_store(settings)
    refs: list[EvalCaseRef] = []
    for case in eval_set.cases:
        ref = await store.put_blob(run_id, case.model_dump_json().encode())
        refs.append(EvalCaseRef(ref=ref, label=case.id))
    return refs


async def start_eval(
    client: Client,
    settings: Settings,
    eval_set: EvalSet,
    candidate: Candidate,
    *,
    run_id: str | None = None,
    concurrency: int = 4,
    cases_per_run: int = 100,
    owner: str = "local",
) -> str:
    """Start an eval of `eval_set` against `candidate`; returns the run id.

    Raises:
        UnknownGoalError: `candidate.goal` names no registered goal.
    """
    if candidate.goal is not None:
        GoalCatalog.discover(settings.goal_modules).get(candidate.goal)
    run_id = run_id or new_run_id()
    run = EvalRun(
        run_id=run_id,
        candidate=candidate,
        cases=await store_cases(settings, run_id, eval_set),
        options=default_options(settings),
        owner=owner,
        concurrency=concurrency,
        cases_per_run=cases_per_run,
    )
    await client.start_workflow(
        EVAL_WORKFLOW_NAME,
        run,
        id=run_id,
        task_queue=settings.task_queue,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
    )
    return run_id


async def progress(client: Client, run_id: str, rpc_timeout_s: float = 5) -> EvalProgress:
    return await client.get_workflow_handle(run_id).query(
        QUERY_EVAL_PROGRESS,
        result_type=EvalProgress,
        rpc_timeout=timedelta(seconds=rpc_timeout_s),
    )


async def wait_for_report(
    client: Client,
    run_id: str,
    on_progress: ProgressCallback | None = None,
    interval_s: float = 0.5,
) -> EvalReport:
    """The eval's report once it finishes; `on_progress` gets its progress meanwhile."""
    handle = client.get_workflow_handle(run_id, result_type=EvalReport)
    result = asyncio.ensure_future(handle.result())
    try:
        while not result.done():
            if on_progress is not None:
                # No live worker for a moment (a restart): the next poll answers.
                with contextlib.suppress(RPCError):
                    on_progress(await progress(client, run_id))
            await asyncio.wait({result}, timeout=interval_s)
        return result.result()
    finally:
        result.cancel()


async def run_eval(
    client: Client,
    settings: Settings,
    eval_set: EvalSet,
    candidate: Candidate,
    *,
    run_id: str | None = None,
    concurrency: int = 4,
    on_progress: ProgressCallback | None = None,
) -> EvalReport:
    """`start_eval`, then `wait_for_report`."""
    run_id = await start_eval(
        client, settings, eval_set, candidate, run_id=run_id, concurrency=concurrency
    )
    return await wait_for_report(client, run_id, on_progress)
