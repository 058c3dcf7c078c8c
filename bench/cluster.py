"""The benchmark's Temporal: one embedded dev server in a temp dir, and worker processes.

Every scenario gets its own task queues on the same server, so one scenario's leftover
workflows never compete with the next one's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeTaskQueueResponse,
)
from temporalio.client import Client

from bench.stats import process_cpu_s
from onward.client.connect import connect
from onward.config import Settings
from onward.processes import free_port, spawn
from onward.server import DYNAMIC_CONFIG, EmbeddedServer

BENCH_GOAL_MODULE = "bench.goal"
REPO_ROOT = Path(__file__).resolve().parent.parent


def scenario_settings(base: Settings, **overrides: object) -> Settings:
    """`base` with fresh task queues, so scenarios share the server but not queues."""
    suffix = uuid.uuid4().hex[:6]
    values: dict[str, object] = {
        "task_queue": f"bench-{suffix}",
        "llm_task_queue": f"bench-llm-{suffix}",
        "goal_modules": [BENCH_GOAL_MODULE],
        # One turn holds every step of a benchmark conversation; the default cap (12)
        # would park long ones waiting for the user.
        "max_steps_per_turn": 100,
    }
    values.update(overrides)
    return base.model_copy(update=values)


@dataclass
class Cluster:
    """The running server: base settings (its address, the data dir) and a client."""

    settings: Settings
    client: Client
    server_pid: int

    def server_cpu_s(self) -> float:
        """CPU seconds the server process has used so far (user + system)."""
        return process_cpu_s(psutil.Process(self.server_pid))

    async def settle(
        self, window_s: float = 0.5, busy: float = 0.1, limit_s: float = 60.0
    ) -> float:
        """Wait until the server uses under `busy` of a core over a `window_s` window
        (work left over from the previous scenario: timers, visibility writes), at most
        `limit_s`; returns the seconds waited. Timings then measure their own scenario."""
        start = time.monotonic()
        while time.monotonic() - start < limit_s:
            before = self.server_cpu_s()
            await asyncio.sleep(window_s)  # a measurement window, not a wait for a result
            if self.server_cpu_s() - before < busy * window_s:
                break
        return round(time.monotonic() - start, 2)


@asynccontextmanager
async def embedded_server(
    data_dir: Path, dynamic_config: Mapping[str, str] = DYNAMIC_CONFIG
) -> AsyncGenerator[Cluster]:
    """onward's headless embedded dev server on a free port with its SQLite file in
    `data_dir`; `dynamic_config={}` starts it with the dev server's own defaults."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data_dir,
        embedded_port=free_port(),
        goal_modules=[BENCH_GOAL_MODULE],
    )
    server = EmbeddedServer(settings, headless=True, dynamic_config=dynamic_config)
    await asyncio.to_thread(server.start)
    try:
        assert server.process is not None
        yield Cluster(settings, await connect(settings), server.process.pid)
    finally:
        await asyncio.to_thread(server.stop)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment of a `python -m onward worker` child: ours without ONWARD_*, plus
    the scenario's settings (the worker reads nothing else)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONWARD_")}
    env.update(
        ONWARD_DATA_DIR=str(settings.data_dir),
        ONWARD_TEMPORAL_ADDRESS=settings.target_address,
        ONWARD_TASK_QUEUE=settings.task_queue,
        ONWARD_LLM_TASK_QUEUE=settings.llm_task_queue,
        ONWARD_GOAL_MODULES=BENCH_GOAL_MODULE,
        # `bench.goal` must be importable from the child wherever we were started.
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
    )
    env.update(extra)
    return env


class WorkerProcess:
    """`python -m onward worker` as a child we can SIGKILL and restart."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.env = dict(env)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the worker is not running")
        return self.proc.pid

    def start(self) -> float:
        """Spawn the worker; returns the wall-clock time (time.time()) of the spawn."""
        self.started_at = time.time()
        self.proc = spawn(
            [sys.executable, "-m", "onward", "worker"], env=self.env, log=self.log, cwd=REPO_ROOT
        )
        return self.started_at

    def kill(self) -> float:
        """SIGKILL (no cleanup, like a crash); returns the wall-clock time of the kill."""
        at = time.time()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        return at

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def rss_bytes(self) -> int:
        """Resident memory of the worker process alone (it starts no children)."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def cpu_s(self) -> float:
        """CPU seconds this worker process has used so far (user + system)."""
        return process_cpu_s(psutil.Process(self.pid))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


async def wait_until(
    predicate: Callable[[], Awaitable[bool]],
    timeout_s: float,
    interval_s: float = 0.05,
    what: str = "condition",
) -> None:
    """Poll `predicate` until it is true; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: {what} did not hold within {timeout_s:.0f}s")
        await asyncio.sleep(interval_s)


async def _describe(
    client: Client, queue: str, kind: TaskQueueType.ValueType, stats: bool = False
) -> DescribeTaskQueueResponse:
    return await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=kind,
            report_stats=stats,
        )
    )


async def wait_for_poller(client: Client, queue: str, pid: int, timeout_s: float = 60) -> float:
    """Block until worker process `pid` polls `queue` (its identity is `pid@host`);
    returns the wall-clock time it was first seen."""

    async def polling() -> bool:
        response = await _describe(client, queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
        return any(p.identity.startswith(f"{pid}@") for p in response.pollers)

    await wait_until(polling, timeout_s, interval_s=0.02, what=f"worker {pid} polling {queue}")
    return time.time()


async def activity_backlog(client: Client, queue: str) -> int:
    """Activity tasks waiting on `queue` for a free worker slot (server's estimate)."""
    response = await _describe(client, queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY, stats=True)
    return int(response.stats.approximate_backlog_count)
