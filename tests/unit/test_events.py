"""The typed event stream keeps the wire format: the JSON of every event is what the
single untyped model it replaced wrote, so SSE clients and the items continue-as-new
carried from older runs read the same."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError
from pydantic_core import to_json
from temporalio.contrib.pydantic import pydantic_data_converter

from onward.agent.events import (
    EVENT_ADAPTER,
    EVENT_MODELS,
    EVENT_TOPIC_TYPE,
    AgentFinished,
    AgentStarted,
    ApprovalDecided,
    ApprovalRequested,
    ConversationEvent,
    EventType,
    HandedOff,
    MessageEvent,
    MessageQueued,
    ModelCallStarted,
    Reviewed,
    StatusChanged,
    ToolCallFinished,
    ToolCallProposed,
    ToolCallStarted,
    UsageChanged,
)
from onward.agent.messages import AssistantMessage, Usage

# Written out by hand (and checked against the untyped model before it went): field
# order and the unset fields left out are part of the format.
WIRE: list[tuple[ConversationEvent, str]] = [
    (
        MessageEvent(message=AssistantMessage(text="hi"), index=2),
        '{"type":"message","message":{"kind":"assistant","text":"hi"},"index":2}',
    ),
    (
        MessageQueued(detail="and Paris", message_id="m1"),
        '{"type":"message_queued","detail":"and Paris","message_id":"m1"}',
    ),
    (MessageQueued(detail="and Paris"), '{"type":"message_queued","detail":"and Paris"}'),
    (StatusChanged(status="thinking", detail=None), '{"type":"status","status":"thinking"}'),
    (
        StatusChanged(status="retrying_model", detail="d", attempt=2, retry_in_s=1.0),
        '{"type":"status","status":"retrying_model","detail":"d","attempt":2,"retry_in_s":1.0}',
    ),
    (
        UsageChanged(usage=Usage(requests=1, input_tokens=3, output_tokens=4)),
        '{"type":"usage","usage":{"requests":1,"input_tokens":3,"output_tokens":4,'
        '"cached_tokens":0,"cost_usd":0.0,"cost_unknown_requests":0}}',
    ),
    (ModelCallStarted(detail="1"), '{"type":"model_call_started","detail":"1"}'),
    (
        ToolCallProposed(call_id="c", tool="t", args={"a": 1}, args_hash="h"),
        '{"type":"tool_call_proposed","call_id":"c","tool":"t","args":{"a":1},"args_hash":"h"}',
    ),
    (
        ToolCallStarted(call_id="c", tool="t"),
        '{"type":"tool_call_started","call_id":"c","tool":"t"}',
    ),
    (
        ToolCallFinished(call_id="c", tool="t", ok=False),
        '{"type":"tool_call_finished","call_id":"c","tool":"t","ok":false}',
    ),
    (
        ApprovalRequested(call_id="c", tool="t", args={}, args_hash="h"),
        '{"type":"approval_requested","call_id":"c","tool":"t","args":{},"args_hash":"h"}',
    ),
    (
        ApprovalRequested(
            call_id="c", tool="t", args={}, args_hash="h", agent="g", conversation_id="k"
        ),
        '{"type":"approval_requested","call_id":"c","tool":"t","args":{},"args_hash":"h",'
        '"agent":"g","conversation_id":"k"}',
    ),
    (
        ApprovalDecided(call_id="c", tool="t", decision="expired"),
        '{"type":"approval_decided","call_id":"c","tool":"t","decision":"expired"}',
    ),
    (
        AgentStarted(agent="g", conversation_id="k"),
        '{"type":"agent_started","agent":"g","conversation_id":"k"}',
    ),
    (
        AgentFinished(agent="g", conversation_id="k", detail="finished", ok=True),
        '{"type":"agent_finished","detail":"finished","ok":true,"agent":"g","conversation_id":"k"}',
    ),
    (HandedOff(agent="g"), '{"type":"handoff","agent":"g"}'),
    (
        Reviewed(agent="g", ok=False, detail="cite it"),
        '{"type":"review","detail":"cite it","ok":false,"agent":"g"}',
    ),
    (Reviewed(agent="g", ok=True), '{"type":"review","ok":true,"agent":"g"}'),
]


@pytest.mark.parametrize(("event", "wire"), WIRE, ids=[w for _, w in WIRE])
def test_each_event_keeps_its_json_and_reads_back(event: ConversationEvent, wire: str) -> None:
    assert event.model_dump_json() == wire  # what SSE sends
    assert to_json(event).decode() == wire  # what the stream's payload holds
    assert EVENT_ADAPTER.validate_json(wire) == event


def test_every_kind_is_written_out_and_named_in_event_type() -> None:
    kinds = {m.model_fields["type"].default for m in EVENT_MODELS}
    assert kinds == set(get_args(EventType))
    assert {type(e) for e, _ in WIRE} == set(EVENT_MODELS)


def test_an_unknown_type_is_rejected() -> None:
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        EVENT_ADAPTER.validate_json('{"type":"tool_call_exploded","call_id":"c"}')
    with pytest.raises(ValidationError):
        EVENT_ADAPTER.validate_json('{"status":"thinking"}')


def test_a_kind_missing_a_field_it_always_carries_is_rejected() -> None:
    with pytest.raises(ValidationError, match="ok"):
        EVENT_ADAPTER.validate_json('{"type":"tool_call_finished","call_id":"c","tool":"t"}')


def test_items_carried_from_an_older_run_parse() -> None:
    # As the untyped model wrote them: every field it had, `null`s included if a writer
    # ever kept them, and fields a kind does not carry (ignored, not an error).
    carried = [
        '{"type":"status","status":"waiting_for_user","detail":null}',
        '{"type":"message_queued","detail":"hi","message_id":null,"index":null}',
        '{"type":"review","agent":"critic","ok":true,"detail":null,"call_id":null}',
    ]
    assert [EVENT_ADAPTER.validate_json(c) for c in carried] == [
        StatusChanged(status="waiting_for_user"),
        MessageQueued(detail="hi"),
        Reviewed(agent="critic", ok=True),
    ]


def test_the_union_is_a_topic_type_for_the_pydantic_converter() -> None:
    # `stream.topic(TOPIC_EVENTS, type=EVENT_TOPIC_TYPE)` publishes through the data
    # converter and readers decode with the same type: each kind comes back as itself.
    converter = pydantic_data_converter.payload_converter
    for event, wire in WIRE:
        (payload,) = converter.to_payloads([event])
        assert payload.data.decode() == wire
        assert converter.from_payload(payload, EVENT_TOPIC_TYPE) == event
