"""Temporal's own floor on this machine: a minimal workflow doing no-op activities.

Not a peer but a yardstick: one no-op activity round trip (activity + the workflow
task that schedules the next one) is the least any Temporal-based agent step costs
here, so onward's numbers can be read as "floor x round trips + onward's own work".
Runs without the workflow sandbox, as onward's own workflows do by default.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psutil
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.stats import process_cpu_s


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
    client: Client,
    *,
    sequential: int,
    parallel: int,
    per_workflow: int,
    server_cpu_s: Callable[[], float],
) -> dict[str, Any]:
    """Per-round-trip time of one workflow alone, then round trips/s with `parallel`
    workflows of `per_workflow` activities at once, and the CPU each costs."""
    here = psutil.Process()
    queue = f"bench-floor-{uuid.uuid4().hex[:6]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[NoopWorkflow],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await client.execute_workflow(NoopWorkflow.run, 3, id=f"{queue}-warm", task_queue=queue)
        began = time.perf_counter()
        await client.execute_workflow(
            NoopWorkflow.run, sequential, id=f"{queue}-seq", task_queue=queue
        )
        per_trip = (time.perf_counter() - began) / sequential
        cpu = process_cpu_s(here), server_cpu_s()
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
        harness_cpu, server_cpu = process_cpu_s(here) - cpu[0], server_cpu_s() - cpu[1]
    trips = parallel * per_workflow
    return {
        "round_trip_ms": round(per_trip * 1000, 3),
        "round_trips_per_s": round(trips / wall, 1),
        "parallel_workflows": parallel,
        "activities_per_workflow": per_workflow,
        "worker_and_client_cpu_ms_per_trip": round(harness_cpu * 1000 / trips, 2),
        "server_cpu_ms_per_trip": round(server_cpu * 1000 / trips, 2),
    }
