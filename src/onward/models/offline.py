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
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from onward.agent.decisions import AskUser, CallTools, Decision, Finish, GuardrailVerdict, ToolCall
from onward.agent.messages import (
    AssistantMessage,
    Message,
    ToolCallMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from onward.agent.specs import GoalSpec, ToolSpec
from onward.models.base import (
    DeltaCallback,
    GuardrailRequest,
    GuardrailResponse,
    ModelRequest,
    ModelResponse,
)

Schema = dict[str, Any]

_ASKED = re.compile(r"What is the [^?\n]*?\(`(\w+)`\)\?")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_EMAIL = re.compile(r"[^@\s<>(),;:\"']+@[^@\s<>(),;:\"']+\.[a-z]{2,}", re.I)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
_WORD = re.compile(r"[a-z]+")


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ACKS = _wordset(
    "hi hello hey there thanks thank you thx yes yep yeah no nope ok okay sure please "
    "great good morning afternoon evening bye goodbye cool fine alright right"
)
_STOPWORDS = _wordset(
    "about above after again also always another anything because been before being "
    "below between both call calls could does doing done down during each either else "
    "every first from further give have having help here into just know last like make "
    "many more most much must need needs never next only other over please same should "
    "show some such tell than that their them then there these they thing things this "
    "those through under until used user users using very want wants well were what "
    "when where which while will with would your yours"
)
# Words that, right before a value in the user's text, tie it to a parameter.
_CUES = {
    "origin": {"from"},
    "source": {"from"},
    "departure": {"from"},
    "destination": {"to"},
    "arrival": {"to"},
    "city": {"in", "at"},
    "location": {"in", "at"},
}


def _stem(word: str) -> str:
    """Simple plural stripping, so `events` meets `event` and `cities` meets `city`."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _content_words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if len(w) >= 4 and w not in _STOPWORDS}


def _resolve(prop: Schema, defs: Schema) -> Schema:
    """Inline a `$ref` and pick the non-null branch of `anyOf`/`oneOf`/`allOf`."""
    merged = dict(prop)
    ref = merged.pop("$ref", None)
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        if isinstance(target, dict):
            merged = {**_resolve(cast(Schema, target), defs), **merged}
    for key in ("anyOf", "oneOf", "allOf"):
        branches = merged.pop(key, None)
        if isinstance(branches, list):
            for branch in cast(list[Schema], branches):
                if branch.get("type") != "null":
                    merged = {**_resolve(branch, defs), **merged}
                    break
    return merged


def _label(name: str, prop: Schema) -> str:
    title = prop.get("title")
    return (title if isinstance(title, str) and title else name.replace("_", " ")).lower()


def _is_date(name: str, prop: Schema) -> bool:
    return prop.get("format") == "date" or "date" in name.lower()


def _choices(prop: Schema) -> list[Any]:
    values = [
        *cast(list[Any], prop.get("enum") or []),
        *cast(list[Any], prop.get("examples") or []),
    ]
    return [v for v in values if isinstance(v, str | int | float) and str(v).strip()]


@dataclass
class _Transcript:
    """What the transcript says, read once per decision."""

    calls: dict[str, ToolCallMessage] = field(default_factory=dict[str, ToolCallMessage])
    done: list[tuple[ToolCallMessage, Any]] = field(
        default_factory=list[tuple[ToolCallMessage, Any]]
    )
    failure: ToolResultMessage | None = None
    undone: list[str] = field(default_factory=list[str])
    user_texts: list[str] = field(default_factory=list[str])
    asked: list[str] = field(default_factory=list[str])
    reply: str | None = None

    @classmethod
    def read(cls, messages: Sequence[Message]) -> _Transcript:
        t = cls()
        question: str | None = None
        for m in messages:
            if isinstance(m, ToolCallMessage):
                t.calls[m.call_id] = m
            elif isinstance(m, ToolResultMessage):
                t._result(m)
            elif isinstance(m, UserMessage):
                t.user_texts.append(m.text)
                t.failure, t.undone = None, []  # the user spoke after it: plan again
                t.reply, t.asked = m.text, _ASKED.findall(question or "")
            elif isinstance(m, AssistantMessage):
                question = m.text
        return t

    def _result(self, m: ToolResultMessage) -> None:
        call = self.calls.get(m.call_id)
        if call is None:  # a saga compensation: no call of its own
            if m.ok:
                self.undone.append(m.tool)
        elif m.ok:
            self.done.append((call, m.content))
        else:
            self.failure, self.undone = m, []

    @property
    def done_tools(self) -> set[str]:
        return {call.tool for call, _ in self.done}


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
        decision = plan_next(request.goal, request.messages)
        if isinstance(decision, CallTools):
            out_text = json.dumps([c.args for c in decision.calls])
        else:
            out_text = decision.text if isinstance(decision, AskUser) else decision.answer
            if on_delta is not None:
                for i, word in enumerate(out_text.split(" ")):
                    await on_delta(word if i == 0 else " " + word)
        usage = _usage(_prompt_text(request.goal, request.messages), out_text)
        return ModelResponse(decision=decision, usage=usage, model_name=self.name)

    async def check_guardrail(self, request: GuardrailRequest) -> GuardrailResponse:
        """Allow answers, greetings and messages that share a word with the goal."""
        verdict = check_topic(request.goal, request.messages, request.text)
        usage = _usage(_prompt_text(request.goal, request.messages), verdict.reply or "ok")
        return GuardrailResponse(verdict=verdict, usage=usage)


def plan_next(goal: GoalSpec, messages: Sequence[Message]) -> Decision:
    """The offline model's decision for `goal` after `messages`."""
    t = _Transcript.read(messages)
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
    args, missing = _fill(nxt, t)
    if missing:
        return AskUser(text=_question(nxt, missing))
    return CallTools(
        calls=[ToolCall(call_id=f"offline-{len(t.calls) + 1}", tool=nxt.name, args=args)]
    )


def _next_tool(goal: GoalSpec, plan: list[ToolSpec], t: _Transcript) -> ToolSpec | None:
    if t.done:
        latest = t.done[-1][1]
        if isinstance(latest, dict) and "suggested_next_tool" in latest:
            target = cast(Schema, latest)["suggested_next_tool"]
            if target is None:
                return None
            if isinstance(target, str) and (spec := goal.tool(target)) is not None:
                return spec
    return next((s for s in plan if s.name not in t.done_tools), None)


# ---------------------------------------------------------------------- arguments


def _fill(spec: ToolSpec, t: _Transcript) -> tuple[Schema, list[tuple[str, Schema]]]:
    """Arguments for `spec`'s required parameters, and the ones still missing.

    Sure sources (earlier results and calls, an answer to our question) go first, so
    the user's words are matched last and never give one value to two parameters.
    """
    schema = spec.parameters
    props = cast(Schema, schema.get("properties") or {})
    defs = cast(Schema, schema.get("$defs") or {})
    required = cast(list[str], schema.get("required") or [])
    resolved = {name: _resolve(cast(Schema, props.get(name) or {}), defs) for name in required}
    args: Schema = {}
    for name, prop in resolved.items():
        value = _from_earlier(name, t)
        if value is None:
            value = _from_reply(name, prop, t)
        if value is not None:
            args[name] = value
    used = {str(v).lower() for v in args.values()}
    for name, prop in resolved.items():
        if name not in args and (value := _from_words(name, prop, t.user_texts, used)) is not None:
            args[name] = value
            used.add(str(value).lower())
    missing = [(name, prop) for name, prop in resolved.items() if name not in args]
    return {name: args[name] for name in required if name in args}, missing


def _from_earlier(name: str, t: _Transcript) -> Any:
    """A same-named field of a result (or of a list of dicts in it), then of a call."""
    for call, content in reversed(t.done):
        for source in (content, *(_nested(content))):
            if isinstance(source, list) and source and isinstance(source[0], dict):
                source = cast(list[Any], source)[0]
            if isinstance(source, dict) and source.get(name) is not None:
                return cast(Schema, source)[name]
        if call.args.get(name) is not None:
            return call.args[name]
    return None


def _nested(content: Any) -> Iterable[Any]:
    return cast(Schema, content).values() if isinstance(content, dict) else ()


def _from_reply(name: str, prop: Schema, t: _Transcript) -> Any:
    """The user's answer to our question that asked for `name`."""
    if name not in t.asked or t.reply is None:
        return None
    reply = t.reply.strip()
    if len(t.asked) > 1:
        label = re.escape(_label(name, prop))
        keyed = re.search(rf"(?:{re.escape(name)}|{label})\s*[:=]\s*([^\n;]+)", reply, re.I)
        parts = [p.strip() for p in re.split(r"[\n;]", reply) if p.strip()]
        if keyed:
            reply = keyed.group(1).strip()
        elif len(parts) == len(t.asked):
            reply = parts[t.asked.index(name)]
        else:
            return None
    return _coerce(name, prop, reply) if reply else None


def _coerce(name: str, prop: Schema, text: str) -> Any:
    kind = prop.get("type")
    if prop.get("enum"):
        return _match_choices(prop.get("enum") or [], text, name, set())
    if kind in ("integer", "number"):
        return _number(name, prop, text, set())
    if kind == "boolean":
        word = text.lower().split()[0] if text.split() else ""
        return {"yes": True, "true": True, "y": True, "no": False, "false": False, "n": False}.get(
            word.strip(".!,")
        )
    if _is_date(name, prop):
        found = _DATE.search(text)
        return found.group(0) if found else None
    if (prop.get("format") == "email" or "email" in name.lower()) and (
        found := _EMAIL.search(text)
    ):
        return found.group(0)
    return text


def _from_words(name: str, prop: Schema, texts: list[str], used: set[str]) -> Any:
    """Enum values/examples, numbers, ISO dates or emails in the user's words, newest first."""
    kind = prop.get("type")
    for text in reversed(texts):
        if choices := _choices(prop):
            value = _match_choices(choices, text, name, used)
        elif kind in ("integer", "number"):
            value = _number(name, prop, text, used)
        elif _is_date(name, prop):
            value = next((d for d in _DATE.findall(text) if d.lower() not in used), None)
        elif prop.get("format") == "email" or "email" in name.lower():
            value = next((e for e in _EMAIL.findall(text) if e.lower() not in used), None)
        else:
            return None
        if value is not None:
            return value
    return None


def _match_choices(choices: Iterable[Any], text: str, name: str, used: set[str]) -> Any:
    parts = [name.lower(), *name.lower().split("_")]
    cue_words = set[str]().union(*(_CUES.get(p, set()) for p in parts))
    best: tuple[tuple[bool, int], Any] | None = None
    for choice in choices:
        found = re.search(rf"(?<!\w){re.escape(str(choice))}(?!\w)", text, re.I)
        if not found:
            continue
        before = text[: found.start()].lower().split()
        cued = bool(before) and before[-1] in cue_words
        if str(choice).lower() in used:
            continue
        score = (cued, len(str(choice)))
        if best is None or score > best[0]:
            best = (score, choice)
    return None if best is None else best[1]


def _number(name: str, prop: Schema, text: str, used: set[str]) -> int | float | None:
    clean = _DATE.sub(" ", text)
    words = [w for w in name.lower().split("_") if len(w) >= 3]
    near = [
        m.group(1)
        for w in words
        for m in re.finditer(rf"(-?\d+(?:\.\d+)?)\s+(?:\w+\s+)?{re.escape(w[:4])}", clean, re.I)
    ]
    for raw in [*near, *_NUMBER.findall(clean)]:
        value: int | float = float(raw) if prop.get("type") == "number" else int(float(raw))
        low, high = prop.get("minimum"), prop.get("maximum")
        if (isinstance(low, int | float) and value < low) or (
            isinstance(high, int | float) and value > high
        ):
            continue
        if raw not in used:
            return value
    return None


# ---------------------------------------------------------------------- wording


def _phrase(spec: ToolSpec) -> str:
    first = spec.description.strip().split("\n")[0].split(". ")[0].rstrip(".")
    if not first:
        return spec.name.replace("_", " ")
    return first[0].lower() + first[1:] if first[1:2].islower() else first


def _question(spec: ToolSpec, missing: list[tuple[str, Schema]]) -> str:
    lines = [f"I need a little more information to {_phrase(spec)}."]
    for name, prop in missing:
        line = f"What is the {_label(name, prop)} (`{name}`)?"
        if isinstance(desc := prop.get("description"), str) and desc:
            line += f" {desc.rstrip('.')}."
        if enum := prop.get("enum"):
            line += " Options: " + ", ".join(str(v) for v in cast(list[Any], enum)) + "."
        elif examples := prop.get("examples"):
            line += " For example: " + ", ".join(str(v) for v in cast(list[Any], examples)) + "."
        if _is_date(name, prop):
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


def _summary(t: _Transcript) -> str:
    if not t.done:
        return "There was nothing to do."
    lines = ["All done. Here is what I did:"]
    lines += [f"- {call.tool.replace('_', ' ')}: {_describe(content)}" for call, content in t.done]
    return "\n".join(lines)


def _failure_answer(failure: ToolResultMessage, t: _Transcript) -> str:
    text = f"I could not complete {failure.tool.replace('_', ' ')}: {failure.error or 'it failed'}."
    if t.undone:
        text += " I undid the earlier steps (" + ", ".join(t.undone) + ")."
    return text


# ---------------------------------------------------------------------- guardrail


def _vocabulary(goal: GoalSpec) -> set[str]:
    texts = [goal.name.replace("_", " "), goal.description, goal.instructions, goal.starter_prompt]
    for spec in goal.tools:
        texts += [spec.name.replace("_", " "), spec.description]
        props = cast(Schema, spec.parameters.get("properties") or {})
        defs = cast(Schema, spec.parameters.get("$defs") or {})
        for name, prop in props.items():
            texts.append(name.replace("_", " "))
            texts += [str(v) for v in _choices(_resolve(cast(Schema, prop), defs))]
    return set[str]().union(*(_content_words(t) for t in texts))


def check_topic(goal: GoalSpec, messages: Sequence[Message], text: str) -> GuardrailVerdict:
    """The offline guardrail: is `text` an answer, a greeting or about the goal?"""
    last = next((m.text for m in reversed(messages) if isinstance(m, AssistantMessage)), "")
    words = _WORD.findall(text.lower())
    if "?" in last or not words or all(w in _ACKS for w in words):
        return GuardrailVerdict(allowed=True)
    if _content_words(text) & _vocabulary(goal):
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
