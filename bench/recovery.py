"""Recovery: SIGKILL the worker mid-run, restart it at once, time the way back.

The worker is a real subprocess with an `openai:` model against a fake provider that
takes `latency_s` per call, so model calls are in flight when the kill lands. All
times come from the server's history (event times), measured from the moment the new
worker process was spawned:

- `ready_s`: the new worker first polls its task queue (process start-up);
- `next_step_s`: the first activity or local-activity completion in any conversation
  (the next completed step);
- `in_flight_call_s`: model calls in flight at the kill, until they completed (their
  heartbeat timeout + retry backoff + the provider's latency);
- `all_resumed_s`: every conversation has completed something again (a workflow task
  that was running in the killed worker waits for its task timeout).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from bench.cluster import Cluster, scenario_settings, wait_for_poller
from bench.drive import start_all, wait_all
from bench.fake_llm import RecordingFakeServer, fake_model_worker
from bench.goal import GOAL_LOCAL
from bench.history import in_flight_at
from onward.agent.activity_contracts import ACTIVITY_DECIDE
from onward.client.conversations import Conversations

HEARTBEAT_S = 1
PROGRESS = (EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, EventType.EVENT_TYPE_MARKER_RECORDED)


def _first_progress(events: list[HistoryEvent], after: float) -> float | None:
    times = [e.event_time.ToNanoseconds() / 1e9 for e in events if e.event_type in PROGRESS]
    return min((t for t in times if t > after), default=None)


def _rounded(values: list[float]) -> float | None:
    return round(max(values), 3) if values else None


async def recovery(
    cluster: Cluster, root: Path, *, conversations: int, steps: int, latency_s: float
) -> dict[str, Any]:
    settings = scenario_settings(
        cluster.settings, model_heartbeat_timeout=timedelta(seconds=HEARTBEAT_S)
    )
    client = cluster.client
    fake = RecordingFakeServer(steps, latency_s)
    fake.start()
    worker = fake_model_worker(
        settings,
        fake,
        root / "recovery-worker.log",
        ONWARD_MODEL_HEARTBEAT_TIMEOUT=str(HEARTBEAT_S),
    )
    worker.start()
    convs = Conversations(client, settings)
    ids = [f"rec-{i}" for i in range(conversations)]
    try:
        await wait_for_poller(client, settings.task_queue, worker.pid)
        await start_all(convs, ids, GOAL_LOCAL, "go")
        # Kill well into the run, at a moment a model call is being answered.
        warm = conversations * 4
        await fake.wait_for_async(lambda f: f.total_requests >= warm and f.in_flight > 0, 120)
        killed_at = worker.kill()
        restarted_at = worker.start()
        ready_at = await wait_for_poller(client, settings.task_queue, worker.pid)
        await wait_all(convs, ids, timeout_s=180)
    finally:
        worker.stop()
        await asyncio.to_thread(fake.stop)
    firsts: list[float] = []
    in_flight: list[float] = []
    for cid in ids:
        events = list((await client.get_workflow_handle(cid).fetch_history()).events)
        first = _first_progress(events, restarted_at)
        if first is not None:
            firsts.append(first - restarted_at)
        in_flight += [t - restarted_at for t in in_flight_at(events, ACTIVITY_DECIDE, killed_at)]
    return {
        "conversations": conversations,
        "provider_latency_s": latency_s,
        "model_heartbeat_timeout_s": HEARTBEAT_S,
        "kill_to_restart_s": round(restarted_at - killed_at, 3),
        "ready_s": round(ready_at - restarted_at, 3),
        "next_step_s": round(min(firsts), 3) if firsts else None,
        "in_flight_calls": len(in_flight),
        "in_flight_call_s": _rounded(in_flight),
        "in_flight_call_mean_s": round(sum(in_flight) / len(in_flight), 3) if in_flight else None,
        "all_resumed_s": _rounded(firsts),
    }
