"""Tool calls that a model wrote as text instead of as native tool calls.

Small and self-hosted models (llama.cpp's server, Ollama) often answer a request that
offers tools with the call spelled out in the text, in the syntax their chat template
taught them. Three families are common:

- `functions.find_events:{"city": "Paris"}` or `functions.find_events({...})`
  (the "chatml function calling" style);
- `<tool_call>{"name": "find_events", "arguments": {...}}</tool_call>` (Qwen, Hermes);
- a bare `{"name": ..., "arguments": ...}` object (also with `"parameters"`, also
  inside a ``` fence, also several in a row or as a JSON list), and, for an offered
  tool's name, with the arguments inline (`{"name": "finish", "answer": "..."}`).

Pure functions, no I/O: importable inside workflows, so the loop can make sure such
text is never shown to the user as the assistant's words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, cast

__all__ = [
    "TextToolCalls",
    "find_text_tool_calls",
    "looks_like_tool_call",
    "might_open_tool_call",
    "parse_text_tool_calls",
    "unwrap_json_reply",
]

_FUNCTIONS = re.compile(r"functions\.([A-Za-z_][\w.-]*?)\s*([:(])\s*")
_TAG_OPEN = re.compile(r"<tool_call>\s*", re.IGNORECASE)
_TAG_CLOSE = re.compile(r"\s*</tool_call>", re.IGNORECASE)
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?")
_CALL_OBJECT = re.compile(r'[{,]\s*"(?:name|function)"\s*:')
_ARGS_KEY = re.compile(r'"(?:arguments|parameters)"\s*:')
_OTHER_MARKERS = re.compile(
    r"functions\.[A-Za-z_]\w*\s*[:(]|</?tool_call>|<\|python_tag\|>|\[TOOL_CALLS\]|<function=",
    re.IGNORECASE,
)
_OPENERS = ("functions.", "<tool_call>", "<|python_tag|>", "[TOOL_CALLS]", "<function=")
_DECODER = json.JSONDecoder(strict=False)


@dataclass(frozen=True)
class TextToolCalls:
    """The tool calls found in a text, and the prose around them."""

    calls: list[tuple[str, dict[str, Any]]]
    prose: str = ""
    unknown: list[str] = field(default_factory=list[str])
    """Called names that are not among the offered tools (after normalising)."""


class _Unparsable(ValueError):
    """Tool-call syntax whose JSON could not be read."""


def looks_like_tool_call(text: str) -> bool:
    """Whether `text` holds tool-call syntax of a known family, whatever the tool name.

    True for `functions.x:` / `functions.x(`, `<tool_call>`, a JSON object with a
    `name` and `arguments`/`parameters`, and a few other templates' markers
    (`<|python_tag|>`, `[TOOL_CALLS]`, `<function=`), even when the JSON is broken.
    """
    if _OTHER_MARKERS.search(text):
        return True
    return bool(_CALL_OBJECT.search(text) and _ARGS_KEY.search(text))


def might_open_tool_call(text: str) -> bool:
    """Whether streamed text so far could still turn out to be a tool call.

    Used to hold back token deltas at the start of an answer: as long as this is true
    the text may be a call written as text, which must never reach the user.
    """
    head = text.lstrip()
    if not head:
        return True
    if head[0] in "{[" or head.startswith("`"):
        return True
    return any(head.startswith(o) or o.startswith(head) for o in _OPENERS)


_REPLY_KEYS = frozenset({"response", "answer", "text", "message", "content", "reply"})


def unwrap_json_reply(text: str) -> str | None:
    """The words of a reply wrapped in JSON, e.g. `{"response": "It is sunny."}`.

    Small models trained on JSON answers wrap plain replies this way; the user should
    read the words, not the JSON. None when `text` is not such a wrapper.
    """
    body = _FENCE.sub("", text).replace("```", "").strip()
    if not body.startswith("{"):
        return None
    try:
        value = json.loads(body, strict=False)
    except ValueError:
        return None
    if not isinstance(value, dict) or len(cast(dict[str, Any], value)) != 1:
        return None
    [(key, words)] = cast(dict[str, Any], value).items()
    if key not in _REPLY_KEYS or not isinstance(words, str) or not words.strip():
        return None
    return words.strip()


def parse_text_tool_calls(
    text: str, tool_names: Collection[str]
) -> list[tuple[str, dict[str, Any]]] | None:
    """The tool calls written in `text` as `(name, arguments)`, in order.

    Names are normalised against `tool_names` (a `functions.` prefix or another letter
    case is dropped when that gives an offered name); names that still match nothing
    are returned as they are, for the caller to report.

    Returns:
        None when `text` holds no tool call, or when its tool-call syntax cannot be
        read (then `looks_like_tool_call(text)` is true).
    """
    found = find_text_tool_calls(text, tool_names)
    return found.calls if found is not None else None


def find_text_tool_calls(text: str, tool_names: Collection[str]) -> TextToolCalls | None:
    """Like `parse_text_tool_calls`, with the prose around the calls and the unknown
    names (see `TextToolCalls`)."""
    names = list(tool_names)
    try:
        spans = _scan(text, names)
    except _Unparsable:
        return None
    if not spans:
        return None
    calls = [(_normalise(name, names), args) for _, _, found in spans for name, args in found]
    prose_parts: list[str] = []
    cursor = 0
    for start, end, _ in spans:
        prose_parts.append(text[cursor:start])
        cursor = end
    prose_parts.append(text[cursor:])
    prose = _FENCE.sub("", "".join(prose_parts)).replace("```", "").strip()
    unknown = [n for n, _ in calls if n not in names]
    return TextToolCalls(calls=calls, prose=prose, unknown=unknown)


# ---------------------------------------------------------------------- scanning

_Call = tuple[str, dict[str, Any]]
_Span = tuple[int, int, list[_Call]]
"""Where in the text, and the call(s) written there (a JSON list holds several)."""


def _scan(text: str, names: list[str]) -> list[_Span]:
    spans: list[_Span] = []
    taken: list[tuple[int, int]] = []

    def free(pos: int) -> bool:
        return not any(a <= pos < b for a, b in taken)

    for match in _FUNCTIONS.finditer(text):
        value, end = _decode(text, match.end())
        if not isinstance(value, dict):
            raise _Unparsable(f"`functions.{match.group(1)}` is not followed by an object")
        if match.group(2) == "(":
            close = re.compile(r"\s*\)").match(text, end)
            end = close.end() if close else end
        args = _str_keys(cast(dict[object, Any], value))
        spans.append((match.start(), end, [(match.group(1), args)]))
        taken.append((match.start(), end))
    for match in _TAG_OPEN.finditer(text):
        if not free(match.start()):
            continue
        value, end = _decode(text, match.end())
        call = _call_of(value)
        if call is None:
            raise _Unparsable("a <tool_call> without a name")
        close = _TAG_CLOSE.match(text, end)
        end = close.end() if close else end
        spans.append((match.start(), end, [call]))
        taken.append((match.start(), end))
    spans += _bare_calls(text, free, names)
    spans.sort(key=lambda s: s[0])
    return spans


def _bare_calls(text: str, free: Callable[[int], bool], names: list[str]) -> list[_Span]:
    """Bare `{"name": ..., "arguments": ...}` objects (or lists of them); an offered
    tool's name may also come with its arguments inline."""
    spans: list[_Span] = []
    pos = 0
    while True:
        starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0]
        if not starts:
            return spans
        start = min(starts)
        if not free(start):
            pos = start + 1
            continue
        try:
            value, end = _decode(text, start)
        except _Unparsable:
            pos = start + 1
            continue
        items = cast(list[Any], value) if isinstance(value, list) else [value]
        calls = [c for c in (_bare_call(item, names) for item in items) if c is not None]
        if items and len(calls) == len(items):
            spans.append((start, end, calls))
        elif _CALL_OBJECT.search(text, start, end) and _ARGS_KEY.search(text, start, end):
            # A call object nested in other JSON: look inside instead of skipping it.
            pos = start + 1
            continue
        pos = end


def _bare_call(value: Any, names: list[str]) -> _Call | None:
    call = _call_of(value, need_args=True)
    if call is not None or not isinstance(value, dict):
        return call
    obj = _str_keys(cast(dict[object, Any], value))
    name = obj.get("name")
    if not isinstance(name, str) or _normalise(name, names) not in names:
        return None
    # `{"name": "finish", "answer": "..."}`: the rest of the object is the arguments.
    return name.strip(), {k: v for k, v in obj.items() if k not in ("name", "type")}


def _decode(text: str, pos: int) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, pos)
    except ValueError as exc:
        raise _Unparsable(str(exc)) from exc


def _call_of(value: Any, *, need_args: bool = False) -> _Call | None:
    """`(name, args)` when `value` is a call object, else None.

    Raises:
        _Unparsable: The arguments are neither an object nor a JSON object string.
    """
    if not isinstance(value, dict):
        return None
    obj = _str_keys(cast(dict[object, Any], value))
    inner = obj.get("function")
    if isinstance(inner, dict) and "name" in inner:  # OpenAI's own wire shape
        obj = _str_keys(cast(dict[object, Any], inner))
    name = obj.get("name")
    key = next((k for k in ("arguments", "parameters") if k in obj), None)
    if not isinstance(name, str) or not name.strip() or (need_args and key is None):
        return None
    raw: Any = obj.get(key) if key else None
    if raw is None:
        return name.strip(), {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw, strict=False) if raw.strip() else {}
        except ValueError as exc:
            raise _Unparsable(f"arguments of {name!r} are not JSON") from exc
    if not isinstance(raw, dict):
        raise _Unparsable(f"arguments of {name!r} are not an object")
    return name.strip(), _str_keys(cast(dict[object, Any], raw))


def _str_keys(value: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()}


def _normalise(name: str, names: list[str]) -> str:
    if name in names:
        return name
    bare = name.removeprefix("functions.")
    for candidate in (bare, bare.lower()):
        if candidate in names:
            return candidate
    lowered = {n.lower(): n for n in names}
    return lowered.get(bare.lower(), name)
