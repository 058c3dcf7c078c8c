"""Temporal's own floor on this machine: a minimal workflow doing no-op activities.

Not a peer but a yardstick: one no-op activity round trip (activity + the workflow
task that schedules the next one) is the least any Temporal-based agent step costs
here, so onward's numbers can be read as "floor x round trips + onward's own work".
Kept in its own module with only sandbox-safe imports at module level.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker


@activity.defn(name="bench.noop")
async def noop(n: int) -> int:
    return n + 1


@workflow.defn(name="BenchNoop")
class NoopWorkflow:
    @workflow.run
    async def run(self, activities: int) -> None:
        for i in range(activities):
            await workflow.execute_activity(noop, i, start_to_close_timeout=timedelta(seconds=30))


async def measure_floor(
    client: Client, *, sequential: int, parallel: int, per_workflow: int
) -> dict[str, Any]:
    """Per-round-trip time of one workflow alone, then round trips/s with `parallel`
    workflows of `per_workflow` activities at once."""
    queue = f"bench-floor-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[NoopWorkflow], activities=[noop]):
        await client.execute_workflow(NoopWorkflow.run, 3, id=f"{queue}-warm", task_queue=queue)
        began = time.perf_counter()
        await client.execute_workflow(
            NoopWorkflow.run, sequential, id=f"{queue}-seq", task_queue=queue
        )
        per_trip = (time.perf_counter() - began) / sequential
        began = time.perf_counter()
        await asyncio.gather(
            *(
                client.execute_workflow(
                    NoopWorkflow.run, per_workflow, id=f"{queue}-par-{i}", task_queue=queue
                )
                for i in range(parallel)
            )
        )
        wall = time.perf_counter() - began
    return {
        "round_trip_ms": round(per_trip * 1000, 3),
        "round_trips_per_s": round(parallel * per_workflow / wall, 1),
        "parallel_workflows": parallel,
    }
