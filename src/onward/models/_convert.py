"""Converting between onward's transcript and decisions and pydantic-ai messages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, cast

from pydantic import ValidationError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequestPart,
    ModelResponsePart,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.messages import ModelRequest as PaiRequest
from pydantic_ai.messages import ModelResponse as PaiResponse

from onward.agent.decisions import AskUser, CallTools, Decision, Finish, GuardrailVerdict, ToolCall
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from onward.exceptions import MalformedModelOutput, ModelPermanentError
from onward.models._prompts import VERDICT_TOOL, repair_note

_MAX_CALL_ID = 128  # `ToolCall.call_id`'s max_length


def to_pai_messages(
    messages: Sequence[Message],
    instructions: str,
    repair_hint: str | None,
    *,
    prompt: str | None = None,
) -> list[ModelMessage]:
    """onward's transcript as pydantic-ai request/response messages.

    Tool results without a recorded call (saga compensations) become notes, calls
    without a result get a placeholder result, and tool results always come first in a
    request: providers reject a tool call that is not answered right after it.
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
            out.append(PaiResponse(parts=list(response)))
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
        request.append(UserPromptPart(content=repair_note(repair_hint)))
    if not request and (not out or isinstance(out[-1], PaiResponse)):
        request.append(UserPromptPart(content="(Continue.)"))
    flush_request()
    _answer_dangling_calls(out)
    last = out[-1]
    if isinstance(last, PaiRequest):
        last.instructions = instructions
    return out


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


def text_delta(event: object) -> str | None:
    """The text a streamed event adds to the answer, if any."""
    if isinstance(event, PartStartEvent):
        content: object = getattr(event.part, "content", None)
        kind: object = getattr(event.part, "part_kind", None)
        return content if kind == "text" and isinstance(content, str) else None
    if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        return event.delta.content_delta
    return None


def _parse_args(call: ToolCallPart, usage: Usage) -> dict[str, Any]:
    args = call.args
    if args is None or (isinstance(args, str) and not args.strip()):
        return {}
    if isinstance(args, dict):
        return args
    try:
        parsed: object = json.loads(args)
    except ValueError as exc:
        raise MalformedModelOutput(
            f"arguments of `{call.tool_name}` are not valid JSON ({exc}): {args[:200]!r}",
            usage=usage,
        ) from exc
    if not isinstance(parsed, dict):
        raise MalformedModelOutput(
            f"arguments of `{call.tool_name}` must be a JSON object, got {args[:200]!r}", usage
        )
    return {str(k): v for k, v in cast(dict[object, Any], parsed).items()}


def _call_id(raw: str) -> str:
    """A provider's call id as onward's: never empty, never longer than `ToolCall` allows,
    and stable, so a retried call gets the same id."""
    if raw and len(raw) <= _MAX_CALL_ID:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:16]
    return f"{raw[: _MAX_CALL_ID - 17]}~{digest}" if raw else f"call-{digest}"


def _tool_call(call: ToolCallPart, usage: Usage) -> ToolCall:
    if not call.tool_name.strip():
        raise MalformedModelOutput("a tool call had no tool name", usage)
    return ToolCall(
        call_id=_call_id(call.tool_call_id), tool=call.tool_name, args=_parse_args(call, usage)
    )


def to_decision(response: PaiResponse, finish: str, usage: Usage) -> Decision:
    """The decision a provider response stands for.

    Raises:
        MalformedModelOutput: Unusable arguments, an empty answer or an empty reply.
        ModelPermanentError: The provider's content filter refused.
    """
    if response.finish_reason == "content_filter":
        raise ModelPermanentError("the provider's content filter refused to answer")
    try:
        return _decision(response, finish, usage)
    except ValidationError as exc:  # a last line: whatever else fails validation is repaired
        raise MalformedModelOutput(f"unusable decision: {exc.errors()[0]['msg']}", usage) from exc


def _decision(response: PaiResponse, finish: str, usage: Usage) -> Decision:
    calls = response.tool_calls
    text = (response.text or "").strip()
    work = [c for c in calls if c.tool_name != finish]
    if work:
        # A `finish` next to real tool calls is premature: run the tools, decide again.
        return CallTools(calls=[_tool_call(c, usage) for c in work], text=text or None)
    if calls:
        answer = _parse_args(calls[0], usage).get("answer")
        if not isinstance(answer, str) or not answer.strip():
            raise MalformedModelOutput(f"`{finish}` needs a non-empty `answer` string", usage)
        return Finish(answer=answer.strip())
    if text:
        return AskUser(text=text)
    raise MalformedModelOutput(
        "the reply had neither text nor a tool call: answer in text, call a tool or "
        f"call `{finish}`",
        usage,
    )


def to_verdict(response: PaiResponse) -> GuardrailVerdict:
    """The guardrail verdict in a response; an unusable one lets the message through."""
    for call in response.tool_calls:
        if call.tool_name != VERDICT_TOOL:
            continue
        try:
            args = _parse_args(call, Usage())
        except MalformedModelOutput:
            break
        allowed = args.get("allowed")
        reply = args.get("reply")
        if isinstance(allowed, bool):
            text = reply.strip() if isinstance(reply, str) and reply.strip() else None
            return GuardrailVerdict(allowed=allowed, reply=None if allowed else text)
    return GuardrailVerdict(allowed=True)
