"""What both chaos targets share: the scripted users, and the processes of one run.

A run is one fresh embedded server and data dir, the worker (and for `--target api`
the API) as `onward` subprocesses, and scripted users who say the same things in the
same order in every run, so that an undisturbed and a disturbed run can be compared.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onward.agent.contracts import ConversationSnapshot
from onward.agent.messages import NoticeMessage, UserMessage
from onward.config import Settings
from onward.examples.ledger_keys import KEY_FILENAME, load_or_create_key
from onward.processes import free_port, spawn


@dataclass(frozen=True)
class Scenario:
    """A scripted user: the goal, what they say when asked, and approvals granted."""

    goal: str
    messages: tuple[str, ...]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "travel",
        ("I'd like to see events in San Francisco in March", "New York", "alex@example.com"),
    ),
    # Stock is shared by all conversations: one unit each of the two deepest SKUs keeps
    # the outcome independent of which conversation reserves first (up to ~120 runs).
    Scenario("purchase", ("Buy 1 MUG-1 with card tok_visa", "1 Main St, Springfield")),
    Scenario("purchase", ("Buy 1 TEE-M with card tok_visa", "2 Side St, Springfield")),
    Scenario("research", ("Research how workflows stay durable",)),
    Scenario("support", ("I was charged twice on my invoice, please help", "me@example.com")),
)


@dataclass
class RunResult:
    transcripts: dict[str, list[dict[str, Any]]]
    ledger: dict[str, list[dict[str, Any]]]
    ended: set[str]
    kills: int = 0
    seconds: float = 0.0


SAGA_SKU = "TEE-M"
"""Shipping fails for it in chaos runs, so every fifth conversation runs the saga."""


def chaos_settings(data: Path) -> Settings:
    """Settings of one chaos run: its own data dir and embedded server port. Both runs
    of a comparison share one ledger key (the one next to `data`'s parent), as two
    deployments of one ledger would: record ids are an HMAC under that key, so the
    undisturbed and the disturbed run name the same invoice alike."""
    data.mkdir(parents=True, exist_ok=True)
    shared = load_or_create_key(data.parent.parent / KEY_FILENAME)
    (data / KEY_FILENAME).write_bytes(shared)
    (data / KEY_FILENAME).chmod(0o600)
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data,
        embedded_port=free_port(),
        model_heartbeat_timeout=2,  # type: ignore[arg-type]
    )


def chaos_env(settings: Settings) -> dict[str, str]:
    """The environment of the processes of one chaos run (worker, API)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONWARD_")}
    env.update(
        ONWARD_DATA_DIR=str(settings.data_dir),
        ONWARD_TEMPORAL_ADDRESS=settings.target_address,
        ONWARD_MODEL="offline",
        ONWARD_MODEL_HEARTBEAT_TIMEOUT="2",
        ONWARD_PURCHASE_FAIL_SKU=SAGA_SKU,
    )
    return env


class Process:
    """An `onward <command>` subprocess under test (the worker, the API)."""

    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        self.command = command
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [sys.executable, "-m", "onward", self.command]
        self.proc = spawn(args, env=self.env, log=self.log)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def named_in_notice(text: str, notices: list[str]) -> bool:
    """Whether a notice names the message `text` (as the workflow quotes a message it
    could not process: in curly quotes, cut at 200 characters)."""
    quoted = f"“{text}”" if len(text) <= 200 else f"“{text[:199]}…”"
    return any(quoted in notice for notice in notices)


def taken(snap: ConversationSnapshot, message_id: str | None, text: str = "") -> bool:
    """Whether the conversation has taken message `message_id` (recorded it, or named
    it in a notice because it could not): until then, its status is about earlier
    input. A message is delivered by signal, so a state read right after sending may
    not show it yet."""
    if message_id is None:
        return True
    notices = [m.text for m in snap.messages if isinstance(m, NoticeMessage)]
    return any(
        isinstance(m, UserMessage) and m.id == message_id for m in snap.messages
    ) or named_in_notice(text, notices)
