"""The OpenAPI description of the events route (`text/event-stream`), event by event."""

from __future__ import annotations

from typing import Any, get_args

from onward.agent.events import EventType
from onward.api.errors import error_responses


def _sse_event(names: list[str], payload: dict[str, Any]) -> dict[str, Any]:
    """One kind of event as OpenAPI 3.2 documents event streams: `data` is JSON text."""
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"enum": names},
            "id": {"type": "string"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": payload,
            },
        },
    }


def _one_string(name: str) -> dict[str, Any]:
    return {"type": "object", "required": [name], "properties": {name: {"type": "string"}}}


_WORKER_PAYLOAD: dict[str, Any] = {
    "type": "object",
    "required": ["polling"],
    "properties": {"polling": {"type": "boolean"}, "detail": {"type": "string"}},
}

SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`text/event-stream`. Each event's `id` is its stream offset; "
        "`event` is the `ConversationEvent.type` (data: a `ConversationEvent`) or "
        "`delta` (data: a `TokenDelta`). `worker` (no id) says whether a worker runs the "
        "conversation: `{polling: false, detail}` while none answers (messages sent "
        "meanwhile are kept), `{polling: true}` once one does. `end` (no id) follows the "
        "last event of an ended conversation; `stream_error` (no id) reports a failure to "
        "read the stream. Comment lines are keep-alives.",
        "content": {
            "text/event-stream": {
                "schema": {
                    "oneOf": [
                        _sse_event(
                            list(get_args(EventType)),
                            {"$ref": "#/components/schemas/ConversationEvent"},
                        ),
                        _sse_event(["delta"], {"$ref": "#/components/schemas/TokenDelta"}),
                        _sse_event(["worker"], _WORKER_PAYLOAD),
                        _sse_event(["end"], _one_string("conversation_id")),
                        _sse_event(["stream_error"], _one_string("reason")),
                    ]
                }
            }
        },
    },
    **error_responses(404, 429),
}
