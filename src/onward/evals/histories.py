"""What a conversation's Temporal histories say that its transcript does not: the
model's decisions in order (an answer and a question are both assistant text in the
transcript), how long the model calls took, and whether any tool activity ran.

Every run of the conversation's continue-as-new chain and of its sub-agents is read
(`onward.client.erasure.runs_of` finds them through the histories, no visibility API).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from onward.agent.activity_contracts import (
    ACTIVITY_DECIDE,
    ACTIVITY_GUARDRAIL,
    ACTIVITY_TOOL,
    DecideResult,
)
from onward.agent.decisions import Decision
from onward.client.erasure import runs_of

LOCAL_ACTIVITY_MARKER = "core_local_activity"
"""The marker a local activity (a `local=True` tool) leaves in history."""
_MODEL_ACTIVITIES = (ACTIVITY_DECIDE, ACTIVITY_GUARDRAIL)
_CLOSED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}


@dataclass
class HistoryFacts:
    decisions: list[Decision] = field(default_factory=list[Decision])
    """The conversation's own model decisions in order (not its sub-agents')."""
    model_seconds: float = 0.0
    """Model calls, scheduled to closed, sub-agents included."""
    tool_activities: int = 0
    """Tool activities scheduled and local tool activities recorded (side effects)."""
    elapsed_seconds: float = 0.0
    """From the conversation's first event to its latest (its own runs)."""


async def history_facts(client: Client, conversation_id: str) -> HistoryFacts:
    """Read every run of `conversation_id` and its sub-agents, oldest first."""
    facts = HistoryFacts()
    span: list[float] = []
    for workflow_id, run_id in await runs_of(client, conversation_id):
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        events = [e async for e in handle.fetch_history_events()]
        own = workflow_id == conversation_id
        await _scan(client, events, facts, own=own)
        if own and events:
            span += [_seconds(events[0]), _seconds(events[-1])]
    facts.model_seconds = round(facts.model_seconds, 3)
    facts.elapsed_seconds = round(max(span) - min(span), 3) if span else 0.0
    return facts


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e9


async def _scan(client: Client, events: list[HistoryEvent], facts: HistoryFacts, own: bool) -> None:
    scheduled: dict[int, tuple[str, float]] = {}
    for event in events:
        at = _seconds(event)
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
            facts.tool_activities += name == ACTIVITY_TOOL
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes.marker_name
            facts.tool_activities += marker == LOCAL_ACTIVITY_MARKER
        elif event.event_type in _CLOSED:
            attrs = getattr(event, _CLOSED[event.event_type])
            name, since = scheduled.get(attrs.scheduled_event_id, ("", at))
            if name in _MODEL_ACTIVITIES:
                facts.model_seconds += at - since
            if (
                own
                and name == ACTIVITY_DECIDE
                and event.HasField("activity_task_completed_event_attributes")
            ):
                payloads = event.activity_task_completed_event_attributes.result.payloads
                [result] = await client.data_converter.decode(payloads, [DecideResult])
                if isinstance(result, DecideResult) and result.decision is not None:
                    facts.decisions.append(result.decision)
