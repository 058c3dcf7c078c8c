"""onward's transcript as the pydantic-ai messages of a request.

What a provider is sent: the conversation's messages, the instructions, and a repair
hint when the last answer was unusable. Reading the answer back is `_decisions`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequestPart,
    ModelResponsePart,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.messages import ModelRequest as PaiRequest
from pydantic_ai.messages import ModelResponse as PaiResponse

from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.models._prompts import repair_note


def to_pai_messages(
    messages: Sequence[Message],
    instructions: str,
    repair_hint: str | None,
    *,
    prompt: str | None = None,
    review: bool = False,
    text_with_calls: bool = False,
) -> list[ModelMessage]:
    """onward's transcript as pydantic-ai request/response messages.

    Tool results without a recorded call (saga compensations) become notes, calls
    without a result get a placeholder result, and tool results always come first in a
    request: providers reject a tool call that is not answered right after it.

    `text_with_calls` gives a tool-call-only assistant turn an empty text, for
    OpenAI-compatible servers (llama-cpp-python's) that reject `content: null`.

    `instructions` become the leading system prompt (the same for every call of a
    conversation, so prefix caches hit). A repair hint goes after the transcript as a
    system note, never as a user message: the model must not answer it to the user.
    """
    out: list[ModelMessage] = []
    request: list[ModelRequestPart] = []
    response: list[ModelResponsePart] = []
    called: set[str] = set()

    def flush_request() -> None:
        if request:
            # Stable sort: tool returns first, the rest in transcript order.
            ordered = sorted(request, key=lambda p: not isinstance(p, ToolReturnPart))
            out.append(PaiRequest(parts=ordered))
            request.clear()

    def flush_response() -> None:
        if response:
            out.append(PaiResponse(parts=_with_text(response, text_with_calls)))
            response.clear()

    for m in messages:
        if isinstance(m, AssistantMessage | ToolCallMessage):
            flush_request()
            if isinstance(m, AssistantMessage):
                response.append(TextPart(content=m.text))
            else:
                called.add(m.call_id)
                response.append(ToolCallPart(tool_name=m.tool, args=m.args, tool_call_id=m.call_id))
            continue
        flush_response()
        request.append(_request_part(m, called))
    flush_response()
    if prompt is not None:
        request.append(UserPromptPart(content=prompt))
    if repair_hint:
        request.append(SystemPromptPart(content=repair_note(repair_hint, review=review)))
    if not request and (not out or isinstance(out[-1], PaiResponse)):
        request.append(UserPromptPart(content="(Continue.)"))
    flush_request()
    _answer_dangling_calls(out)
    last = out[-1]
    if isinstance(last, PaiRequest):
        last.instructions = instructions
    return out


def _with_text(parts: list[ModelResponsePart], add: bool) -> list[ModelResponsePart]:
    if add and not any(isinstance(p, TextPart) for p in parts):
        return [TextPart(content=""), *parts]
    return list(parts)


def _request_part(m: Message, called: set[str]) -> ModelRequestPart:
    if isinstance(m, UserMessage):
        return UserPromptPart(content=m.text)
    if isinstance(m, NoticeMessage):
        return UserPromptPart(content=f"(Notice shown to the user, {m.level}: {m.text})")
    assert isinstance(m, ToolResultMessage)
    if m.call_id not in called:
        outcome = json.dumps(m.content, default=str) if m.ok else f"failed: {m.error}"
        return UserPromptPart(content=f"(Tool `{m.tool}` ran on its own: {outcome})")
    if m.ok:
        content = m.content if m.content is not None else "done (no result)"
        return ToolReturnPart(tool_name=m.tool, content=content, tool_call_id=m.call_id)
    return ToolReturnPart(
        tool_name=m.tool,
        content=m.error or "the tool failed",
        tool_call_id=m.call_id,
        outcome="failed",
    )


def _answer_dangling_calls(out: list[ModelMessage]) -> None:
    for i, message in enumerate(out):
        if not isinstance(message, PaiResponse):
            continue
        nxt = out[i + 1] if i + 1 < len(out) else None
        parts: Sequence[ModelRequestPart] = nxt.parts if isinstance(nxt, PaiRequest) else []
        answered = {p.tool_call_id for p in parts if isinstance(p, ToolReturnPart)}
        missing: list[ModelRequestPart] = [
            ToolReturnPart(
                tool_name=c.tool_name,
                content="no result was recorded for this call",
                tool_call_id=c.tool_call_id,
                outcome="failed",
            )
            for c in message.tool_calls
            if c.tool_call_id not in answered
        ]
        if not missing:
            continue
        if isinstance(nxt, PaiRequest):
            nxt.parts = [*missing, *nxt.parts]
        else:
            out.insert(i + 1, PaiRequest(parts=missing))
