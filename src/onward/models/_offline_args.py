"""Reading a transcript and filling tool arguments, for the offline model.

Arguments come from earlier results and calls (same-named fields), from the user's
answer to a question that asked for them, and from the user's words (enum values and
examples, numbers, ISO dates, emails).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from onward.agent.messages import (
    AssistantMessage,
    Message,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.agent.specs import ToolSpec

Schema = dict[str, Any]

_ASKED = re.compile(r"What is the [^?\n]*?\(`(\w+)`\)\?")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_EMAIL = re.compile(r"[^@\s<>(),;:\"']+@[^@\s<>(),;:\"']+\.[a-z]{2,}", re.I)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
WORD = re.compile(r"[a-z]+")


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


ACKS = _wordset(
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


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in WORD.findall(text.lower()) if len(w) >= 4 and w not in _STOPWORDS}


def resolve(prop: Schema, defs: Schema) -> Schema:
    """Inline a `$ref` and pick the non-null branch of `anyOf`/`oneOf`/`allOf`."""
    merged = dict(prop)
    ref = merged.pop("$ref", None)
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        if isinstance(target, dict):
            merged = {**resolve(cast(Schema, target), defs), **merged}
    for key in ("anyOf", "oneOf", "allOf"):
        branches = merged.pop(key, None)
        if isinstance(branches, list):
            for branch in cast(list[Schema], branches):
                if branch.get("type") != "null":
                    merged = {**resolve(branch, defs), **merged}
                    break
    return merged


def label(name: str, prop: Schema) -> str:
    title = prop.get("title")
    return (title if isinstance(title, str) and title else name.replace("_", " ")).lower()


def is_date(name: str, prop: Schema) -> bool:
    return prop.get("format") == "date" or "date" in name.lower()


def choices(prop: Schema) -> list[Any]:
    values = [
        *cast(list[Any], prop.get("enum") or []),
        *cast(list[Any], prop.get("examples") or []),
    ]
    return [v for v in values if isinstance(v, str | int | float) and str(v).strip()]


@dataclass
class Transcript:
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
    def read(cls, messages: Sequence[Message]) -> Transcript:
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


# ---------------------------------------------------------------------- arguments


def fill(spec: ToolSpec, t: Transcript) -> tuple[Schema, list[tuple[str, Schema]]]:
    """Arguments for `spec`'s required parameters, and the ones still missing.

    Sure sources (earlier results and calls, an answer to our question) go first, so
    the user's words are matched last and never give one value to two parameters.
    """
    schema = spec.parameters
    props = cast(Schema, schema.get("properties") or {})
    defs = cast(Schema, schema.get("$defs") or {})
    required = cast(list[str], schema.get("required") or [])
    resolved = {name: resolve(cast(Schema, props.get(name) or {}), defs) for name in required}
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


def _from_earlier(name: str, t: Transcript) -> Any:
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


def _from_reply(name: str, prop: Schema, t: Transcript) -> Any:
    """The user's answer to our question that asked for `name`."""
    if name not in t.asked or t.reply is None:
        return None
    reply = t.reply.strip()
    if len(t.asked) > 1:
        title = re.escape(label(name, prop))
        keyed = re.search(rf"(?:{re.escape(name)}|{title})\s*[:=]\s*([^\n;]+)", reply, re.I)
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
    if is_date(name, prop):
        found = _DATE.search(text)
        return found.group(0) if found else None
    if (prop.get("format") == "email" or "email" in name.lower()) and (
        found := _EMAIL.search(text)
    ):
        return found.group(0)
    return text


FREE_TEXT_PARAMS = frozenset({"query", "question", "topic", "request", "prompt"})
"""String parameters the user's latest message fills as a whole when nothing else does."""


def _from_words(name: str, prop: Schema, texts: list[str], used: set[str]) -> Any:
    """Enum values/examples, numbers, ISO dates or emails in the user's words, newest first."""
    kind = prop.get("type")
    for text in reversed(texts):
        if options := choices(prop):
            value = _match_choices(options, text, name, used)
        elif kind in ("integer", "number"):
            value = _number(name, prop, text, used)
        elif is_date(name, prop):
            value = next((d for d in _DATE.findall(text) if d.lower() not in used), None)
        elif prop.get("format") == "email" or "email" in name.lower():
            value = next((e for e in _EMAIL.findall(text) if e.lower() not in used), None)
        elif name in FREE_TEXT_PARAMS and kind == "string":
            # A search query or a question is what the user just said.
            return text if text.lower() not in used else None
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
