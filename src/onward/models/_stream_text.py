"""What of a streamed answer reaches the user: the text each stream event adds, and a
gate that holds back text that may still turn out to be a tool call written as text."""

from __future__ import annotations

from pydantic_ai.messages import PartDeltaEvent, PartStartEvent, TextPartDelta

from onward.agent.text_calls import might_open_tool_call
from onward.models.base import DeltaCallback


def text_delta(event: object) -> str | None:
    """The text a streamed event adds to the answer, if any."""
    if isinstance(event, PartStartEvent):
        content: object = getattr(event.part, "content", None)
        kind: object = getattr(event.part, "part_kind", None)
        return content if kind == "text" and isinstance(content, str) else None
    if isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
        return event.delta.content_delta
    return None


class DeltaGate:
    """Passes streamed text on, except while it may still be a tool call written as
    text (`functions.x:`, `<tool_call>`, a JSON object): such text never reaches the
    user. What was held back is let out by `release` once the answer is plain text."""

    def __init__(self, on_delta: DeltaCallback | None) -> None:
        self._on_delta = on_delta
        self._held = ""
        self._open = False

    async def feed(self, text: str) -> None:
        if self._on_delta is None or not text:
            return
        if self._open:
            await self._on_delta(text)
            return
        self._held += text
        if not might_open_tool_call(self._held):
            self._open = True
            held, self._held = self._held, ""
            await self._on_delta(held)

    def reset(self) -> None:
        """Forget held text (the answer is being asked for again)."""
        self._held = ""

    async def release(self, words: str) -> None:
        """The answer turned out to be `words` (plain text): send them if they were
        held back (a reply wrapped in JSON is sent as its words)."""
        if self._on_delta is not None and self._held and not self._open:
            self._held = ""
            await self._on_delta(words)
