"""`onward chaos --target worker`: SIGKILL the worker at random moments; nothing is lost.

Two runs of the same conversations (same ids, same scripted user), each on a fresh
embedded server and data dir: an undisturbed baseline, then a run whose worker is
killed M times at seeded random points of progress and restarted. Every conversation
must end with a transcript identical to the baseline's, and the ledger must hold each
side effect exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table
from temporalio.client import Client

from onward.client.connect import connect
from onward.client.conversations import Conversations
from onward.examples.chaos.compare import comparable, compare_runs, strip_times
from onward.examples.chaos.scenarios import (
    SCENARIOS,
    Process,
    RunResult,
    Scenario,
    chaos_env,
    chaos_settings,
    taken,
)
from onward.examples.ledger import ledger_tables
from onward.server import EmbeddedServer


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
