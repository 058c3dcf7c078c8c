"""History bytes per turn, read from the server's histories, and the turn driver.

The driver sends one user message (a signal) at a time and waits until the reply is
produced and the workflow is idle (no pending activity or workflow task), like a
person who reads each answer before typing. So in every run's history a turn is the
span from its signal to the next one, and what a turn adds is the bytes of those
events. The same code measures onward and the peers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError
from temporalio.worker import Replayer

from bench.manual import CallLog, new_content_bytes
from bench.stats import summary_ms

CHECKPOINTS = (10, 100, 1000)
"""Turns at which bytes per turn and run size are reported."""

_CLOSING = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued as new",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
}


@dataclass
class RunBytes:
    """One run of a conversation, split at its user-message signals."""

    run_id: str
    start_bytes: int = 0
    """Events before the run's first user message: the start (for a continued run,
    the state it carries) and its first workflow task."""
    turn_bytes: list[int] = field(default_factory=list[int])
    end_bytes: int = 0
    """The closing event, when the run has closed (continue-as-new carries the next
    run's input in it)."""
    closed: str | None = None
    close_reason: str = ""

    @property
    def total(self) -> int:
        return self.start_bytes + sum(self.turn_bytes) + self.end_bytes


def split_run(run_id: str, events: Sequence[HistoryEvent], signal: str) -> RunBytes:
    """Bytes of `events` by turn: each `signal` event starts a turn."""
    out = RunBytes(run_id)
    for e in events:
        size = e.ByteSize()
        kind = e.event_type
        if kind in _CLOSING:
            out.end_bytes += size
            out.closed = _CLOSING[kind]
            if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
                out.close_reason = e.workflow_execution_terminated_event_attributes.reason
            continue
        if (
            kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            and e.workflow_execution_signaled_event_attributes.signal_name == signal
        ):
            out.turn_bytes.append(0)
        if out.turn_bytes:
            out.turn_bytes[-1] += size
        else:
            out.start_bytes += size
    return out


@dataclass
class HistoryFigures:
    """A conversation's runs, oldest first, and what each turn added."""

    runs: list[RunBytes]
    answered: int
    """Turns whose reply was produced; a turn cut short by a termination is dropped."""

    def turn_bytes(self) -> list[int]:
        return [b for run in self.runs for b in run.turn_bytes][: self.answered]

    def run_size_after(self) -> list[int]:
        """The current run's bytes after each turn (its start and its turns so far)."""
        sizes: list[int] = []
        for run in self.runs:
            size = run.start_bytes
            for b in run.turn_bytes:
                size += b
                sizes.append(size)
        return sizes[: self.answered]

    def at(self, turn: int) -> dict[str, int] | None:
        """Bytes added by `turn` and the run's size after it; None if never reached."""
        if turn > self.answered:
            return None
        return {
            "bytes_added": self.turn_bytes()[turn - 1],
            "run_bytes": self.run_size_after()[turn - 1],
        }

    def summary(self, checkpoints: Sequence[int] = CHECKPOINTS) -> dict[str, Any]:
        starts = [r.start_bytes for r in self.runs[1:]]
        return {
            "turns_answered": self.answered,
            "runs": len(self.runs),
            "total_history_bytes": sum(r.total for r in self.runs),
            "at_turn": {str(t): self.at(t) for t in checkpoints if t <= self.answered},
            "max_run_bytes": max((r.total for r in self.runs), default=0),
            # What continue-as-new carries into a run (its start), when runs continue.
            "continued_run_start_bytes_max": max(starts, default=None),
        }


async def run_ids(client: Client, workflow_id: str) -> list[str]:
    """Every run of `workflow_id`'s continue-as-new chain, oldest first."""
    ids: list[str] = []
    run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    while run_id:
        ids.append(run_id)
        previous = ""
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        async for e in handle.fetch_history_events():
            previous = e.workflow_execution_started_event_attributes.continued_execution_run_id
            break
        run_id = previous
    return ids[::-1]


async def fetch_runs(client: Client, workflow_id: str) -> list[tuple[str, WorkflowHistory]]:
    """(run id, history) of every run, oldest first."""
    out: list[tuple[str, WorkflowHistory]] = []
    for run_id in await run_ids(client, workflow_id):
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        out.append((run_id, history))
    return out


def figures_of(
    runs: Sequence[tuple[str, WorkflowHistory]], signal: str, answered: int
) -> HistoryFigures:
    return HistoryFigures([split_run(rid, h.events, signal) for rid, h in runs], answered)


@dataclass
class Drive:
    """How far the driver got, and each turn's time from signal to reply."""

    answered: int = 0
    stopped: str = "completed"
    turn_seconds: list[float] = field(default_factory=list[float])
    wall_s: float = 0.0


async def _running(client: Client, workflow_id: str) -> tuple[bool, bool]:
    """(running, idle): idle = no pending activity and no pending workflow task."""
    d = await client.get_workflow_handle(workflow_id).describe()
    raw = d.raw_description
    running = raw.workflow_execution_info.status == (
        WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    )
    idle = not raw.pending_activities and not raw.HasField("pending_workflow_task")
    return running, idle


async def wait_idle(client: Client, workflow_id: str, timeout_s: float) -> bool:
    """Wait until the workflow has nothing in flight; False if it closed instead."""
    deadline = time.monotonic() + timeout_s
    while True:
        running, idle = await _running(client, workflow_id)
        if not running:
            return False
        if idle:
            return True
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: {workflow_id} still busy after {timeout_s:.0f}s")
        await asyncio.sleep(0.002)  # poll interval of a condition with a deadline


async def _replied(
    client: Client, workflow_id: str, log: CallLog, turn: int, timeout_s: float
) -> bool:
    """True once turn `turn`'s reply exists; False if the workflow closed first."""
    deadline = time.monotonic() + timeout_s
    while not await log.wait_replies(turn, timeout_s=1.0):
        running, _ = await _running(client, workflow_id)
        if not running:
            return False
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark: no reply to turn {turn} within {timeout_s:.0f}s")
    return True


async def drive_turns(
    client: Client,
    workflow_id: str,
    send: Callable[[int], Awaitable[None]],
    log: CallLog,
    turns: int,
    *,
    time_cap_s: float,
    turn_timeout_s: float = 120.0,
    after_turn: Callable[[], None] | None = None,
) -> Drive:
    """Turns 1..`turns` one at a time, until done, the workflow closes or the cap."""
    out = Drive()
    began = time.monotonic()
    for n in range(1, turns + 1):
        if time.monotonic() - began > time_cap_s:
            out.stopped = f"time cap: {time_cap_s:.0f} s"
            break
        sent = time.perf_counter()
        try:
            await send(n)
        except RPCError as exc:
            out.stopped = f"signal refused at turn {n}: {exc.message}"
            break
        if not await _replied(client, workflow_id, log, n, turn_timeout_s):
            out.stopped = f"closed during turn {n}"
            break
        out.turn_seconds.append(log.times[-1] - sent)
        out.answered = n
        if after_turn is not None:
            after_turn()
        if not await wait_idle(client, workflow_id, turn_timeout_s):
            out.stopped = f"closed after turn {n}"
            break
    out.wall_s = round(time.monotonic() - began, 2)
    return out


async def timed_replay(
    make_replayer: Callable[[], Replayer], history: WorkflowHistory
) -> dict[str, Any]:
    """Milliseconds for a new `Replayer` (a fresh worker: no cache, nothing loaded for
    this workflow) to replay `history`, and whether it replayed cleanly."""
    replayer = make_replayer()
    began = time.perf_counter()
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    ms = (time.perf_counter() - began) * 1000
    failure = result.replay_failure
    return {
        "ms": round(ms, 1),
        "events": len(history.events),
        "bytes": sum(e.ByteSize() for e in history.events),
        "replayed": failure is None,
        **({"failure": f"{type(failure).__name__}: {failure}"} if failure else {}),
    }


def _stopped(drive: Drive, figures: HistoryFigures) -> str:
    """Why the conversation stopped, with the server's reason when it closed it."""
    last = figures.runs[-1] if figures.runs else None
    if last is None or last.closed in (None, "continued as new"):
        return drive.stopped
    reason = f" ({last.close_reason})" if last.close_reason else ""
    return f"{drive.stopped}: {last.closed}{reason}"


def conversation_figures(drive: Drive, log: CallLog, figures: HistoryFigures) -> dict[str, Any]:
    """What the README's table quotes for one system, plus the series the chart draws."""
    answered = drive.answered
    window = min(100, answered)
    by_turns: dict[str, float] = {}
    for first, last in ((1, 10), (91, 100), (991, 1000)):
        if answered >= last:
            by_turns[f"{first}-{last}"] = summary_ms(log.step_seconds(first, last))["p50_ms"]
    steps = summary_ms(log.step_seconds(1, window))
    return {
        "stopped": _stopped(drive, figures),
        **figures.summary(),
        "new_content_bytes_per_turn": new_content_bytes(max(1, answered)),
        "model_calls_per_turn": round(log.calls_in(answered) / answered, 2) if answered else None,
        "step_p50_ms": steps["p50_ms"],
        "step_p95_ms": steps["p95_ms"],
        "step_window_turns": f"1-{window}",
        "step_p50_ms_by_turns": by_turns,
        "turn_ms": summary_ms(drive.turn_seconds[:window]),
        "wall_s": drive.wall_s,
        "bytes_per_turn_series": figures.turn_bytes(),
        "run_bytes_series": figures.run_size_after(),
    }
