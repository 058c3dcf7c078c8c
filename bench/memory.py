"""Worker memory with many idle conversations (started, waiting for a first message).

The worker is a subprocess (`python -m onward worker`) so its RSS is its own. It runs
with the shipped worker configuration: `build_workers`' default workflow cache
(`max_cached_workflows`), which `python -m onward worker` cannot change today; idle
conversations beyond the cache are evicted and cost the worker nothing.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.cluster import Cluster, WorkerProcess, scenario_settings, wait_for_poller, worker_env
from bench.drive import start_all
from bench.goal import GOAL_LOCAL
from onward.client.conversations import Conversations

MIB = 1024 * 1024
DEFAULT_MAX_CACHED_WORKFLOWS = 1000
"""`build_workers`' default, which `python -m onward worker` uses."""


async def _waiting(client: Client, queue: str) -> int:
    query = f'TaskQueue = "{queue}" AND OnwardStatus = "waiting_for_user"'
    return (await client.count_workflows(query)).count


async def idle_memory(
    cluster: Cluster, root: Path, *, conversations: int, timeout_s: float = 900
) -> dict[str, Any]:
    settings = scenario_settings(cluster.settings)
    client = cluster.client
    worker = WorkerProcess(worker_env(settings, ONWARD_MODEL="offline"), root / "mem-worker.log")
    worker.start()
    peak = 0
    try:
        await wait_for_poller(client, settings.task_queue, worker.pid)
        await asyncio.sleep(1.0)  # let the fresh worker finish its start-up allocations
        idle_rss = worker.rss_bytes()
        convs = Conversations(client, settings)
        ids = [f"idle-{settings.task_queue}-{i}" for i in range(conversations)]
        cpu = worker.cpu_s(), cluster.server_cpu_s()
        began = time.perf_counter()
        starting = asyncio.create_task(start_all(convs, ids, GOAL_LOCAL, None))
        deadline = began + timeout_s
        waiting = 0
        # Visibility says when every conversation has run its first workflow task and
        # is parked in `waiting_for_user`; RSS is sampled all along for the peak. On a
        # machine too busy to get there in time, the partial count is reported.
        while waiting < conversations and time.perf_counter() < deadline:
            await asyncio.sleep(1.0)
            if starting.done() and starting.exception() is not None:
                raise RuntimeError("idle conversations could not be started") from (
                    starting.exception()
                )
            peak = max(peak, worker.rss_bytes())
            waiting = await _waiting(client, settings.task_queue)
        settled_after = time.perf_counter() - began
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        worker_cpu, server_cpu = worker.cpu_s() - cpu[0], cluster.server_cpu_s() - cpu[1]
        await asyncio.sleep(2.0)
        rss = worker.rss_bytes()
        peak = max(peak, rss)
    finally:
        worker.stop()
    return {
        "conversations": conversations,
        "waiting": waiting,
        "complete": waiting >= conversations,
        "max_cached_workflows": DEFAULT_MAX_CACHED_WORKFLOWS,
        "rss_idle_worker_mib": round(idle_rss / MIB, 1),
        "rss_mib": round(rss / MIB, 1),
        "rss_peak_mib": round(peak / MIB, 1),
        "kib_per_conversation": round((rss - idle_rss) / 1024 / max(1, waiting), 2),
        "all_waiting_after_s": round(settled_after, 1),
        "starts_per_s": round(waiting / settled_after, 1),
        "worker_cpu_ms_per_conversation": round(worker_cpu * 1000 / max(1, waiting), 2),
        "server_cpu_ms_per_conversation": round(server_cpu * 1000 / max(1, waiting), 2),
    }
