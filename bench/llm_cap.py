"""The global model-call cap: 1,000 conversations, 50 slots, a slow fake provider.

The worker is a real `python -m onward worker` process with `ONWARD_LLM_CONCURRENCY`
set and an `openai:` model pointed at the fake server, so the cap under test is the
shipped one (the llm worker's `max_concurrent_activities`), exercised through the real
provider client. The fake counts requests in flight; the server reports the llm
queue's backlog, and utilisation is measured only while that backlog is non-empty
(an empty backlog leaves slots free by lack of work, not by fault).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.cluster import (
    Cluster,
    activity_backlog,
    scenario_settings,
    wait_for_poller,
)
from bench.drive import start_all, wait_all
from bench.fake_llm import RecordingFakeServer, fake_model_worker, mean_in_flight
from bench.goal import GOAL_LOCAL
from onward.client.conversations import Conversations

BACKLOG_INTERVAL_S = 0.1


async def _sample_backlog(
    client: Client, queue: str, samples: list[tuple[float, int]], stop: asyncio.Event
) -> None:
    while not stop.is_set():
        # A sample lost under load is a gap in the series, not a failure.
        with contextlib.suppress(Exception):
            samples.append((time.perf_counter(), await activity_backlog(client, queue)))
        await asyncio.sleep(BACKLOG_INTERVAL_S)


def _queued_windows(samples: list[tuple[float, int]]) -> list[tuple[float, float]]:
    """Spans between consecutive samples that both saw a backlog."""
    return [(a, b) for (a, n), (b, m) in pairwise(samples) if n > 0 and m > 0]


def _series(changes: list[tuple[float, int]], origin: float, points: int) -> list[list[float]]:
    """The in-flight count at `points` evenly spaced moments, for the chart."""
    if not changes:
        return []
    end = changes[-1][0]
    out: list[list[float]] = []
    index, level = 0, 0
    for i in range(points + 1):
        at = origin + (end - origin) * i / points
        while index < len(changes) and changes[index][0] <= at:
            level = changes[index][1]
            index += 1
        out.append([round(at - origin, 3), level])
    return out


async def llm_cap(
    cluster: Cluster,
    root: Path,
    *,
    conversations: int,
    steps: int,
    cap: int,
    latency_s: float,
) -> dict[str, Any]:
    settings = scenario_settings(cluster.settings, llm_concurrency=cap)
    client = cluster.client
    fake = RecordingFakeServer(steps, latency_s)
    fake.start()
    worker = fake_model_worker(
        settings, fake, root / "llm-cap-worker.log", ONWARD_LLM_CONCURRENCY=str(cap)
    )
    worker.start()
    samples: list[tuple[float, int]] = []
    stop = asyncio.Event()
    try:
        await wait_for_poller(client, settings.task_queue, worker.pid)
        convs = Conversations(client, settings)
        ids = [f"cap-{i}" for i in range(conversations)]
        sampler = asyncio.create_task(
            _sample_backlog(client, settings.llm_task_queue, samples, stop)
        )
        cpu = worker.cpu_s(), cluster.server_cpu_s()
        began = time.perf_counter()
        await start_all(convs, ids, GOAL_LOCAL, "go")
        await wait_all(convs, ids, timeout_s=600)
        wall = time.perf_counter() - began
        worker_cpu, server_cpu = worker.cpu_s() - cpu[0], cluster.server_cpu_s() - cpu[1]
        stop.set()
        await sampler
    finally:
        worker.stop()
        await asyncio.to_thread(fake.stop)
    windows = _queued_windows(samples)
    queued_s = sum(b - a for a, b in windows)
    over_cap = sum(1 for _, n in fake.changes if n > cap)
    return {
        "conversations": conversations,
        "cap": cap,
        "provider_latency_s": latency_s,
        "model_calls": fake.total_requests,
        "wall_s": round(wall, 3),
        "model_calls_per_s": round(fake.total_requests / wall, 1),
        "max_in_flight": fake.max_in_flight,
        "violations": over_cap,
        "queued_s": round(queued_s, 3),
        "slot_utilisation": round(mean_in_flight(fake.changes, windows) / cap, 4),
        "mean_in_flight_whole_run": round(mean_in_flight(fake.changes, [(began, began + wall)]), 2),
        "worker_cpu_s": round(worker_cpu, 1),
        # Near 100 % means one worker process, not the cap, limits the call rate.
        "worker_cpu_percent": round(worker_cpu * 100 / wall, 1),
        "server_cpu_s": round(server_cpu, 1),
        "in_flight_series": _series(fake.changes, began, 120),
    }
