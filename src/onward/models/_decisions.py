"""A provider's response read as onward's `Decision` (or a guardrail verdict).

Tool calls written as text become real calls, then one decision is chosen among the
response's calls and text; each call is read by `_tool_calls`. Also here: what the
transcript tells about the calls already run and the turn being decided, which the
reading needs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence

from pydantic import ValidationError
from pydantic_ai.messages import ModelResponse as PaiResponse
from pydantic_ai.messages import ModelResponsePart, TextPart, ToolCallPart

from onward.agent.decisions import AskUser, CallTools, Decision, Finish, GuardrailVerdict
from onward.agent.messages import Message, ToolCallMessage, ToolResultMessage, Usage
from onward.agent.text_calls import find_text_tool_calls, looks_like_tool_call, unwrap_json_reply
from onward.exceptions import MalformedModelOutput, ModelPermanentError
from onward.models._prompts import VERDICT_TOOL, ToolNames
from onward.models._tool_calls import (
    call_args,
    read_handoff,
    read_plan,
    read_refusal,
    read_review,
    tool_call,
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
        return read_review([c for c in calls if c.tool_name == names.review], names.review, usage)
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
        return CallTools(calls=[tool_call(c, usage) for c in work], text=text or None)
    plans = [c for c in calls if c.tool_name == names.delegate]
    if plans:
        return read_plan(plans, text, usage)
    handoffs = [c for c in calls if c.tool_name == names.handoff]
    if handoffs:
        return read_handoff(handoffs, text, usage)
    refusals = [c for c in calls if c.tool_name == names.refuse]
    if refusals:
        return read_refusal(refusals[0], text, usage, check_topic=check_topic)
    finish = names.finish or "finish"
    if calls:
        answer = call_args(calls[0], usage).get("answer")
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
            args = call_args(call, Usage())
        except MalformedModelOutput:
            break
        allowed = args.get("allowed")
        reply = args.get("reply")
        if isinstance(allowed, bool):
            text = reply.strip() if isinstance(reply, str) and reply.strip() else None
            return GuardrailVerdict(allowed=allowed, reply=None if allowed else text)
    return GuardrailVerdict(allowed=True)


def answered_calls(messages: Sequence[Message]) -> set[str]:
    """`call_key`s of the calls the transcript ran with a result."""
    done = {m.call_id for m in messages if isinstance(m, ToolResultMessage) and m.ok}
    return {
        call_key(m.tool, m.args)
        for m in messages
        if isinstance(m, ToolCallMessage) and m.call_id in done
    }


def call_salt(conversation_id: str, messages: Sequence[Message]) -> str:
    """Tells apart calls written as text in different turns of a conversation."""
    last = messages[-1].model_dump_json() if messages else ""
    digest = hashlib.sha256(last.encode()).hexdigest()[:8]
    return f"{conversation_id}:{len(messages)}:{digest}"


def echoes_instructions(text: str, instructions: str) -> bool:
    """Whether `text` is nothing but a piece of the system prompt (at least a short
    sentence of it), which no user asked to hear."""
    said = " ".join(text.split())
    return len(said) >= 24 and said in " ".join(instructions.split())
