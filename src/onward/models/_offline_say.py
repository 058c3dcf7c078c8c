"""How the offline model words things: questions in plain words, results as prose a
person reads (names, dates, venues, times, prices, links), failures explained.

Worded from the tools' own metadata (descriptions, parameter names, choices) and
results, never from anything a goal wrote for this model.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, cast

from onward.agent.specs import ToolSpec
from onward.models._offline_args import Param, Schema
from onward.models._offline_text import stem

_VERB_WORDS = frozenset(
    [
        "create",
        "make",
        "send",
        "search",
        "find",
        "get",
        "run",
        "store",
        "reserve",
        "charge",
        "book",
        "add",
        "open",
        "issue",
    ]
)
_SKIP_KEYS = frozenset({"score", "rank", "suggested_next_tool", "currency", "provider"})
_LABEL_KEYS = ("name", "title", "product", "subject")
_PLACE_KEYS = ("venue", "location", "address", "city")
_MONEY = ("price", "amount", "cost", "fare", "total", "usd")
_LONG_TEXT = 90


def human(name: str) -> str:
    return name.replace("_", " ").strip()


def phrase(spec: ToolSpec) -> str:
    """What a tool does, as a verb phrase: "search flights between two cities on a date"."""
    first = spec.description.strip().split("\n")[0]
    first = re.split(r"(?<=[a-z])\.\s|[;:(]|\.$", first)[0].strip().rstrip(".")
    if not first:
        return human(spec.name)
    return first[0].lower() + first[1:] if first[1:2].islower() else first


def noun(spec: ToolSpec) -> str:
    """What a tool makes or looks for: `create_invoice` -> "invoice"."""
    parts = spec.name.lower().split("_")
    rest = [p for p in parts if p not in _VERB_WORDS] or parts
    return " ".join(rest)


def verb(spec: ToolSpec) -> str:
    first = spec.name.lower().split("_")[0]
    return first if first in _VERB_WORDS else "run"


def money(value: Any) -> str:
    return f"${float(value):,.2f}"


def singular(key: str) -> str:
    return stem(human(key).split()[-1]) if key else "result"


def _duration(minutes: Any) -> str:
    hours, rest = divmod(int(minutes), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


def is_money(key: str) -> bool:
    return any(m in key.lower().split("_") for m in _MONEY)


def label_of(item: Schema) -> str:
    """The words that name an item: its name or title, else its brand and number."""
    for key in _LABEL_KEYS:
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    brand = next(
        (
            v
            for k, v in item.items()
            if isinstance(v, str) and k.lower() in ("airline", "carrier", "brand", "vendor")
        ),
        "",
    )
    ident = next(
        (
            str(v)
            for k, v in item.items()
            if isinstance(v, str | int) and k.lower().split("_")[-1] in ("number", "code", "id")
        ),
        "",
    )
    return " ".join(p for p in (brand, ident) if p) or "item"


def identifiers(item: Schema) -> list[str]:
    """Values that name an item on their own (a name, a flight number, an id)."""
    found: list[str] = []
    for key, value in item.items():
        tail = key.lower().split("_")[-1]
        if isinstance(value, str) and (key in _LABEL_KEYS or tail in ("number", "code", "id")):
            found.append(value)
    return found


def describe_item(item: Schema) -> str:
    """One line for an item, e.g. "**Bay Kite Festival** on Saturday, March 21, 2026 at
    Marina Green" or "**Maple Jet MJ1234**, 07:05 → 09:40 (2 h 35 min, nonstop) — $212.40"."""
    line = f"**{label_of(item)}**"
    text = item.get("snippet") or item.get("text") or item.get("body")
    if isinstance(ident := item.get("id"), str) and isinstance(text, str):
        line += f" [{ident}]"  # a document: its id is how it is cited
    if isinstance(day := item.get("date"), str):
        line += f" on {_pretty_date(day)}"
    times = [str(v) for k, v in item.items() if k.endswith("_time") and isinstance(v, str)]
    if times:
        line += ", " + " → ".join(times)
    places = [str(item[k]) for k in _PLACE_KEYS if isinstance(item.get(k), str) and item[k]]
    if places:
        line += " at " + ", ".join(dict.fromkeys(places))
    details: list[str] = []
    for key, value in item.items():
        low = key.lower()
        if low.startswith("duration") and isinstance(value, int | float):
            details.append(_duration(value))
        elif low == "stops" and isinstance(value, int):
            details.append("nonstop" if value == 0 else f"{value} stop{'s' if value > 1 else ''}")
        elif low in ("category", "topic", "kind") and isinstance(value, str):
            details.append(value)
    if details:
        line += f" ({', '.join(details)})"
    prices = [money(v) for k, v in item.items() if is_money(k) and isinstance(v, int | float)]
    if prices:
        line += " — " + prices[0]
    if isinstance(snippet := item.get("snippet"), str) and snippet:
        line += ": " + _short(snippet, 160)
    return line


def _pretty_date(value: str) -> str:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value
    return f"{day.strftime('%A')}, {day.strftime('%B')} {day.day}, {day.year} ({value})"


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def list_items(key: str, items: list[Schema], limit: int = 8) -> str:
    lines = [f"{i}. {describe_item(item)}" for i, item in enumerate(items[:limit], 1)]
    if len(items) > limit:
        lines.append(f"… and {len(items) - limit} more {human(key)}.")
    return "\n".join(lines)


def value_text(key: str, value: Any) -> str:
    if is_money(key) and isinstance(value, int | float) and not isinstance(value, bool):
        return money(value)
    if key.lower().startswith("duration") and isinstance(value, int | float):
        return _duration(value)
    return str(value)


def _fact_rank(key: str) -> int:
    low = key.lower()
    parts = low.split("_")
    if low in _LABEL_KEYS or low == "description":
        return 0
    if parts[-1] in ("quantity", "count", "seats", "units"):
        return 1
    if is_money(low):
        return 2
    if parts[-1] in ("id", "number") or low in ("sku", "code"):
        return 3
    return 4


def facts(content: Any) -> str:
    """The readable fields of a dict result, names first, then amounts, ids, the rest
    ("Enamel camp mug, quantity 2, amount $36.00, reservation id res_…")."""
    if not isinstance(content, dict):
        return _short(str(content), 200) if content is not None else "done"
    parts: list[tuple[int, str]] = []
    links: list[str] = []
    for key, value in cast(Schema, content).items():
        low = key.lower()
        if low in _SKIP_KEYS or value is None or isinstance(value, dict | list):
            continue
        if isinstance(value, str) and (value.startswith(("http://", "https://"))):
            links.append(value)
        elif _fact_rank(key) == 0 and isinstance(value, str):
            parts.append((0, f"**{_short(value, 160)}**"))
        elif isinstance(value, str | int | float | bool) and len(str(value)) <= _LONG_TEXT:
            name = human(key).removesuffix(" usd")
            parts.append((_fact_rank(key), f"{name} {value_text(key, value)}"))
    text = ", ".join(p for _, p in sorted(parts, key=lambda pair: pair[0])) or "done"
    if links:
        text += ". Link: " + " ".join(links)
    return text


def items_phrase(call_args: Schema) -> str:
    """ "in Chicago in June", from a call's arguments (for "I found no events …")."""
    bits: list[str] = []
    for key, value in call_args.items():
        parts = set(key.lower().split("_"))
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            continue
        if parts & {"origin", "source", "from"}:
            bits.append(f"from {value}")
        elif parts & {"destination", "to"}:
            bits.append(f"to {value}")
        elif parts & {"date", "day"}:
            bits.append(f"on {value}")
        elif parts & {"city", "location", "place", "month", "year", "region", "country"}:
            bits.append(f"in {value}")
        elif parts & {"query", "question", "topic", "keywords"}:
            bits.append(f"for “{_short(str(value), 80)}”")
        else:
            bits.append(f"with {human(key)} {value}")
    return " ".join(bits)


def question(param: Param, spec: ToolSpec) -> str:
    """A question in words for one missing parameter."""
    thing = noun(spec)
    if param.is_email:
        target = "it" if thing in ("email", "mail", "message") else f"the {thing}"
        return f"What email address should I send {target} to?"
    if param.role in ("start", "end"):
        way = "from" if param.role == "start" else "to"
        return f"Where will you {_motion(param.description, way) or 'go'} {way}?"
    if param.is_date:
        return "On which date? Please write it as YYYY-MM-DD."
    if param.is_free_text:
        return "What is your question?" if "question" in param.parts else "What should I look up?"
    label = _label(param)
    if param.kind in ("integer", "number"):
        counted = re.match(r"(?i)number of (.+)", label)
        return f"How many {counted.group(1)}?" if counted else f"What is the {label}?"
    if param.titles:
        options = [
            f"{title} ({value})" for value, title in zip(param.choices, param.titles, strict=False)
        ]
        return "Which one would you like? We have: " + join(options, "and") + "."
    if param.choices:
        shown = [str(c) for c in param.choices[: 12 if param.closed else 5]]
        lead = f"Which {label}?"
        return (
            f"{lead} For example: {join(shown, 'or')}."
            if not param.closed
            else (f"{lead} ({join(shown, 'or')})")
        )
    return f"What is the {label}?"


def _motion(description: str, way: str) -> str | None:
    """The verb a description uses for the trip: "the city the traveller flies from"
    -> "fly"."""
    found = re.search(rf"\b([a-z]+?)(ies|es|s) {way}\b", description.lower())
    if found is None:
        return None
    stem_, ending = found.groups()
    if ending == "ies":
        return stem_ + "y"
    return stem_ + ("e" if ending == "es" and not stem_.endswith(("o", "sh", "ch", "x")) else "")


def _label(param: Param) -> str:
    desc = param.description
    if desc:
        desc = re.split(r",\s*e\.g\.|;|\.\s|\(|, from |: ", desc)[0].strip().rstrip(".")
        desc = re.sub(r"`([^`]+)`", lambda m: human(m.group(1)), desc)
        if 0 < len(desc.split()) <= 8:
            return desc[0].lower() + desc[1:] if desc[1:2].islower() or len(desc) == 1 else desc
    title = param.schema.get("title")
    return (title if isinstance(title, str) and title else human(param.name)).lower()


def join(values: list[str], word: str = "and") -> str:
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + f" {word} " + values[-1]


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]
