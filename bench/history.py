"""Where a step's time goes, read from workflow histories (server timestamps).

A step is one decision plus one tool call. Between two consecutive decision
activities the server records: activity scheduled -> started -> completed, then a
workflow task scheduled -> started -> completed that schedules the next activity. So
the history splits a step into dispatch (waiting for a worker to pick a task up) and
run (the worker holding it), for activities and workflow tasks separately.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from onward.agent.activity_contracts import ACTIVITY_DECIDE

PHASES = ("activity_dispatch", "activity_run", "workflow_task_dispatch", "workflow_task_run")


def _t(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e9


@dataclass
class Breakdown:
    """Seconds spent per phase inside the measured window, and the steps it holds."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    window_s: float = 0.0
    steps: int = 0

    def add(self, other: Breakdown) -> None:
        for phase, s in other.seconds.items():
            self.seconds[phase] += s
        self.window_s += other.window_s
        self.steps += other.steps

    def per_step_ms(self) -> dict[str, float]:
        """Mean milliseconds per step by phase; `other` is what no phase covers (the
        server's own transitions between a completion and the next schedule)."""
        if not self.steps:
            return {}
        out = {f"{p}_ms": round(s * 1000 / self.steps, 3) for p, s in self.seconds.items()}
        covered = sum(self.seconds.values())
        out["other_ms"] = round((self.window_s - covered) * 1000 / self.steps, 3)
        out["total_ms"] = round(self.window_s * 1000 / self.steps, 3)
        return out


def _decision_times(events: Sequence[HistoryEvent]) -> list[float]:
    return [
        _t(e)
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == ACTIVITY_DECIDE
    ]


def _spans(events: Sequence[HistoryEvent]) -> Iterable[tuple[str, float, float]]:
    """(phase, start, end) for every activity and workflow task in the history."""
    by_id = {e.event_id: e for e in events}
    for e in events:
        kind = e.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            scheduled = by_id[e.activity_task_started_event_attributes.scheduled_event_id]
            yield "activity_dispatch", _t(scheduled), _t(e)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            started = by_id[e.activity_task_completed_event_attributes.started_event_id]
            yield "activity_run", _t(started), _t(e)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            scheduled = by_id[e.workflow_task_started_event_attributes.scheduled_event_id]
            yield "workflow_task_dispatch", _t(scheduled), _t(e)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            started = by_id[e.workflow_task_completed_event_attributes.started_event_id]
            yield "workflow_task_run", _t(started), _t(e)


def step_breakdown(events: Sequence[HistoryEvent]) -> Breakdown:
    """Phases of the tool steps of one conversation: the window runs from its first
    decision's schedule to its last one's (which finishes instead of calling a tool)."""
    decisions = _decision_times(events)
    out = Breakdown()
    if len(decisions) < 2:
        return out
    begin, end = decisions[0], decisions[-1]
    out.window_s = end - begin
    out.steps = len(decisions) - 1
    for phase, start, stop in _spans(events):
        # Clip to the window: the guardrail before and the finish after are not steps.
        overlap = min(stop, end) - max(start, begin)
        if overlap > 0:
            out.seconds[phase] += overlap
    return out


def _completed(
    events: Sequence[HistoryEvent], activity_type: str
) -> Iterable[tuple[HistoryEvent, HistoryEvent]]:
    """(scheduled, completed) event pairs of `activity_type` activities."""
    by_id = {e.event_id: e for e in events}
    for e in events:
        if e.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            continue
        scheduled = by_id[e.activity_task_completed_event_attributes.scheduled_event_id]
        if scheduled.activity_task_scheduled_event_attributes.activity_type.name == activity_type:
            yield scheduled, e


def completions_after(
    events: Sequence[HistoryEvent], activity_type: str, after: float
) -> list[float]:
    """Server times at which `activity_type` activities completed after `after`."""
    return [_t(done) for _, done in _completed(events, activity_type) if _t(done) > after]


def in_flight_at(events: Sequence[HistoryEvent], activity_type: str, at: float) -> list[float]:
    """Completion times of `activity_type` activities scheduled before `at` that
    completed after it: the calls that were in flight at that moment."""
    return [
        _t(done)
        for scheduled, done in _completed(events, activity_type)
        if _t(scheduled) < at < _t(done)
    ]
