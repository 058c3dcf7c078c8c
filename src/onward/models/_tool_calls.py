"""A provider's tool calls read one at a time: their arguments and ids, a call of one
of the goal's tools, and the decision a pseudo-tool call stands for (a `delegate`
plan, a `handoff`, a `review` verdict, a `refuse`). Which call wins when a response
holds several is `_decisions`."""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

from pydantic import ValidationError
from pydantic_ai.messages import ToolCallPart

from onward.agent.decisions import (
    AskUser,
    Decision,
    Handoff,
    PlanStep,
    Refuse,
    Review,
    RunPlan,
    ToolCall,
)
from onward.agent.messages import Usage
from onward.exceptions import MalformedModelOutput

_MAX_CALL_ID = 128  # `ToolCall.call_id`'s max_length


def call_args(call: ToolCallPart, usage: Usage) -> dict[str, Any]:
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


def tool_call(call: ToolCallPart, usage: Usage) -> ToolCall:
    if not call.tool_name.strip():
        raise MalformedModelOutput("a tool call had no tool name", usage)
    return ToolCall(
        call_id=_call_id(call.tool_call_id), tool=call.tool_name, args=call_args(call, usage)
    )


def read_refusal(call: ToolCallPart, text: str, usage: Usage, *, check_topic: bool) -> Decision:
    words = _text(call_args(call, usage).get("text")) or text or None
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


def read_plan(calls: list[ToolCallPart], text: str, usage: Usage) -> RunPlan:
    steps: list[PlanStep] = []
    notes: list[str] = []
    for call in calls:
        name = call.tool_name
        args = call_args(call, usage)
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


def read_handoff(calls: list[ToolCallPart], text: str, usage: Usage) -> Handoff:
    targets: list[str] = []
    notes: list[str] = []
    for call in calls:
        args = call_args(call, usage)
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


def read_review(calls: list[ToolCallPart], name: str, usage: Usage) -> Review:
    if not calls:
        raise MalformedModelOutput(f"call `{name}` with your verdict on the draft", usage)
    approved = True
    feedback: list[str] = []
    for call in calls:
        args = call_args(call, usage)
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
