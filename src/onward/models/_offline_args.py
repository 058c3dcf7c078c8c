"""Tool parameters as the offline model sees them, and values for them out of text.

A parameter's JSON schema says what it takes (type, enum or titled `oneOf` choices,
examples, format, pattern, bounds) and its name says what role it plays (where a trip
starts, a place, a time, a free-text question, an id to be taken from a result). That
is all the offline model knows about a tool: nothing here names a goal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, cast

from onward.agent.specs import ToolSpec
from onward.models._offline_text import (
    DATE,
    EMAIL,
    NUMBER,
    content_words,
    count_in,
    cue_before,
    is_hesitation,
    is_no,
    is_yes,
    phrase_after_cue,
)

Schema = dict[str, Any]
Role = Literal["start", "end", "place", "time"]

_ROLE_WORDS: dict[Role, frozenset[str]] = {
    "start": frozenset({"origin", "source", "from", "departure", "depart", "start", "home"}),
    "end": frozenset({"destination", "dest", "to", "arrival", "target"}),
    "place": frozenset({"city", "location", "place", "town", "region", "country", "venue"}),
    "time": frozenset({"month", "date", "day", "year", "when", "time", "season"}),
}
FREE_TEXT_NAMES = frozenset({"query", "question", "topic", "request", "prompt", "keywords"})
"""String parameters that take what the user asked, in their own words."""
_PROSE_NAMES = frozenset(
    {"body", "text", "content", "message", "answer", "report", "summary", "description", "note"}
)
_TITLE_NAMES = frozenset({"title", "subject", "headline"})
_ID_LIST_NAMES = frozenset({"sources", "ids", "citations", "references"})


def resolve(prop: Schema, defs: Schema) -> Schema:
    """Inline a `$ref`, pick the non-null branch of `anyOf`/`oneOf`/`allOf`, and keep
    a `oneOf`/`anyOf` of constants as choices (`enum`, with their titles)."""
    merged = dict(prop)
    ref = merged.pop("$ref", None)
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        if isinstance(target, dict):
            merged = {**resolve(cast(Schema, target), defs), **merged}
    for key in ("anyOf", "oneOf", "allOf"):
        branches = merged.pop(key, None)
        if not isinstance(branches, list):
            continue
        listed = [cast(Schema, b) for b in cast(list[Any], branches) if isinstance(b, dict)]
        consts = [b for b in listed if "const" in b]
        if consts and len(consts) == len([b for b in listed if b.get("type") != "null"]):
            merged["enum"] = [b["const"] for b in consts]
            merged["enum_titles"] = [str(b.get("title") or "") for b in consts]
            continue
        for branch in listed:
            if branch.get("type") != "null":
                merged = {**resolve(branch, defs), **merged}
                break
    return merged


def choices(prop: Schema) -> list[Any]:
    """The values a parameter offers: its enum (or constants), then its examples."""
    values = [
        *cast(list[Any], prop.get("enum") or []),
        *cast(list[Any], prop.get("examples") or []),
    ]
    return [v for v in values if isinstance(v, str | int | float) and str(v).strip()]


def choice_titles(prop: Schema) -> list[str]:
    return [t for t in cast(list[str], prop.get("enum_titles") or []) if t]


@dataclass(frozen=True)
class Param:
    """One parameter of a tool, resolved."""

    name: str
    schema: Schema
    required: bool

    @property
    def kind(self) -> str:
        return str(self.schema.get("type") or "string")

    @property
    def parts(self) -> frozenset[str]:
        return frozenset(self.name.lower().split("_"))

    @property
    def description(self) -> str:
        text = self.schema.get("description")
        return text.strip() if isinstance(text, str) else ""

    @cached_property
    def choices(self) -> list[Any]:
        return choices(self.schema)

    @property
    def titles(self) -> list[str]:
        return choice_titles(self.schema)

    @property
    def closed(self) -> bool:
        """Only the listed choices are valid (an enum, not examples)."""
        return bool(self.schema.get("enum"))

    @property
    def role(self) -> Role | None:
        for role, names in _ROLE_WORDS.items():
            if self.parts & names:
                return role
        return "time" if self.is_date else None

    @property
    def is_date(self) -> bool:
        return self.schema.get("format") == "date" or "date" in self.parts

    @property
    def is_email(self) -> bool:
        return self.schema.get("format") == "email" or "email" in self.parts

    @property
    def is_free_text(self) -> bool:
        return self.kind == "string" and bool(self.parts & FREE_TEXT_NAMES)

    @property
    def is_id_list(self) -> bool:
        items = self.schema.get("items")
        strings = isinstance(items, dict) and cast(Schema, items).get("type") == "string"
        return self.kind == "array" and strings and bool(self.parts & _ID_LIST_NAMES)

    @property
    def is_prose(self) -> bool:
        return self.kind == "string" and bool(self.parts & _PROSE_NAMES) and not self.choices

    @property
    def is_title(self) -> bool:
        return self.kind == "string" and bool(self.parts & _TITLE_NAMES) and not self.choices

    @property
    def is_reference(self) -> bool:
        """An id or number that only a tool's result can give (`reservation_id`)."""
        return (
            self.kind == "string"
            and not self.choices
            and bool(self.parts & {"id", "number", "ref", "token"})
            and "pattern" not in self.schema
        )

    @property
    def composed(self) -> bool:
        """Written by the agent from what it found (a title, a body, cited ids)."""
        return self.is_prose or self.is_title or self.is_id_list

    @property
    def askable(self) -> bool:
        """Something a person can be asked for."""
        return not self.composed and not self.is_reference


def params_of(spec: ToolSpec) -> list[Param]:
    schema = spec.parameters
    props = cast(Schema, schema.get("properties") or {})
    defs = cast(Schema, schema.get("$defs") or {})
    required = set(cast(list[str], schema.get("required") or []))
    return [
        Param(name=name, schema=resolve(cast(Schema, prop), defs), required=name in required)
        for name, prop in props.items()
        if isinstance(prop, dict)
    ]


# ---------------------------------------------------------------------- values


def same(a: Any, b: Any) -> bool:
    return str(a).strip().casefold() == str(b).strip().casefold()


def _score(param: Param, cue: str | None) -> int:
    """How well a cue before a value fits the parameter's role (negative: it belongs to
    another role, as "from Denver" does to a city to look in)."""
    role = param.role
    if cue is None or role is None:
        return 0
    if cue == role or (cue == "place" and role in ("end", "time")):
        return 2
    if role == "place" and cue == "end":
        return 1  # "a trip to Oslo": the place the trip is about
    if cue == "start" or role == "start" or (role == "end" and cue == "start"):
        return -1
    return 0


def _choice_in(param: Param, text: str, used: set[str], *, answer: bool = False) -> Any:
    # Where a trip starts or ends is only taken from words that say so ("from Boston"),
    # or from the reply to a question that asked for it.
    least = 1 if param.role in ("start", "end") and not answer else 0
    best: tuple[tuple[int, int], Any] | None = None
    lowered_words = content_words(text)
    titles = param.titles
    for i, choice in enumerate(param.choices):
        if str(choice).casefold() in used:
            continue
        found = re.search(rf"(?<!\w){re.escape(str(choice))}(?!\w)", text, re.I)
        score: tuple[int, int] | None = None
        if found is not None:
            score = (_score(param, cue_before(text, found.start())), len(str(choice)))
        elif i < len(titles) and (shared := content_words(titles[i]) & lowered_words):
            score = (0, len(shared))
        if score is None or score[0] < least:
            continue
        if best is None or score > best[0]:
            best = (score, choice)
    return None if best is None else best[1]


def _number_in(
    param: Param, text: str, used: set[str], *, strict: bool = False
) -> int | float | None:
    clean = DATE.sub(" ", text)
    keys = [w for w in param.parts | content_words(param.description) if len(w) >= 3]
    near = [
        m.group(1)
        for w in keys
        for m in re.finditer(rf"(-?\d+(?:\.\d+)?)\s+(?:\w+\s+)?{re.escape(w[:4])}", clean, re.I)
    ]
    raw = near if strict else [*near, *NUMBER.findall(clean)]
    if not strict and (spelled := count_in(clean)) is not None:
        raw.append(str(spelled))
    for candidate in raw:
        value: int | float = float(candidate) if param.kind == "number" else int(float(candidate))
        low, high = param.schema.get("minimum"), param.schema.get("maximum")
        if (isinstance(low, int | float) and value < low) or (
            isinstance(high, int | float) and value > high
        ):
            continue
        if candidate not in used:
            return value
    return None


def _pattern_in(param: Param, text: str) -> str | None:
    pattern = param.schema.get("pattern")
    if not isinstance(pattern, str) or not pattern.startswith("^"):
        return None
    try:
        found = re.search(r"(?<![\w@])" + pattern.strip("^$") + r"(?![\w@])", text)
    except re.error:
        return None
    return found.group(0) if found else None


_FILLER = re.compile(
    r"^(?:(?:i'?m |i am )?sorry[.,!]?\s*|ok(?:ay)?[.,!]?\s+|well[.,]?\s+|so[.,]?\s+|"
    r"hmm+[.,]?\s+|please[.,]?\s+|yes[.,!]?\s+|sure[.,!]?\s+)+",
    re.I,
)
_LEAD_IN = re.compile(
    r"^(?:it'?s|it is|that'?s|that is|my \w+(?: \w+)? is|the \w+(?: \w+)? is|"
    r"(?:please )?(?:ship|send|deliver)(?: it)?(?: to)?|to)\s+",
    re.I,
)


def answer_text(text: str) -> str:
    """A reply without its politeness and lead-in: "Sorry, it's 12 Elm St." -> "12 Elm St"."""
    cleaned = _FILLER.sub("", text.strip())
    cleaned = _LEAD_IN.sub("", cleaned).strip()
    return cleaned.rstrip(" .!")


def value_in(
    param: Param, text: str, used: set[str], *, answer: bool = False, strict: bool = False
) -> Any:
    """A value for `param` in `text` (None if there is none). `answer`: the text
    replies to a question that asked for this parameter alone, so a short reply is
    the value itself. `strict`: only a value the text ties to this parameter (a
    number next to its word), as when a later message changes an earlier choice."""
    if param.choices:
        value = _choice_in(param, text, used, answer=answer)
        if value is not None or param.closed:
            return value
    if param.kind in ("integer", "number"):
        return _number_in(param, text, used, strict=strict)
    if param.kind == "boolean":
        return True if is_yes(text) else False if is_no(text) else None
    if param.is_date:
        return next((d for d in DATE.findall(text) if d.casefold() not in used), None)
    if param.is_email:
        return next((e for e in EMAIL.findall(text) if e.casefold() not in used), None)
    if param.kind != "string" or param.composed:
        return None
    return _string_in(param, text, used, answer=answer)


def _string_in(param: Param, text: str, used: set[str], *, answer: bool) -> str | None:
    if (found := _pattern_in(param, text)) is not None:
        return found
    if "pattern" in param.schema:
        return None  # the pattern says what a value looks like, and none is here
    if param.role is not None and param.role != "time":
        named = phrase_after_cue(text, param.role)
        if named and named.casefold() not in used:
            return named
    if not answer or is_hesitation(text) or is_yes(text) or is_no(text):
        return None
    if (reply := answer_text(text)) and reply.casefold() not in used:
        if param.choices and len(reply.split()) > 4:
            return None  # a sentence is no place name
        return reply
    return None


def mentions(text: str, name: str) -> bool:
    """Whether `text` names `name`: the whole of it, or most of its words."""
    if not name.strip():
        return False
    if re.search(rf"(?<!\w){re.escape(name.strip())}(?!\w)", text, re.I):
        return True
    wanted = content_words(name)
    return len(wanted) >= 2 and len(wanted & content_words(text)) * 3 >= len(wanted) * 2
