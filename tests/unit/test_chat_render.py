"""The terminal chat reads the stream as typed events and prints them for a person."""

from __future__ import annotations

import pytest

from onward.agent.events import MessageEvent, ModelCallStarted, StatusChanged, TokenDelta
from onward.agent.messages import AssistantMessage, ToolCallMessage
from onward.cli.chat_api import WorkerChanged, decode
from onward.cli.chat_render import ChatPrinter
from onward.client.sse import SseEvent
from onward.exceptions import ChatError


def test_sse_events_decode_into_the_models_the_server_published() -> None:
    assert decode(SseEvent("status", '{"type":"status","status":"thinking"}', "4")) == (
        StatusChanged(status="thinking")
    )
    assert decode(SseEvent("delta", '{"call":"a1","text":"Hel"}', "5")) == TokenDelta(
        call="a1", text="Hel"
    )
    assert decode(SseEvent("worker", '{"polling":false,"detail":"no worker"}')) == (
        WorkerChanged(polling=False, detail="no worker")
    )
    assert decode(SseEvent("sparkles", "{}", "6")) is None  # a newer server's: skipped
    with pytest.raises(ChatError, match="`tool_call_finished` event"):
        decode(SseEvent("tool_call_finished", '{"type":"tool_call_finished"}', "7"))


def test_a_streamed_reply_is_printed_once_then_tools_and_retries() -> None:
    out: list[str] = []
    printer = ChatPrinter(out.append)
    printer.show(ModelCallStarted(detail="1"))
    for text in ("Two and two", " is four."):
        printer.show(TokenDelta(call="a1", text=text))
    printer.show(MessageEvent(message=AssistantMessage(text="Two and two is four."), index=1))
    printer.show(
        MessageEvent(
            message=ToolCallMessage(call_id="c1", tool="add", args={"a": 2, "b": 2}), index=2
        )
    )
    printer.show(StatusChanged(status="retrying_model", detail="503", attempt=2, retry_in_s=1.0))
    assert "".join(out) == (
        "agent> Two and two is four.\n"
        '  → add({"a": 2, "b": 2})\n'
        "(retrying the model, attempt 2, next try in 1 s: 503)\n"
    )
