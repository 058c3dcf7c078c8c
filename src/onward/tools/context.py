"""What a running tool knows about its call: chiefly its idempotency key."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from onward.exceptions import UserError


@dataclass(frozen=True)
class ToolContext:
    conversation_id: str
    call_id: str
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and worker restarts: workflow id + call id."""
        return f"{self.conversation_id}:{self.call_id}"


_current: ContextVar[ToolContext | None] = ContextVar("onward_tool_context", default=None)


def current_tool_context() -> ToolContext:
    """The context of the tool call running now.

    Raises:
        UserError: when called outside a tool call.
    """
    ctx = _current.get()
    if ctx is None:
        raise UserError("`current_tool_context()` is only available while a tool runs")
    return ctx


def set_tool_context(ctx: ToolContext | None) -> object:
    return _current.set(ctx)


def reset_tool_context(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
