"""`onward chaos --target api`: SIGKILL the API while clients create, send and approve.

Clients talk to the API as a careful client would: every POST carries an
`Idempotency-Key` and is retried (connection refused or dropped, 5xx, 429) until it is
answered. The API process is killed at seeded random moments and restarted at once.
Two runs (undisturbed, then with the kills), each on a fresh server and data dir:

- every acknowledged input must have taken effect once: each created conversation
  exists once on the server and is listed for its owner; each acknowledged message
  id is in its transcript once (or named in a notice); each approved call ran;
- nothing may happen twice: no second workflow per create, no message recorded
  twice, no ledger row more than in the undisturbed run, and every transcript equal
  to the undisturbed one.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

from onward.agent.contracts import ConversationSnapshot
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
from onward.exceptions import ChaosFailure
from onward.processes import free_port, wait_for_port
from onward.server import EmbeddedServer

TOKEN = "chaos-token"
USER = "chaos"
API_SCENARIOS: tuple[Scenario, ...] = (
    SCENARIOS[0],  # travel
    SCENARIOS[1],  # purchase MUG-1: one fifth of 200 runs is its whole stock (40)
    SCENARIOS[3],  # research
    SCENARIOS[4],  # support
    Scenario("research", ("Research how Temporal retries a failed activity",)),
)
"""No saga SKU here: its stock (25) would make outcomes depend on order beyond ~125
conversations. Up to 200 conversations, every outcome is independent of timing."""
_RETRYABLE = {429, 500, 502, 503, 504}
_POLL_S = 0.2


@dataclass
class Tally:
    """What the API acknowledged, and how often clients had to retry."""

    created: dict[str, str] = field(default_factory=dict[str, str])
    """conversation id -> the Idempotency-Key of its create."""
    messages: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    approvals: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    ends: set[str] = field(default_factory=set[str])
    retries: int = 0


class ApiClient:
    """Retries every request until the API answers it; POSTs carry their key."""

    def __init__(self, base_url: str, tally: Tally, at_once: int = 16) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15
        )
        self.tally = tally
        self._gate = asyncio.Semaphore(at_once)

    async def call(
        self,
        method: str,
        path: str,
        *,
        ok: set[int],
        body: dict[str, Any] | None = None,
        key: str | None = None,
        deadline: float,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        delay = 0.05
        while True:
            try:
                async with self._gate:
                    response = await self.http.request(method, path, json=body, headers=headers)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code in ok:
                return response
            if response is not None and response.status_code not in _RETRYABLE:
                raise ChaosFailure(
                    f"{method} {path} (key {key}) answered {response.status_code}: "
                    f"{response.text[:300]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method} {path} was not answered in time")
            self.tally.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def aclose(self) -> None:
        await self.http.aclose()


async def _drive(api: ApiClient, key: str, scenario: Scenario, deadline: float) -> None:
    """Create the conversation and play the scripted user through the API."""
    tally = api.tally
    created = await api.call(
        "POST",
        "/v1/conversations",
        ok={201},
        body={"goal": scenario.goal, "message": scenario.messages[0]},
        key=key,
        deadline=deadline,
    )
    cid = str(created.json()["id"])
    tally.created[cid] = key
    base = f"/v1/conversations/{cid}"
    said, last_sent = 1, None
    while time.monotonic() < deadline:
        detail = await api.call("GET", base, ok={200}, deadline=deadline)
        snap = ConversationSnapshot.model_validate(detail.json())
        if snap.status == "ended":
            return
        if snap.pending_approvals:
            for pending in snap.pending_approvals:
                body = {"decision": "approve", "args_hash": pending.args_hash}
                await api.call(
                    "POST",
                    f"{base}/approvals/{pending.call_id}",
                    ok={200},
                    body=body,
                    key=f"{key}:approve:{pending.call_id}",
                    deadline=deadline,
                )
                tally.approvals.append((cid, pending.call_id))
        elif snap.status == "waiting_for_user" and taken(snap, last_sent):
            if said < len(scenario.messages):
                sent = await api.call(
                    "POST",
                    f"{base}/messages",
                    ok={202},
                    body={"text": scenario.messages[said]},
                    key=f"{key}:message:{said}",
                    deadline=deadline,
                )
                last_sent, said = str(sent.json()["id"]), said + 1
                tally.messages.append((cid, last_sent))
            else:
                await api.call("POST", f"{base}/end", ok={200}, key=f"{key}:end", deadline=deadline)
                tally.ends.add(cid)
                return
        await asyncio.sleep(_POLL_S)
    raise TimeoutError(f"{cid} did not finish in time")


@dataclass
class ApiRun:
    result: RunResult
    tally: Tally
    workflows: Counter[str]
    """Workflow id -> runs started under it, as the server lists them."""
    listed: set[str]


async def _kill_loop(api: Process, kills: int, seed: int, drivers: asyncio.Future[Any]) -> int:
    """SIGKILL the API `kills` times at seeded random moments (each once it serves
    again), restarting it at once; returns how many kills happened."""
    rng = random.Random(seed)
    port = int(api.env["ONWARD_API_PORT"])
    done = 0
    while done < kills and not drivers.done():
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, 30.0, api.proc)
        await asyncio.wait({drivers}, timeout=rng.uniform(0.05, 0.75))
        if drivers.done():
            break
        api.kill()
        done += 1
        api.start()
    return done


async def _run(n: int, kills: int, seed: int, root: Path, timeout_s: float) -> ApiRun:
    settings = chaos_settings(root / "data")
    server = EmbeddedServer(settings, headless=True)
    server.start()
    env = chaos_env(settings)
    api_port = free_port()
    api_env = {
        **env,
        "ONWARD_API_HOST": "127.0.0.1",
        "ONWARD_API_PORT": str(api_port),
        "ONWARD_API_TOKENS": f'{{"{TOKEN}": "{USER}"}}',
        # One scripted user drives every conversation: per-user limits would refuse it.
        "ONWARD_USER_WRITES_PER_MINUTE": "0",
        "ONWARD_USER_MAX_OPEN_CONVERSATIONS": "0",
    }
    worker = Process("worker", env, root / "worker.log")
    api = Process("api", api_env, root / "api.log")
    worker.start()
    api.start()
    tally = Tally()
    client = ApiClient(f"http://127.0.0.1:{api_port}", tally)
    started = time.monotonic()
    try:
        deadline = time.monotonic() + timeout_s
        drivers = asyncio.gather(
            *(
                _drive(client, f"chaos-{seed}-{i}", API_SCENARIOS[i % len(API_SCENARIOS)], deadline)
                for i in range(n)
            )
        )
        done_kills = await _kill_loop(api, kills, seed, drivers)
        try:
            await drivers
        except (TimeoutError, ChaosFailure) as exc:
            tail = api.log.read_text(errors="replace")[-3000:] if api.log.exists() else ""
            raise type(exc)(f"{exc}; API log tail:\n{tail}") from exc
        seconds = time.monotonic() - started
        listing = await client.call(
            "GET", "/v1/conversations?limit=500", ok={200}, deadline=deadline
        )
        listed = {str(c["id"]) for c in listing.json()["conversations"]}
        temporal = await connect(settings)
        convs = Conversations(temporal, settings)
        workflows: Counter[str] = Counter()
        async for execution in temporal.list_workflows("WorkflowType = 'ConversationWorkflow'"):
            workflows[execution.id] += 1
        transcripts: dict[str, list[dict[str, Any]]] = {}
        snaps: dict[str, ConversationSnapshot] = {}
        for cid in tally.created:
            snaps[cid] = await convs.snapshot(cid)
            transcripts[cid] = comparable(snaps[cid].messages)
    finally:
        await client.aclose()
        api.stop()
        worker.stop()
        server.stop()
    result = RunResult(
        transcripts=transcripts,
        ledger={t: [strip_times(r) for r in rows] for t, rows in ledger_tables(settings).items()},
        ended={cid for cid, snap in snaps.items() if snap.status == "ended"},
        kills=done_kills,
        seconds=seconds,
    )
    return ApiRun(result, tally, workflows, listed)


@dataclass
class ApiReport:
    conversations: int
    kills_requested: int
    kills: int
    acknowledged: int
    """Creates, messages, approvals and ends the API acknowledged."""
    retries: int
    lost_inputs: int
    lost_effects: int
    """Ledger rows of the undisturbed run missing from the disturbed one."""
    doubled_effects: int
    identical: int
    baseline_seconds: float
    chaos_seconds: float
    differences: list[str] = field(default_factory=list[str])

    @property
    def ok(self) -> bool:
        return (
            self.kills == self.kills_requested
            and self.lost_inputs == 0
            and self.lost_effects == 0
            and self.doubled_effects == 0
            and self.identical == self.conversations
        )


def _messages_by_id(messages: list[dict[str, Any]]) -> Counter[str]:
    return Counter(
        str(m.get("id")) for m in messages if m.get("kind") == "user" and m.get("id") is not None
    )


def check(run: ApiRun, n: int) -> tuple[int, int, list[str]]:
    """(lost acknowledged inputs, doubled effects, what was wrong) in one run."""
    problems: list[str] = []
    lost = doubled = 0
    result, tally = run.result, run.tally
    for cid in tally.created:
        if run.workflows[cid] == 0:
            lost += 1
            problems.append(f"created {cid} has no workflow")
        if cid not in run.listed:
            lost += 1
            problems.append(f"created {cid} is not listed for its owner")
    strays = [w for w in run.workflows if w not in tally.created]
    if strays or len(tally.created) != n:
        doubled += len(strays)
        problems.append(f"{len(tally.created)} creates acknowledged, stray workflows: {strays}")
    for cid, message_id in tally.messages:
        transcript = result.transcripts.get(cid, [])
        count = _messages_by_id(transcript)[message_id]
        named = any(
            m.get("kind") == "notice" and message_id in str(m.get("text")) for m in transcript
        )
        if count == 0 and not named:
            lost += 1
            problems.append(f"acknowledged message {message_id} of {cid} was never taken")
        elif count > 1:
            doubled += count - 1
            problems.append(f"message {message_id} of {cid} was recorded {count} times")
    for cid, call_id in set(tally.approvals):
        results = [
            m
            for m in result.transcripts.get(cid, [])
            if m.get("kind") == "tool_result" and m.get("call_id") == call_id
        ]
        if not results:
            lost += 1
            problems.append(f"approved call {call_id} of {cid} has no result")
    return lost, doubled, problems


async def run_api_chaos(
    conversations: int, kills: int, seed: int, timeout_s: float = 900.0
) -> ApiReport:
    """Baseline run, then the same clients with `kills` API SIGKILLs."""
    with tempfile.TemporaryDirectory(prefix="onward-chaos-api-") as tmp:
        root = Path(tmp)
        (root / "baseline").mkdir()
        (root / "chaos").mkdir()
        baseline = await _run(conversations, 0, seed, root / "baseline", timeout_s)
        chaos = await _run(conversations, kills, seed, root / "chaos", timeout_s)
    lost, doubled, problems = check(chaos, conversations)
    base_lost, base_doubled, base_problems = check(baseline, conversations)
    found = compare_runs(baseline.result, chaos.result)
    differences = [*(f"undisturbed run: {p}" for p in base_problems), *problems, *found.differences]
    if chaos.result.kills < kills:
        differences.append(f"only {chaos.result.kills} of {kills} kills happened")
    tally = chaos.tally
    return ApiReport(
        conversations=conversations,
        kills_requested=kills,
        kills=chaos.result.kills,
        acknowledged=len(tally.created)
        + len(tally.messages)
        + len(set(tally.approvals))
        + len(tally.ends),
        retries=tally.retries,
        lost_inputs=lost + base_lost,
        lost_effects=found.lost_effects,
        doubled_effects=doubled + base_doubled + found.duplicated_effects,
        identical=found.identical,
        baseline_seconds=baseline.result.seconds,
        chaos_seconds=chaos.result.seconds,
        differences=differences,
    )


def api_report_table(report: ApiReport) -> Table:
    """The API-kill run's figures as a table for the terminal."""
    table = Table(title="onward chaos (API kills)")
    columns = {
        "conversations": str(report.conversations),
        "API kills": f"{report.kills}/{report.kills_requested}",
        "acknowledged inputs": str(report.acknowledged),
        "client retries": str(report.retries),
        "lost inputs": str(report.lost_inputs),
        "lost effects": str(report.lost_effects),
        "doubled": str(report.doubled_effects),
        "identical": str(report.identical),
        "baseline s": f"{report.baseline_seconds:.1f}",
        "chaos s": f"{report.chaos_seconds:.1f}",
    }
    for name in columns:
        table.add_column(name, justify="right")
    table.add_row(*columns.values())
    return table
