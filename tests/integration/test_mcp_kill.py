"""A worker SIGKILLed while an MCP call is running on the server.

The worker runs as a subprocess (`onward worker`) serving the conversation's
workflow and tool activities; the model is scripted in this process on the llm queue.
MCP has no idempotency key, so what happens next depends on the tool:

- read-only: the call is retried on the new worker, so the server sees it twice
  (at-least-once), and the conversation completes with the retry's result;
- not read-only nor idempotent: one attempt only, so the server sees it once, and the
  model is told the outcome is unknown instead of the call being repeated blindly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from onward.activities.llm import LlmActivities
from onward.agent.decisions import CallTools, Decision, Finish, ToolCall
from onward.agent.messages import ToolResultMessage
from onward.agent.specs import ApprovalPolicy
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.goals.base import Goal
from onward.models.base import ModelRequest
from onward.models.providers import FORBID_ENV
from onward.processes import spawn, stop
from onward.store.transcripts import transcript_store
from onward.testing import ScriptedModel
from onward.tools.mcp import McpServer
from tests.conftest import catalog_for
from tests.integration.mcp_test_server import McpTestServer
from tests.integration.test_mcp_http import results

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 2.0


class KillableWorker:
    """`onward worker` subprocesses on the conversation's task queue."""

    def __init__(self, env: WorkflowEnvironment, settings: Settings, logs: Path) -> None:
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ONWARD_")}
        self.env.update(
            {
                FORBID_ENV: os.environ[FORBID_ENV],
                "ONWARD_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                "ONWARD_DATA_DIR": str(settings.data_dir),
                "ONWARD_TASK_QUEUE": settings.task_queue,
                # Model calls go to this process's scripted model, not to the worker's.
                "ONWARD_LLM_TASK_QUEUE": f"{settings.llm_task_queue}-unused",
            }
        )

    def start(self) -> None:
        log = self.logs / f"worker-{len(self.procs) + 1}.log"
        self.procs.append(
            spawn([sys.executable, "-m", "onward", "worker"], env=self.env, log=log, cwd=REPO)
        )

    def kill(self) -> None:
        self.procs[-1].send_signal(signal.SIGKILL)
        self.procs[-1].wait()

    def tail(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.logs.glob("worker-*.log")))

    def stop_all(self) -> None:
        for proc in self.procs:
            stop(proc)


@asynccontextmanager
async def scripted_llm(
    env: WorkflowEnvironment, settings: Settings, script: Callable[[ModelRequest], Decision]
) -> AsyncGenerator[None]:
    model = ScriptedModel(script)
    # The worker subprocess shares the transcript store: the same SQLite file.
    llm = LlmActivities(model, transcript_store(settings))
    worker = Worker(env.client, task_queue=settings.llm_task_queue, activities=llm.all())
    async with worker:
        yield


async def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 60) -> float:
    """Seconds it took for `predicate` to hold (checked every 50 ms)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what} did not happen within {timeout_s} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def run_with_a_kill(
    env: WorkflowEnvironment,
    settings: Settings,
    tmp_path: Path,
    web: McpTestServer,
    tool: str,
    args: dict[str, object],
    approval: dict[str, ApprovalPolicy],
    release_after: Callable[[], bool],
) -> list[ToolResultMessage]:
    name = f"mcp-kill-{uuid.uuid4().hex[:8]}"
    goal = Goal(
        name=name,
        description="Sales and squares.",
        instructions="Use the tools.",
        mcp=[McpServer.http("web", web.url, approval=approval, heartbeat_s=HEARTBEAT_S)],
        end_on_finish=True,
    )

    def script(request: ModelRequest) -> Decision:
        done = results(request)
        if not done:
            return CallTools(calls=[ToolCall(call_id="k1", tool=tool, args=args)])
        return Finish(answer=f"ok={done[0].ok}: {done[0].content or done[0].error}")

    workers = KillableWorker(env, settings, tmp_path)
    async with scripted_llm(env, settings, script):
        try:
            workers.start()
            convs = Conversations(env.client, settings, catalog_for(settings, [goal]))
            cid = await convs.start(name, first_message="go")
            await wait_until(web.started.is_set, f"the call to {tool} reaching the server")
            workers.kill()
            killed_at = time.monotonic()
            workers.start()
            await wait_until(release_after, "the retry decision", timeout_s=60)
            print(f"{tool}: retry decided {time.monotonic() - killed_at:.1f} s after the kill")
            web.release.set()
            result = await asyncio.wait_for(convs.result(cid), 60)
            snap = await convs.snapshot(cid)
        except BaseException:
            print(workers.tail())
            raise
        finally:
            web.release.set()
            workers.stop_all()
    assert result.outcome == "finished"
    return [m for m in snap.messages if isinstance(m, ToolResultMessage)]


async def test_a_read_only_call_is_retried_after_a_worker_kill(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    with McpTestServer() as web:
        (outcome,) = await run_with_a_kill(
            dev_env,
            settings,
            tmp_path,
            web,
            "slow_square",
            {"x": 7},
            {},
            release_after=lambda: web.count("slow_square") == 2,
        )
        seen = web.count("slow_square")
    print(f"read-only MCP call, worker SIGKILLed mid-call: the server saw it {seen} times")
    assert seen == 2  # at-least-once: the killed attempt and the retry
    assert outcome.ok and outcome.content == {"result": 49}


async def test_a_call_that_is_not_safe_to_repeat_runs_once_and_the_model_is_told(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    with McpTestServer() as web:
        lost_at: list[float] = []

        def settled() -> bool:
            # No second call may come: wait past the heartbeat timeout and a retry's
            # backoff, then let the blocked first call go.
            if not lost_at:
                lost_at.append(time.monotonic())
            return time.monotonic() - lost_at[0] > HEARTBEAT_S + 3

        (outcome,) = await run_with_a_kill(
            dev_env,
            settings,
            tmp_path,
            web,
            "record_sale",
            {"item": "mug", "amount": 5},
            {"record_sale": "auto"},
            release_after=settled,
        )
        seen = web.count("record_sale")
    print(f"non-idempotent MCP call, worker SIGKILLed mid-call: the server saw it {seen} time")
    assert seen == 1
    assert not outcome.ok and outcome.error is not None
    assert "may or may not have run on the server" in outcome.error
