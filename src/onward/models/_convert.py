"""Converting between onward's transcript and decisions and pydantic-ai messages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from typing import Any, cast

from pydantic import ValidationError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequestPart,
    ModelResponsePart,
    PartDeltaEvent,
    PartStartEvent,
    SystemPromptPart,
    TextPart,
    TextPartDelta,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.messages import ModelRequest as PaiRequest
from pydantic_ai.messages import ModelResponse as PaiResponse

from onward.agent.decisions import (
    AskUser,
    CallTools,
    Decision,
    Finish,
    GuardrailVerdict,
    Handoff,
    PlanStep,
    Refuse,
    Review,
    RunPlan,
    ToolCall,
)
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from onward.agent.text_calls import find_text_tool_calls, looks_like_tool_call, unwrap_json_reply
from onward.exceptions import MalformedModelOutput, ModelPermanentError
from onward.models._prompts import VERDICT_TOOL, ToolNames, repair_note

_MAX_CALL_ID = 128  # `ToolCall.call_id`'s max_length


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


def to_decision(
    response: PaiResponse,
    names: ToolNames | str,
    usage: Usage,
    *,
    tools: Collection[str] = (),
    check_topic: bool = False,
    call_salt: str = "",
    answered: Collection[str] = (),
) -> Decision:
    """The decision a provider response stands for.

    `names` are the pseudo-tools the request offered (a plain string: only `finish`,
    by that name), `tools` the goal's own tool names. Tool calls written as text
    (`functions.x:{...}`, `<tool_call>...`, a bare `{"name", "arguments"}` object) count
    as calls; their ids are derived from `call_salt` and the text, so a retried call
    gets the same ids. A `refuse` call is a `Refuse` when `check_topic` (the first
    decision after a user message), otherwise the same words asked as an `AskUser`.
    `answered` holds `call_key`s of calls the conversation already ran: a `finish` next
    to nothing but such repeats (small models echo the last call) finishes.
    Which call wins when a response holds several:

    - A review request: the `review` call(s); several are approved only if all approve.
    - Otherwise ordinary tool calls go first: a `delegate`, `handoff` or `finish` next
      to them is dropped (premature), the tools run and the model decides again with
      their results, as it would after any tool call.
    - Several `delegate` calls are one plan: their steps are merged under the first
      call's id (clashing step ids come back as a repair hint from the plan checks).
    - Several `handoff` calls must name the same agent; different ones are malformed.
    - Text next to a plan or a handoff is its note for the user.

    Raises:
        MalformedModelOutput: Unusable arguments, an empty answer, an empty reply, or
            tool-call syntax in the text that cannot be read or names no offered tool.
        ModelPermanentError: The provider's content filter refused.
    """
    if isinstance(names, str):
        names = ToolNames(finish=names)
    if response.finish_reason == "content_filter":
        raise ModelPermanentError("the provider's content filter refused to answer")
    if not response.tool_calls and names.review is None:
        response = _with_text_calls(response, names, tools, usage, call_salt)
    try:
        return _decision(response, names, usage, check_topic=check_topic, answered=answered)
    except ValidationError as exc:  # a last line: whatever else fails validation is repaired
        raise MalformedModelOutput(f"unusable decision: {exc.errors()[0]['msg']}", usage) from exc


def _offered(names: ToolNames, tools: Collection[str]) -> list[str]:
    pseudo = (names.finish, names.delegate, names.handoff, names.refuse)
    return [*tools, *(n for n in pseudo if n)]


def _with_text_calls(
    response: PaiResponse, names: ToolNames, tools: Collection[str], usage: Usage, salt: str
) -> PaiResponse:
    """`response` with the tool calls its text spells out as real calls."""
    text = response.text or ""
    if not text.strip():
        return response
    offered = _offered(names, tools)
    found = find_text_tool_calls(text, offered)
    if found is None:
        if looks_like_tool_call(text):
            raise MalformedModelOutput(
                "your reply wrote a tool call as text that could not be read; call the tool "
                "itself with a JSON object of arguments, or answer in plain words",
                usage,
            )
        words = unwrap_json_reply(text)
        return response if words is None else _rebuilt(response, [TextPart(content=words)])
    if found.unknown:
        raise MalformedModelOutput(
            f"there is no tool named {', '.join(f'`{n}`' for n in found.unknown)}; the tools "
            f"are {', '.join(f'`{n}`' for n in offered)}",
            usage,
        )
    digest = hashlib.sha256(f"{salt}\n{text}".encode()).hexdigest()[:12]
    prose = unwrap_json_reply(found.prose) or found.prose
    parts: list[ModelResponsePart] = [TextPart(content=prose)] if prose else []
    parts += [
        ToolCallPart(tool_name=name, args=args, tool_call_id=f"text-{digest}-{i}")
        for i, (name, args) in enumerate(found.calls, 1)
    ]
    return _rebuilt(response, parts)


def _rebuilt(response: PaiResponse, parts: list[ModelResponsePart]) -> PaiResponse:
    calls = any(isinstance(p, ToolCallPart) for p in parts)
    return PaiResponse(
        parts=parts,
        usage=response.usage,
        model_name=response.model_name,
        timestamp=response.timestamp,
        finish_reason="tool_call" if calls else response.finish_reason,
    )


def call_key(tool: str, args: object) -> str:
    """One call's identity by tool and arguments (see `to_decision`'s `answered`)."""
    return f"{tool}:{json.dumps(args, sort_keys=True, default=str)}"


def _decision(
    response: PaiResponse,
    names: ToolNames,
    usage: Usage,
    *,
    check_topic: bool,
    answered: Collection[str] = (),
) -> Decision:
    calls = response.tool_calls
    text = (response.text or "").strip()
    if names.review is not None:
        return _review([c for c in calls if c.tool_name == names.review], names.review, usage)
    special = {n for n in (names.finish, names.delegate, names.handoff, names.refuse) if n}
    work = [c for c in calls if c.tool_name not in special]
    answers = text or any(c.tool_name == names.finish for c in calls)
    if answers and work and all(call_key(c.tool_name, c.args_as_dict()) in answered for c in work):
        # An answer next to an echo of calls already run (small models repeat the last
        # call): the answer counts, the echo is dropped.
        calls = [c for c in calls if c.tool_name in special]
        work = []
    if work:
        # A `finish` next to real tool calls is premature: run the tools, decide again.
        return CallTools(calls=[_tool_call(c, usage) for c in work], text=text or None)
    plans = [c for c in calls if c.tool_name == names.delegate]
    if plans:
        return _plan(plans, text, usage)
    handoffs = [c for c in calls if c.tool_name == names.handoff]
    if handoffs:
        return _handoff(handoffs, text, usage)
    refusals = [c for c in calls if c.tool_name == names.refuse]
    if refusals:
        return _refusal(refusals[0], text, usage, check_topic=check_topic)
    finish = names.finish or "finish"
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


def _refusal(call: ToolCallPart, text: str, usage: Usage, *, check_topic: bool) -> Decision:
    words = _text(_parse_args(call, usage).get("text")) or text or None
    if words is None:
        raise MalformedModelOutput(
            f"`{call.tool_name}` needs `text`: one polite sentence for the user", usage
        )
    # Off-topic is only judged on a new user message; later, the same words are just
    # said to the user (one repair round saved).
    return Refuse(text=words) if check_topic else AskUser(text=words)


def _text(value: object) -> str | None:
    """A non-empty string argument, stripped; anything else is absent."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def _plan(calls: list[ToolCallPart], text: str, usage: Usage) -> RunPlan:
    steps: list[PlanStep] = []
    notes: list[str] = []
    for call in calls:
        name = call.tool_name
        args = _parse_args(call, usage)
        raw: object = args.get("steps")
        if not isinstance(raw, list) or not raw:
            raise MalformedModelOutput(f"`{name}` needs a non-empty `steps` array", usage)
        for i, item in enumerate(cast(list[object], raw), 1):
            if not isinstance(item, dict):
                raise MalformedModelOutput(f"step {i} of `{name}` is not an object", usage)
            # Models often send null for an optional field: treat it as absent.
            fields = {k: v for k, v in cast(dict[str, Any], item).items() if v is not None}
            try:
                steps.append(PlanStep.model_validate(fields))
            except ValidationError as exc:
                raise MalformedModelOutput(
                    f"step {i} of `{name}` is invalid: {_first_error(exc)}", usage
                ) from exc
        if (note := _text(args.get("text"))) is not None:
            notes.append(note)
    return RunPlan(
        call_id=_call_id(calls[0].tool_call_id),
        steps=steps,
        text="\n\n".join(notes) or text or None,
    )


def _handoff(calls: list[ToolCallPart], text: str, usage: Usage) -> Handoff:
    targets: list[str] = []
    notes: list[str] = []
    for call in calls:
        args = _parse_args(call, usage)
        goal = args.get("goal")
        if not isinstance(goal, str) or not goal.strip():
            raise MalformedModelOutput(
                f"`{call.tool_name}` needs `goal`: the name of one agent", usage
            )
        targets.append(goal.strip())
        if (note := _text(args.get("text"))) is not None:
            notes.append(note)
    if len(set(targets)) > 1:
        raise MalformedModelOutput(
            f"hand the conversation to one agent only, not to {', '.join(targets)}", usage
        )
    return Handoff(
        call_id=_call_id(calls[0].tool_call_id),
        goal=targets[0],
        text=notes[0] if notes else text or None,
    )


def _review(calls: list[ToolCallPart], name: str, usage: Usage) -> Review:
    if not calls:
        raise MalformedModelOutput(f"call `{name}` with your verdict on the draft", usage)
    approved = True
    feedback: list[str] = []
    for call in calls:
        args = _parse_args(call, usage)
        verdict = args.get("approved")
        if not isinstance(verdict, bool):
            raise MalformedModelOutput(f"`{name}` needs `approved`: true or false", usage)
        # Several verdicts (parallel calls) approve only together: doubt wins.
        approved = approved and verdict
        if (text := _text(args.get("feedback"))) is not None:
            feedback.append(text)
    return Review(approved=approved, feedback="\n".join(feedback) or None)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


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
