"""`onward chaos`: SIGKILL the worker at random moments and prove nothing is lost.

Two runs of the same conversations (same ids, same scripted user), each on a fresh
embedded server and data dir: an undisturbed baseline, then a run whose worker is
killed M times at seeded random points of progress and restarted. Every conversation
must end with a transcript identical to the baseline's, and the ledger must hold each
side effect exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table
from temporalio.client import Client

from onward.agent.contracts import ConversationSnapshot
from onward.agent.messages import Message, NoticeMessage, UserMessage
from onward.client.connect import connect
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.examples.ledger import ledger_tables
from onward.examples.ledger_keys import KEY_FILENAME, load_or_create_key
from onward.processes import free_port, spawn
from onward.server import EmbeddedServer


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


@dataclass
class Report:
    conversations: int
    kills_requested: int
    kills: int
    completed: int
    identical: int
    duplicated_effects: int
    lost_effects: int
    baseline_seconds: float
    chaos_seconds: float
    differences: list[str] = field(default_factory=list[str])

    @property
    def ok(self) -> bool:
        return (
            self.kills == self.kills_requested
            and self.completed == self.conversations
            and self.identical == self.conversations
            and self.duplicated_effects == 0
            and self.lost_effects == 0
        )


SAGA_SKU = "TEE-M"
"""Shipping fails for it in chaos runs, so every fifth conversation runs the saga."""
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")


def strip_times(value: Any) -> Any:
    """Drop wall-clock fields (`*_at`): they differ between runs by nature, not by fault."""
    if isinstance(value, dict):
        return {
            k: strip_times(v)
            for k, v in value.items()  # pyright: ignore[reportUnknownVariableType]
            if not (isinstance(k, str) and k.endswith("_at"))
        }
    if isinstance(value, list):
        return [strip_times(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, str):
        return _TIMESTAMP.sub("<time>", value)
    return value


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


def comparable(messages: list[Message]) -> list[dict[str, Any]]:
    """A transcript as JSON without what differs between two runs by nature: wall-clock
    times, the ids the workflow gives messages sent without one (`m-…`, random per run,
    e.g. the first message of a create), and the store references of tool results (a
    hash of content that holds times; the content itself is compared)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        data = strip_times(message.model_dump(mode="json"))
        if isinstance(message, UserMessage) and (message.id or "").startswith("m-"):
            data["id"] = "<chosen by the workflow>"
        data.pop("content_ref", None)
        out.append(data)
    return out


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


async def _drive(convs: Conversations, cid: str, scenario: Scenario, deadline: float) -> None:
    """Play the scripted user until the conversation ends."""
    said = 1  # the first message goes in with the start
    last_sent: str | None = None
    last_text = ""
    while time.monotonic() < deadline:
        try:
            snap = await convs.snapshot(cid, rpc_timeout_s=2)
        except Exception:  # no live worker right now: queries fail until one is back
            await asyncio.sleep(0.2)
            continue
        if snap.status == "ended":
            return
        try:
            if snap.pending_approvals:
                for approval in snap.pending_approvals:
                    await convs.decide(cid, approval.call_id, "approve", approval.args_hash)
            elif snap.status == "waiting_for_user" and taken(snap, last_sent, last_text):
                if said < len(scenario.messages):
                    # A retry after a failed send reuses the id: the workflow takes it once.
                    message_id = f"{cid}-m{said}"
                    await convs.send(cid, scenario.messages[said], message_id=message_id)
                    last_sent, last_text = message_id, scenario.messages[said]
                    said += 1
                else:
                    await convs.end(cid, "script finished")
                    return
        except Exception:  # retried on the next poll; updates are validated anyway
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{cid} did not finish in time")


async def _progress(client: Client, ids: dict[str, Scenario]) -> int:
    """History events so far across all conversations. Read from the server, so it
    answers while no worker is alive (a query would wait for one)."""
    total = 0
    for cid in ids:
        with contextlib.suppress(Exception):
            total += (await client.get_workflow_handle(cid).describe()).history_length
    return total


async def _run(n: int, kills: int, seed: int, root: Path, timeout_s: float) -> RunResult:
    settings = chaos_settings(root / "data")
    server = EmbeddedServer(settings, headless=True)
    server.start()
    env = chaos_env(settings)
    worker = Process("worker", env, root / "worker.log")
    worker.start()
    started = time.monotonic()
    done_kills = 0
    try:
        client = await connect(settings)
        convs = Conversations(client, settings)
        ids: dict[str, Scenario] = {}
        for i in range(n):
            scenario = SCENARIOS[i % len(SCENARIOS)]
            cid = f"chaos-{seed}-{i}"
            await convs.start(
                scenario.goal, first_message=scenario.messages[0], conversation_id=cid
            )
            ids[cid] = scenario
        deadline = time.monotonic() + timeout_s
        drivers = asyncio.gather(*(_drive(convs, c, s, deadline) for c, s in ids.items()))
        rng = random.Random(seed)
        progress_at_kill = 0
        while not drivers.done():
            if done_kills < kills:
                progress = await _progress(client, ids)
                # Each kill lands on a worker that has made progress since the last one,
                # after a seeded random delay: mid-model-call, mid-tool or mid-task.
                if progress > progress_at_kill:
                    await asyncio.wait({drivers}, timeout=rng.uniform(0.0, 0.4))
                    if drivers.done():
                        break
                    worker.kill()
                    done_kills += 1
                    progress_at_kill = await _progress(client, ids)
                    worker.start()
            await asyncio.wait({drivers}, timeout=0.05)
        try:
            await drivers
        except TimeoutError as exc:
            tail = worker.log.read_text(errors="replace")[-3000:] if worker.log.exists() else ""
            raise TimeoutError(f"{exc}; worker log tail:\n{tail}") from exc
        transcripts: dict[str, list[dict[str, Any]]] = {}
        ended: set[str] = set()
        for cid in ids:
            snap = await convs.snapshot(cid)
            transcripts[cid] = comparable(snap.messages)
            if snap.status == "ended":
                ended.add(cid)
        seconds = time.monotonic() - started
    finally:
        worker.stop()
        server.stop()
    return RunResult(
        transcripts=transcripts,
        ledger={t: [strip_times(r) for r in rows] for t, rows in ledger_tables(settings).items()},
        ended=ended,
        kills=done_kills,
        seconds=seconds,
    )


def row_key(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


@dataclass
class Comparison:
    """How a disturbed run's end state differs from the undisturbed one's."""

    identical: int
    duplicated_effects: int
    lost_effects: int
    differences: list[str]


def compare_runs(baseline: RunResult, chaos: RunResult) -> Comparison:
    """Transcripts (per conversation) and ledger rows (as a multiset) of both runs."""
    differences: list[str] = []
    identical = 0
    for cid, expected in baseline.transcripts.items():
        got = chaos.transcripts.get(cid, [])
        if got == expected:
            identical += 1
            continue
        pairs = zip(expected, got, strict=False)
        at = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(expected), len(got)))
        differences.append(
            f"transcript of {cid} differs from the undisturbed run at message {at}: "
            + _difference(expected[at : at + 1], got[at : at + 1])
        )
    duplicated = lost = 0
    for table in sorted(set(baseline.ledger) | set(chaos.ledger)):
        want = Counter(row_key(r) for r in baseline.ledger.get(table, []))
        got = Counter(row_key(r) for r in chaos.ledger.get(table, []))
        for key in want | got:
            if got[key] > want[key]:
                duplicated += got[key] - want[key]
                differences.append(f"{table}: extra row {key}")
            elif got[key] < want[key]:
                lost += want[key] - got[key]
                differences.append(f"{table}: missing row {key}")
    return Comparison(identical, duplicated, lost, differences)


def _difference(expected: list[dict[str, Any]], got: list[dict[str, Any]]) -> str:
    """The fields of one message that differ (or the messages, when one is missing)."""
    if not expected or not got:
        return f"expected {json.dumps(expected)[:300]}, got {json.dumps(got)[:300]}"
    want, have = expected[0], got[0]
    fields = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
    return "; ".join(
        f"{k}: expected {json.dumps(want.get(k))[:200]}, got {json.dumps(have.get(k))[:200]}"
        for k in fields
    )


def compare(baseline: RunResult, chaos: RunResult, kills_requested: int) -> Report:
    found = compare_runs(baseline, chaos)
    differences = found.differences
    if chaos.kills < kills_requested:
        differences.append(
            f"only {chaos.kills} of {kills_requested} kills happened before the run ended; "
            "use more conversations"
        )
    return Report(
        conversations=len(baseline.transcripts),
        kills_requested=kills_requested,
        kills=chaos.kills,
        completed=len(chaos.ended),
        identical=found.identical,
        duplicated_effects=found.duplicated_effects,
        lost_effects=found.lost_effects,
        baseline_seconds=baseline.seconds,
        chaos_seconds=chaos.seconds,
        differences=differences,
    )


async def run_chaos(conversations: int, kills: int, seed: int, timeout_s: float = 600.0) -> Report:
    """Baseline run, then the same conversations with `kills` worker SIGKILLs."""
    with tempfile.TemporaryDirectory(prefix="onward-chaos-") as tmp:
        root = Path(tmp)
        (root / "baseline").mkdir()
        (root / "chaos").mkdir()
        baseline = await _run(conversations, 0, seed, root / "baseline", timeout_s)
        chaos = await _run(conversations, kills, seed, root / "chaos", timeout_s)
        return compare(baseline, chaos, kills)


def report_table(report: Report) -> Table:
    """The chaos run's figures as a table for the terminal."""
    table = Table(title="onward chaos")
    for column in (
        "conversations",
        "kills",
        "completed",
        "identical",
        "duplicated effects",
        "lost effects",
        "baseline s",
        "chaos s",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        str(report.conversations),
        f"{report.kills}/{report.kills_requested}",
        str(report.completed),
        str(report.identical),
        str(report.duplicated_effects),
        str(report.lost_effects),
        f"{report.baseline_seconds:.1f}",
        f"{report.chaos_seconds:.1f}",
    )
    return table
