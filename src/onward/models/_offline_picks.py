"""Which item of a list the user means: "the first one", "number 2", "the cheapest",
"the earliest", or one they name ("the Bay Kite Festival", "MJ1234", "the 07:05 one")."""

from __future__ import annotations

import re
from typing import Any, cast

from onward.models._offline_args import Schema, mentions
from onward.models._offline_say import identifiers, label_of
from onward.models._offline_text import ordinal_in, superlative_in


def superlative_pick(text: str, items: list[Schema]) -> int | None:
    """The item a superlative in `text` names, by the field it is about."""
    rule = superlative_in(text)
    if rule is None or not items:
        return None
    parts, highest = rule
    for key in items[0]:
        low = key.lower()
        if not any(p in low for p in parts):
            continue
        values: list[tuple[Any, int]] = [
            (item.get(key), i) for i, item in enumerate(items) if item.get(key) is not None
        ]
        kinds: set[type[Any]] = {type(cast(object, v)) for v, _ in values}
        if values and (kinds <= {int, float} or kinds == {str}):
            return (max(values) if highest else min(values))[1]
    return None


def _named(text: str, item: Schema) -> bool:
    if any(mentions(text, ident) for ident in identifiers(item)):
        return True
    if mentions(text, label_of(item)):
        return True
    stamps = [
        v for k, v in item.items() if (k == "date" or k.endswith("_time")) and isinstance(v, str)
    ]
    return any(re.search(rf"(?<![\w:-]){re.escape(v)}(?![\w:-])", text) for v in stamps)


def pick_in(text: str, items: list[Schema]) -> int | None:
    """The index of the item `text` picks, or None."""
    if not items:
        return None
    ordinal = ordinal_in(text)
    if ordinal is not None and -len(items) <= ordinal < len(items):
        return ordinal % len(items)
    chosen = superlative_pick(text, items)
    if chosen is not None:
        return chosen
    return named_pick(text, items)


def named_pick(text: str, items: list[Schema]) -> int | None:
    """The one item `text` names (by its name, number, date or time), or None."""
    named = [i for i, item in enumerate(items) if _named(text, item)]
    return named[0] if len(named) == 1 else None
