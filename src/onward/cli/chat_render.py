"""What the terminal chat prints: events and transcript messages as lines.

Everything written goes through `printable`: model or user text must not be able to
drive the terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from onward.agent.events import MessageEvent, ModelCallStarted, StatusChanged, TokenDelta
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from onward.cli.chat_api import ChatEvent, WorkerChanged

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without control characters: model or user text must not be able to move
    the cursor, recolour or retitle the terminal with escape sequences."""
    return _CONTROL.sub("", text)


class ChatPrinter:
    """Prints a conversation as it streams: token text as it comes, then the message
    that supersedes it (not twice), tool calls and their results, notices."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._streamed = ""
        """Token text printed for the message in progress."""

    def write(self, text: str) -> None:
        self._write(printable(text))

    def say(self, text: str = "") -> None:
        self.write(text + "\n")

    def show(self, event: ChatEvent) -> None:
        """Print what a person wants to see of `event` (most events print nothing)."""
        if isinstance(event, MessageEvent):
            self.message(event.message, replay=False)
        elif isinstance(event, ModelCallStarted):
            self.finish_stream()
        elif isinstance(event, TokenDelta):
            if not self._streamed:
                self.write("agent> ")
            self._streamed += event.text
            self.write(event.text)
        elif isinstance(event, StatusChanged) and event.status == "retrying_model":
            self.say(f"({retrying(event)})")
        elif isinstance(event, WorkerChanged):
            self.say("(a worker is running again)" if event.polling else f"({event.detail})")

    def finish_stream(self) -> None:
        if self._streamed:
            self.write("\n")
        self._streamed = ""

    def message(self, message: Message, *, replay: bool) -> None:
        """One transcript message; the user's own only when `replay`ed (live, they
        typed it)."""
        if isinstance(message, AssistantMessage):
            streamed, self._streamed = self._streamed, ""
            if streamed and streamed.strip() == message.text.strip():
                self.write("\n")
            elif streamed:
                self.say(f"\nagent> {message.text}")
            else:
                self.say(f"agent> {message.text}")
        elif isinstance(message, UserMessage):
            if replay:
                self.say(f"you> {message.text}")
        elif isinstance(message, ToolCallMessage):
            self.finish_stream()
            self.say(f"  → {message.tool}({_json(message.args)})")
        elif isinstance(message, ToolResultMessage):
            shown = message.content if message.ok else message.error
            text = shown if isinstance(shown, str) else _json(shown)
            status = "ok" if message.ok else "failed"
            self.say(f"  ← {message.tool} {status}: {_shorten(text)}")
        else:
            self._notice(message)

    def _notice(self, notice: NoticeMessage) -> None:
        self.finish_stream()
        self.say(f"[{notice.level}] {notice.text}")


def retrying(status: StatusChanged) -> str:
    """A `retrying_model` status in words: which attempt, and when the next one runs."""
    parts = ["retrying the model"]
    if status.attempt:
        parts.append(f"attempt {status.attempt}")
    if status.retry_in_s is not None:
        parts.append(f"next try in {status.retry_in_s:.0f} s")
    return ", ".join(parts) + f": {status.detail or 'temporary error'}"


def usage_text(usage: Usage) -> str:
    tokens = usage.input_tokens + usage.output_tokens
    if usage.cost_unknown_requests and not usage.cost_usd:
        cost = "cost unknown"
    else:
        cost = f"${usage.cost_usd or 0:.4f}"
    return f"{usage.requests} model calls, {tokens} tokens, {cost}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _shorten(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
