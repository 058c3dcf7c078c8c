"""Reading `text/event-stream`: what the terminal chat and the tests use to follow a
conversation's events from the API (`onward.api.sse` writes them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    """One decoded event. `id` is None for events without an `id:` line."""

    event: str
    data: str
    id: str | None = None


class SseDecoder:
    """Incremental `text/event-stream` decoder (one line at a time, without EOL)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> SseEvent | None:
        """Take one line; returns an event when `line` completes one."""
        if line == "":
            if not self._data and not self._event:
                self._id = None
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data, self._id = "", [], None
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None
