"""`OfflineModel`: a deterministic planner that drives a goal with no network.

It is what runs when no API key is configured. It reads the goal's tool schemas and the
transcript and nothing else, so the same transcript always gives the same decision
(replays and retries agree):

- The plan is the goal's tools in order, minus the tools that undo another one.
- A tool is done once a call to it succeeded. A result `{"suggested_next_tool": name}`
  makes that tool next; `{"suggested_next_tool": None}` finishes.
- Arguments come from earlier results and calls (same-named fields), from the user's
  answer to a question that asked for them, and from the user's words (enum values and
  examples, numbers, ISO dates, emails). Missing required ones are asked for, one question each.
- All planned tools done: finish with a summary. A failed call: finish explaining it.

Planners, routers and reviewers decide in `_offline_team`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from onward.agent.decisions import AskUser, CallTools, Decision, Finish, GuardrailVerdict, ToolCall
from onward.agent.messages import (
    AssistantMessage,
    Message,
    ToolResultMessage,
    Usage,
)
from onward.agent.specs import GoalSpec, ToolSpec
from onward.models._offline_args import (
    ACKS,
    WORD,
    Schema,
    Transcript,
    choices,
    content_words,
    fill,
    is_date,
    label,
    resolve,
)
from onward.models._offline_team import is_team_message, team_decision
from onward.models.base import (
    DeltaCallback,
    GuardrailRequest,
    GuardrailResponse,
    ModelRequest,
    ModelResponse,
)


class OfflineModel:
    """The built-in offline model (see the module docstring). Free and deterministic."""

    @property
    def name(self) -> str:
        return "offline"

    @property
    def offline(self) -> bool:
        return True

    async def decide(
        self, request: ModelRequest, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        """The next step for the goal, from the transcript alone."""
        decision = plan_next(request.goal, request.messages, review=request.review)
        if isinstance(decision, AskUser | Finish):
            out_text = decision.text if isinstance(decision, AskUser) else decision.answer
            if on_delta is not None:
                for i, word in enumerate(out_text.split(" ")):
                    await on_delta(word if i == 0 else " " + word)
        else:
            out_text = decision.model_dump_json()
        usage = _usage(_prompt_text(request.goal, request.messages), out_text)
        return ModelResponse(decision=decision, usage=usage, model_name=self.name)

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        """Allow answers, greetings and messages that share a word with the goal."""
        verdict = check_topic(request.goal, request.messages, request.text)
        usage = _usage(_prompt_text(request.goal, request.messages), verdict.reply or "ok")
        return GuardrailResponse(verdict=verdict, usage=usage)


def plan_next(goal: GoalSpec, messages: Sequence[Message], *, review: bool = False) -> Decision:
    """The offline model's decision for `goal` after `messages` (a verdict on the last
    assistant message when `review`)."""
    team = team_decision(goal, messages, review=review)
    if team is not None:
        return team
    # A router's handoff that brought the conversation here is no work of this agent.
    t = Transcript.read([m for m in messages if not is_team_message(goal, m)])
    if t.failure is not None:
        return Finish(answer=_failure_answer(t.failure, t))
    compensations = {s.compensation for s in goal.tools if s.compensation}
    plan = [s for s in goal.tools if s.name not in compensations]
    if not plan:
        return AskUser(
            text=f"I am the built-in offline model and `{goal.name}` has no tools I can run. "
            "Configure a model provider to talk about it freely."
        )
    nxt = _next_tool(goal, plan, t)
    if nxt is None:
        return Finish(answer=_summary(t))
    args, missing = fill(nxt, t)
    if missing:
        return AskUser(text=_question(nxt, missing))
    return CallTools(
        calls=[ToolCall(call_id=f"offline-{len(t.calls) + 1}", tool=nxt.name, args=args)]
    )


def _next_tool(goal: GoalSpec, plan: list[ToolSpec], t: Transcript) -> ToolSpec | None:
    if t.done:
        latest = t.done[-1][1]
        if isinstance(latest, dict) and "suggested_next_tool" in latest:
            target = cast(Schema, latest)["suggested_next_tool"]
            if target is None:
                return None
            if isinstance(target, str) and (spec := goal.tool(target)) is not None:
                return spec
    return next((s for s in plan if s.name not in t.done_tools), None)


# ---------------------------------------------------------------------- wording


def _phrase(spec: ToolSpec) -> str:
    first = spec.description.strip().split("\n")[0].split(". ")[0].rstrip(".")
    if not first:
        return spec.name.replace("_", " ")
    return first[0].lower() + first[1:] if first[1:2].islower() else first


def _question(spec: ToolSpec, missing: list[tuple[str, Schema]]) -> str:
    lines = [f"I need a little more information to {_phrase(spec)}."]
    for name, prop in missing:
        line = f"What is the {label(name, prop)} (`{name}`)?"
        if isinstance(desc := prop.get("description"), str) and desc:
            line += f" {desc.rstrip('.')}."
        if enum := prop.get("enum"):
            line += " Options: " + ", ".join(str(v) for v in cast(list[Any], enum)) + "."
        elif examples := prop.get("examples"):
            line += " For example: " + ", ".join(str(v) for v in cast(list[Any], examples)) + "."
        if is_date(name, prop):
            line += " Please use the format YYYY-MM-DD."
        lines.append(line)
    return "\n".join(lines)


_KEY_ORDER = ("id", "url", "link", "status", "number", "total", "amount", "price", "name", "title")


def _describe(content: Any) -> str:
    if content is None:
        return "done"
    if isinstance(content, list):
        items = cast(list[Any], content)
        first = f" (first: {_describe(items[0])})" if items else ""
        return f"{len(items)} result{'s' if len(items) != 1 else ''}{first}"
    if not isinstance(content, dict):
        text = str(content)
        return text if len(text) <= 200 else text[:197] + "..."
    fields: dict[str, Any] = {}
    for key, value in cast(Schema, content).items():
        if isinstance(value, str | int | float | bool) and key != "suggested_next_tool":
            fields[key] = value
        elif isinstance(value, list):
            fields[key] = f"{len(cast(list[Any], value))} found"

    def rank(key: str) -> int:
        parts = key.lower().split("_")
        return next((i for i, k in enumerate(_KEY_ORDER) if k in parts), len(_KEY_ORDER))

    shown = sorted(fields, key=rank)[:5]
    return ", ".join(f"{k.replace('_', ' ')}: {fields[k]}" for k in shown) or "done"


def _summary(t: Transcript) -> str:
    if not t.done:
        return "There was nothing to do."
    lines = ["All done. Here is what I did:"]
    lines += [f"- {call.tool.replace('_', ' ')}: {_describe(content)}" for call, content in t.done]
    return "\n".join(lines)


def _failure_answer(failure: ToolResultMessage, t: Transcript) -> str:
    text = f"I could not complete {failure.tool.replace('_', ' ')}: {failure.error or 'it failed'}."
    if t.undone:
        text += " I undid the earlier steps (" + ", ".join(t.undone) + ")."
    return text


# ---------------------------------------------------------------------- guardrail


def _vocabulary(goal: GoalSpec) -> set[str]:
    """The goal's words, and its agents': a planner or router is about what they do."""
    texts = [goal.name.replace("_", " "), goal.description, goal.instructions, goal.starter_prompt]
    for spec in goal.tools:
        texts += [spec.name.replace("_", " "), spec.description]
        props = cast(Schema, spec.parameters.get("properties") or {})
        defs = cast(Schema, spec.parameters.get("$defs") or {})
        for name, prop in props.items():
            texts.append(name.replace("_", " "))
            texts += [str(v) for v in choices(resolve(cast(Schema, prop), defs))]
    words = set[str]().union(*(content_words(t) for t in texts))
    return words.union(*(_vocabulary(a) for a in goal.agents))


def check_topic(goal: GoalSpec, messages: Sequence[Message], text: str) -> GuardrailVerdict:
    """The offline guardrail: is `text` an answer, a greeting or about the goal?"""
    last = next((m.text for m in reversed(messages) if isinstance(m, AssistantMessage)), "")
    words = WORD.findall(text.lower())
    if "?" in last or not words or all(w in ACKS for w in words):
        return GuardrailVerdict(allowed=True)
    if content_words(text) & _vocabulary(goal):
        return GuardrailVerdict(allowed=True)
    about = goal.description.strip().rstrip(".") or goal.name.replace("_", " ")
    # No question mark: a reply to a question is always allowed, and this is no question.
    return GuardrailVerdict(
        allowed=False,
        reply=f"Sorry, I can't help with that here. I can help with this: {about}.",
    )


def _prompt_text(goal: GoalSpec, messages: Sequence[Message]) -> str:
    return goal.instructions + " " + " ".join(m.model_dump_json() for m in messages)


def _usage(prompt: str, output: str) -> Usage:
    # Free and local: a known price of zero, with word counts standing in for tokens.
    return Usage(
        requests=1,
        input_tokens=len(prompt.split()),
        output_tokens=len(output.split()),
        cost_usd=0.0,
    )
