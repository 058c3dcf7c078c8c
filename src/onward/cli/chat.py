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
import re
import sys
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any, TextIO
from urllib.parse import quote

import httpx

from onward.client.sse import SseDecoder, SseEvent
from onward.exceptions import ChatError

IDLE = frozenset({"waiting_for_user", "waiting_for_approval", "budget_exhausted", "ended"})
"""Statuses in which the agent waits for someone (or has stopped)."""
BUSY = frozenset({"thinking", "retrying_model", "running_tools"})
RECONNECTS = 5


class ApiClient:
    """A small client of onward's HTTP API (the calls the terminal chat needs)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = await self.http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ChatError(
                f"the API at {self.http.base_url} is not reachable ({exc!r}); "
                "start it with `onward up`"
            ) from exc
        if response.status_code == 204:
            return None
        if response.is_error:
            raise ChatError(_reason(response))
        return response.json()

    async def events(self, conversation_id: str, after: int = -1) -> AsyncGenerator[SseEvent]:
        """The conversation's events after offset `after`, reconnecting (from the last
        offset seen) when the connection drops, until the conversation ends."""
        path = f"/v1/conversations/{quote(conversation_id)}/events"
        failures = 0
        while True:
            try:
                async with self.http.stream(
                    "GET", path, headers={"Last-Event-ID": str(after)}
                ) as response:
                    if response.is_error:
                        await response.aread()
                        raise ChatError(_reason(response))
                    decoder = SseDecoder()
                    async for line in response.aiter_lines():
                        event = decoder.feed(line)
                        if event is None:
                            continue
                        if event.event == "end":
                            return
                        if event.event == "stream_error":
                            raise ChatError(f"the event stream failed: {event.data}")
                        if event.id is not None:
                            after = int(event.id)
                        failures = 0
                        yield event
            except httpx.TransportError as exc:
                failures += 1
                if failures > RECONNECTS:
                    raise ChatError(f"lost the event stream ({exc!r})") from exc
                await asyncio.sleep(0.25 * 2**failures)  # back off before reconnecting


def _reason(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['reason']} ({response.status_code} {error['code']})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


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
        self._write = write
        self.reader = reader
        self.cid = ""
        self._events: AsyncGenerator[SseEvent] | None = None
        self._streamed = ""
        self._skip_until = -1

    def write(self, text: str) -> None:
        self._write(printable(text))

    def say(self, text: str = "") -> None:
        self.write(text + "\n")

    async def ask(self, prompt: str) -> str | None:
        self.write(prompt)
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

    async def resume(self, conversation_id: str) -> str:
        """Show the end of the transcript; returns the current status."""
        detail = await self.api.call("GET", f"/v1/conversations/{quote(conversation_id)}")
        self.cid = conversation_id
        self.say(f"(resuming {conversation_id}: {detail['goal']}, {detail['status']})")
        for message in detail["messages"][-10:]:
            self._print_message(message, replay=True)
        self._skip_until = detail["message_count"] - 1
        return detail["status"]

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
            status = await self.resume(resume)
            self._events = self.api.events(self.cid)
            status = await self._catch_up(status)
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
        self.say(f"(conversation ended: {_usage(detail['usage'])})")

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

    async def _catch_up(self, status: str) -> str:
        """Read the replayed stream quietly up to the state already shown.

        The stream starts at the beginning; everything up to the last message shown is
        old, and so is (for a waiting conversation) the status that followed it.
        """
        assert self._events is not None
        passed = self._skip_until < 0
        async for event in self._events:
            data = json.loads(event.data)
            if not passed:
                passed = event.event == "message" and data["index"] >= self._skip_until
                if passed and status not in IDLE:
                    return status  # busy: what follows is news, shown by the caller
            elif event.event == "status" and data["status"] in IDLE:
                return str(data["status"])
        return "ended"

    async def _until_idle(self, *, after_busy: bool) -> str:
        """Print events until the agent waits (after having been busy, if asked)."""
        assert self._events is not None
        busy_seen = not after_busy
        async for event in self._events:
            data = json.loads(event.data)
            self._show(event.event, data)
            if event.event != "status":
                continue
            status = data["status"]
            if status in BUSY:
                busy_seen = True
            elif status in IDLE and (busy_seen or status == "ended"):
                return status
        return "ended"

    def _show(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "message":
            self._print_message(data["message"], replay=False)
        elif kind == "model_call_started":
            self._finish_stream()
        elif kind == "delta":
            if not self._streamed:
                self.write("agent> ")
            self._streamed += data["text"]
            self.write(data["text"])
        elif kind == "status" and data["status"] == "retrying_model":
            self.say(f"({retrying(data)})")
        elif kind == "worker":
            self.say("(a worker is running again)" if data["polling"] else f"({data['detail']})")

    def _finish_stream(self) -> None:
        if self._streamed:
            self.write("\n")
        self._streamed = ""

    def _print_message(self, message: dict[str, Any], *, replay: bool) -> None:
        kind = message["kind"]
        if kind == "assistant":
            streamed, self._streamed = self._streamed, ""
            if streamed and streamed.strip() == message["text"].strip():
                self.write("\n")
            elif streamed:
                self.say(f"\nagent> {message['text']}")
            else:
                self.say(f"agent> {message['text']}")
        elif kind == "user" and replay:
            self.say(f"you> {message['text']}")
        elif kind == "tool_call":
            self._finish_stream()
            args = json.dumps(message["args"], ensure_ascii=False)
            self.say(f"  → {message['tool']}({args})")
        elif kind == "tool_result":
            shown = message["content"] if message["ok"] else message["error"]
            text = shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False)
            status = "ok" if message["ok"] else "failed"
            self.say(f"  ← {message['tool']} {status}: {_shorten(text)}")
        elif kind == "notice":
            self._finish_stream()
            self.say(f"[{message['level']}] {message['text']}")


def fork_spec(spec: str) -> tuple[str, int]:
    """`ID@TURN` as (conversation id, turns to keep).

    Raises:
        ChatError: Not of that form.
    """
    source, at, turn = spec.rpartition("@")
    if not at or not source or not turn.strip().isdigit():
        raise ChatError(f"--fork takes ID@TURN (e.g. conv-1a2b3c@2), not {spec!r}")
    return source, int(turn)


def retrying(status: dict[str, Any]) -> str:
    """A `retrying_model` status in words: which attempt, and when the next one runs."""
    parts = ["retrying the model"]
    if status.get("attempt"):
        parts.append(f"attempt {status['attempt']}")
    if status.get("retry_in_s") is not None:
        parts.append(f"next try in {float(status['retry_in_s']):.0f} s")
    return ", ".join(parts) + f": {status.get('detail') or 'temporary error'}"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without control characters: model or user text must not be able to move
    the cursor, recolour or retitle the terminal with escape sequences."""
    return _CONTROL.sub("", text)


def _shorten(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _usage(usage: dict[str, Any]) -> str:
    tokens = usage["input_tokens"] + usage["output_tokens"]
    if usage["cost_unknown_requests"] and not usage["cost_usd"]:
        cost = "cost unknown"
    else:
        cost = f"${usage['cost_usd'] or 0:.4f}"
    return f"{usage['requests']} model calls, {tokens} tokens, {cost}"


def client_for(base_url: str, token: str) -> httpx.AsyncClient:
    """An HTTP client for the API; reads wait long enough for keep-alives."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(30.0, read=60.0),
    )


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
