"""The history scenario's conversation, the same for onward and both peers.

Every turn: the user says `page N`, the model calls `read_page(n=N)`, the tool returns
about 2 KB, the model replies `Read page N. Next?` (the shape of
`tests/workflows/test_bounded_history.py`). Each system's fake model records its
calls here, so the driver knows when a reply was produced and steps are timed the
same way everywhere: the gap between two model calls of one turn holds one tool call.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from itertools import pairwise

from onward.goals.base import Goal
from onward.tools import tool

PAGE_BYTES = 2048
GOAL_MANUAL = "bench-manual"
TOOL_NAME = "read_page"
TOOL_DESCRIPTION = "Read page `n` of the manual (about 2 KB of text)."
INSTRUCTIONS = "Read the page the user names, then say you did."
_PAGE = re.compile(r"(\d+)\D*$")


def page(n: int) -> dict[str, object]:
    """The tool's result for page `n`: 2 KB of text and the page number."""
    return {"page": n, "text": (f"page {n} " * 400)[:PAGE_BYTES]}


def user_text(n: int) -> str:
    return f"page {n}"


def reply_text(n: int) -> str:
    return f"Read page {n}. Next?"


def page_number(text: str) -> int:
    """The page a user message or a tool result's text names (its last number)."""
    found = _PAGE.search(text)
    if found is None:
        raise ValueError(f"no page number in {text!r}")
    return int(found.group(1))


def new_content_bytes(n: int) -> int:
    """What turn `n` adds to the conversation: the user's message, the tool's result
    (as JSON) and the reply, in UTF-8 bytes."""
    result = json.dumps(page(n), separators=(",", ":"))
    return len(user_text(n).encode()) + len(result.encode()) + len(reply_text(n).encode())


@tool(name=TOOL_NAME)
async def read_page(n: int) -> dict[str, object]:
    """Read page `n` of the manual (about 2 KB of text)."""
    return page(n)


MANUAL = Goal(
    name=GOAL_MANUAL,
    description="Benchmark: reads the manual page by page, one page a turn.",
    instructions=INSTRUCTIONS,
    tools=[read_page],
)


@dataclass
class CallLog:
    """One conversation's model calls: when each happened and in which turn.

    A fake model calls `call()` for every request and `replied()` when its answer is
    the turn's reply; the driver awaits `wait_replies`. Calls may come from an
    activity thread, so the waiter is woken through the loop it waits on.
    """

    times: list[float] = field(default_factory=list[float])
    turns: list[int] = field(default_factory=list[int])
    replies: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def call(self) -> None:
        """A model call of the current turn (the one after the last reply)."""
        self.times.append(time.perf_counter())
        self.turns.append(self.replies + 1)

    def replied(self) -> None:
        self.replies += 1
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._changed.set)

    async def wait_replies(self, count: int, timeout_s: float) -> bool:
        """True once `count` replies were produced; False after `timeout_s`."""
        self._loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout_s
        while self.replies < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            if self.replies >= count:
                break
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=left)
            except TimeoutError:
                return self.replies >= count
        return True

    def step_seconds(self, first_turn: int = 1, last_turn: int | None = None) -> list[float]:
        """Gaps between consecutive model calls of one turn, for turns in the range:
        each holds one tool call and the model-call round trip after it."""
        return [
            b - a
            for (a, ta), (b, tb) in pairwise(zip(self.times, self.turns, strict=True))
            if ta == tb and first_turn <= ta <= (last_turn if last_turn is not None else ta)
        ]

    def calls_in(self, turns: int) -> int:
        """Model calls made in the first `turns` turns."""
        return sum(1 for t in self.turns if t <= turns)


class CallLogs:
    """Call logs by conversation (workflow) id: a fake model running inside an
    activity finds its conversation's log through the activity's workflow id."""

    def __init__(self) -> None:
        self._logs: dict[str, CallLog] = {}

    def open(self, conversation_id: str) -> CallLog:
        log = CallLog()
        self._logs[conversation_id] = log
        return log

    def get(self, conversation_id: str) -> CallLog:
        return self._logs[conversation_id]

    def close(self, conversation_id: str) -> None:
        self._logs.pop(conversation_id, None)
