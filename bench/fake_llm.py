"""The OpenAI-compatible fake the worker subprocesses talk to, with exact accounting.

`RecordingFakeServer` logs every change of the in-flight count with its time, so
slot utilisation is an exact time-weighted mean rather than a sampled guess.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import cast

from bench.cluster import WorkerProcess, worker_env
from onward.config import Settings
from onward.testing import FakeOpenAIServer, FakeReply, FakeToolCall
from onward.testing.fake_openai import FakeResponse, Json, Responder

FINISH_TOOLS = ("finish", "finish_goal", "onward_finish")
VERDICT_TOOL = "verdict"


def _tool_names(body: Json) -> list[str]:
    tools = cast(list[Json], body.get("tools") or [])
    return [str(cast(Json, t.get("function") or {}).get("name", "")) for t in tools]


def step_responder(steps: int) -> Responder:
    """Answers like `StepScript`: guardrails pass, decisions call the goal's tool until
    `steps` tool results are in the transcript, then call `finish`."""

    def respond(body: Json) -> FakeResponse:
        names = _tool_names(body)
        if VERDICT_TOOL in names:
            return FakeReply(tool_calls=[FakeToolCall(VERDICT_TOOL, {"allowed": True})])
        messages = cast(list[Json], body.get("messages") or [])
        done = sum(1 for m in messages if m.get("role") == "tool")
        finish = next((n for n in names if n in FINISH_TOOLS), "finish")
        if done >= steps:
            return FakeReply(tool_calls=[FakeToolCall(finish, {"answer": f"{done} steps"})])
        tool = next(n for n in names if n not in FINISH_TOOLS)
        return FakeReply(tool_calls=[FakeToolCall(tool, {"n": done})])

    return respond


class RecordingFakeServer(FakeOpenAIServer):
    """`FakeOpenAIServer` that timestamps every in-flight change (perf_counter)."""

    def __init__(self, steps: int, latency_s: float) -> None:
        super().__init__(step_responder(steps), latency_s=latency_s)
        self.changes: list[tuple[float, int]] = []
        self._log_lock = threading.Lock()

    def _enter(self, body: Json) -> None:
        super()._enter(body)
        self._log()

    def _leave(self) -> None:
        super()._leave()
        self._log()

    def _log(self) -> None:
        with self._log_lock:
            self.changes.append((time.perf_counter(), self.in_flight))


def mean_in_flight(changes: list[tuple[float, int]], windows: list[tuple[float, float]]) -> float:
    """Time-weighted mean of the in-flight count over the union of `windows`."""
    total = weighted = 0.0
    for begin, end in windows:
        level = 0
        cursor = begin
        for at, count in changes:
            if at <= begin:
                level = count
                continue
            if at >= end:
                break
            weighted += level * (at - cursor)
            cursor, level = at, count
        weighted += level * (end - cursor)
        total += end - begin
    return weighted / total if total else 0.0


def fake_model_worker(
    settings: Settings, fake: FakeOpenAIServer, log: Path, **extra: str
) -> WorkerProcess:
    """A worker child whose model is the `openai:` provider pointed at `fake`."""
    env = worker_env(
        settings, ONWARD_MODEL="openai:bench-fake", ONWARD_OPENAI_BASE_URL=fake.base_url, **extra
    )
    return WorkerProcess(env, log)
