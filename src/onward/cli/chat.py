"""Terminal chat: talk to a conversation through the HTTP API, like the web UI does.

It uses the API (not Temporal directly) so the owner index, auth and limits are the
same as in the browser, and a conversation started here shows up there. Replies are
printed as they stream; approvals are asked as y/n; Ctrl-D leaves (the conversation
keeps waiting and can be resumed with `--resume`). `--fork ID@TURN` forks a
conversation after its first TURN turns and chats in the fork.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any, TextIO
from urllib.parse import quote

from onward.agent.events import StatusChanged
from onward.agent.messages import MESSAGES_ADAPTER, Usage
from onward.cli.chat_api import ApiClient, ChatEvent, client_for
from onward.cli.chat_render import ChatPrinter, usage_text
from onward.exceptions import ChatError

IDLE = frozenset({"waiting_for_user", "waiting_for_approval", "budget_exhausted", "ended"})
"""Statuses in which the agent waits for someone (or has stopped)."""
BUSY = frozenset({"thinking", "retrying_model", "running_tools"})


class LineReader:
    """Reads stdin in a daemon thread, so Ctrl-C never waits for a pending line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdin
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._started = False

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            line = self._stream.readline()
            loop.call_soon_threadsafe(self._queue.put_nowait, line.rstrip("\n") if line else None)
            if not line:
                return

    async def read(self) -> str | None:
        """The next line, or None at end of input (Ctrl-D)."""
        if not self._started:
            self._started = True
            loop = asyncio.get_running_loop()
            threading.Thread(target=self._run, args=(loop,), daemon=True).start()
        return await self._queue.get()


class TerminalChat:
    """One conversation in the terminal."""

    def __init__(self, api: ApiClient, write: Callable[[str], None], reader: LineReader) -> None:
        self.api = api
        self.out = ChatPrinter(write)
        self.say = self.out.say
        self.reader = reader
        self.cid = ""
        self._events: AsyncGenerator[ChatEvent] | None = None

    async def ask(self, prompt: str) -> str | None:
        self.out.write(prompt)
        return await self.reader.read()

    async def start(self, goal: str) -> bool:
        """Show the goal, read the first message and start; False if the user left."""
        goals = await self.api.call("GET", "/v1/goals")
        found = next((g for g in goals["goals"] if g["name"] == goal), None)
        if found is None:
            names = ", ".join(g["name"] for g in goals["goals"])
            raise ChatError(f"no goal named `{goal}`; available: {names}")
        self.say(f"{found['name']}: {found['description']}")
        if found["starter_prompt"]:
            self.say(f"agent> {found['starter_prompt']}")
        first = await self._read_message()
        if first is None:
            return False
        created = await self.api.call("POST", "/v1/conversations", {"goal": goal, "message": first})
        self.cid = created["id"]
        self.say(f"(conversation {self.cid}; Ctrl-D leaves, `onward chat --resume {self.cid}`)")
        return True

    async def resume(self, conversation_id: str) -> tuple[str, int]:
        """Show the end of the transcript; returns the current status and the stream
        offset the transcript shown is as of."""
        detail = await self.api.call("GET", f"/v1/conversations/{quote(conversation_id)}")
        self.cid = conversation_id
        self.say(f"(resuming {conversation_id}: {detail['goal']}, {detail['status']})")
        for message in MESSAGES_ADAPTER.validate_python(detail["messages"][-10:]):
            self.out.message(message, replay=True)
        return detail["status"], int(detail["stream_offset"])

    async def fork(self, spec: str) -> str:
        """Fork `ID@TURN`; returns the fork's id."""
        source, turn = fork_spec(spec)
        forked = await self.api.call(
            "POST", f"/v1/conversations/{quote(source)}/fork", {"turn": turn}
        )
        cid = str(forked["id"])
        self.say(f"(forked {source} after turn {turn}: {cid})")
        return cid

    async def run(self, goal: str | None, resume: str | None, fork: str | None = None) -> None:
        """Chat until the conversation ends or the user leaves (in the fork of
        `fork`, `ID@TURN`, when given)."""
        try:
            if fork:
                resume = await self.fork(fork)
            await self._run(goal, resume)
        finally:
            if self._events is not None:
                await self._events.aclose()

    async def _run(self, goal: str | None, resume: str | None) -> None:
        if resume:
            status, seen = await self.resume(resume)
            # What is shown is as of `seen`: the stream carries on from there.
            self._events = self.api.events(self.cid, after=seen)
            if status not in IDLE:
                status = await self._until_idle(after_busy=False)
        else:
            assert goal is not None
            if not await self.start(goal):
                return
            self._events = self.api.events(self.cid)
            status = await self._until_idle(after_busy=True)
        while status != "ended":
            acted = await self._act(status)
            if not acted:
                self.say(f"\n(left; the conversation waits: onward chat --resume {self.cid})")
                return
            status = await self._until_idle(after_busy=True)
        detail = await self.api.call("GET", f"/v1/conversations/{quote(self.cid)}?offset=0")
        self.say(f"(conversation ended: {usage_text(Usage.model_validate(detail['usage']))})")

    async def _read_message(self) -> str | None:
        while True:
            line = await self.ask("you> ")
            if line is None or line.strip():
                return line

    async def _act(self, status: str) -> bool:
        """Do what the agent waits for; False when the user leaves."""
        if status == "waiting_for_approval":
            return await self._approve()
        if status == "budget_exhausted":
            answer = await self.ask("Raise the token budget to (empty to leave): ")
            if not answer or not answer.strip():
                return False
            try:
                tokens = int(answer)
            except ValueError:
                self.say("(a whole number of tokens, please)")
                return await self._act(status)
            await self.api.call(
                "POST", f"/v1/conversations/{quote(self.cid)}/budget", {"max_tokens": tokens}
            )
            return True
        text = await self._read_message()
        if text is None:
            return False
        try:
            await self.api.call(
                "POST", f"/v1/conversations/{quote(self.cid)}/messages", {"text": text}
            )
        except ChatError as exc:
            self.say(f"(not sent: {exc})")
            return await self._act(status)
        return True

    async def _approve(self) -> bool:
        detail = await self.api.call("GET", f"/v1/conversations/{quote(self.cid)}?offset=0")
        for pending in detail["pending_approvals"]:
            args = json.dumps(pending["args"], ensure_ascii=False)
            self.say(f"approval needed: {pending['tool']}({args})")
            while True:
                answer = await self.ask("approve? [y/n] ")
                if answer is None:
                    return False
                if answer.strip().lower() in ("y", "yes", "n", "no"):
                    break
            decision = "approve" if answer.strip().lower().startswith("y") else "reject"
            feedback = None
            if decision == "reject":
                feedback = (await self.ask("why (optional)? ")) or None
            path = f"/v1/conversations/{quote(self.cid)}/approvals/{quote(pending['call_id'])}"
            body = {"decision": decision, "args_hash": pending["args_hash"], "feedback": feedback}
            await self.api.call("POST", path, body)
        return True

    async def _until_idle(self, *, after_busy: bool) -> str:
        """Print events until the agent waits (after having been busy, if asked)."""
        assert self._events is not None
        busy_seen = not after_busy
        async for event in self._events:
            self.out.show(event)
            if not isinstance(event, StatusChanged):
                continue
            status = event.status
            if status in BUSY:
                busy_seen = True
            elif status in IDLE and (busy_seen or status == "ended"):
                return status
        return "ended"


def fork_spec(spec: str) -> tuple[str, int]:
    """`ID@TURN` as (conversation id, turns to keep).

    Raises:
        ChatError: Not of that form.
    """
    source, at, turn = spec.rpartition("@")
    if not at or not source or not turn.strip().isdigit():
        raise ChatError(f"--fork takes ID@TURN (e.g. conv-1a2b3c@2), not {spec!r}")
    return source, int(turn)


async def chat(
    base_url: str,
    token: str,
    *,
    goal: str | None,
    resume: str | None,
    write: Callable[[str], None],
    reader: LineReader | None = None,
    fork: str | None = None,
) -> None:
    """Run a terminal conversation against the API at `base_url`: a new one with
    `goal`, the conversation `resume`, or a fork (`fork` = `ID@TURN`)."""
    async with client_for(base_url, token) as http:
        api = ApiClient(http)
        await api.call("GET", "/v1/me")
        await TerminalChat(api, write, reader or LineReader()).run(goal, resume, fork)


async def list_conversations(base_url: str, token: str, limit: int) -> list[dict[str, Any]]:
    """The caller's conversations, newest first."""
    async with client_for(base_url, token) as http:
        data = await ApiClient(http).call("GET", f"/v1/conversations?limit={limit}")
    return list(data["conversations"])
