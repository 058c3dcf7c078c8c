"""Process-wide tool registry: tools are found by name when a goal names them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from onward.exceptions import UnknownToolError, UserError

if TYPE_CHECKING:
    from onward.tools.decorator import Tool

_TOOLS: dict[str, Tool] = {}


def register_tool(t: Tool) -> None:
    existing = _TOOLS.get(t.name)
    if existing is not None and existing.function is not t.function:
        same_source = (
            existing.function.__module__ == t.function.__module__
            and existing.function.__qualname__ == t.function.__qualname__
        )
        if not same_source:
            raise UserError(
                f"two tools are named `{t.name}` ({existing.function.__module__} and "
                f"{t.function.__module__}); pass `name=` to one of them"
            )
    _TOOLS[t.name] = t


def get_tool(name: str) -> Tool:
    try:
        return _TOOLS[name]
    except KeyError:
        raise UnknownToolError(
            f"no tool named `{name}` is registered; known: {sorted(_TOOLS)}"
        ) from None


def all_tools() -> dict[str, Tool]:
    return dict(_TOOLS)
