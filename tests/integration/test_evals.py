"""Evals on the real dev server: a worker SIGKILLed mid-eval loses nothing (the eval
completes with the report of an undisturbed run, no tool runs), and the CLI exports
and replays (`onward eval run --local` is what `make eval` runs)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from onward.agent.eval_contracts import Candidate, EvalReport
from onward.cli.main import app
from onward.client.conversations import Conversations
from onward.config import Settings, get_settings
from onward.evals.export import export_conversations
from onward.evals.format import load_eval_set
from onward.evals.running import run_eval, start_eval, wait_for_report
from onward.processes import spawn, stop
from onward.testing import ScriptedModel
from tests.conftest import AgentFactory, catalog_for
from tests.integration import eval_worker

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 2
TIMING = {"conversation_id", "candidate_model_s", "candidate_elapsed_s"}


def worker_env(
    settings: Settings, target: str, directory: Path, stop_in: str = ""
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONWARD_")}
    env.update(
        ONWARD_TEMPORAL_ADDRESS=target,
        ONWARD_DATA_DIR=str(settings.data_dir),
        ONWARD_TASK_QUEUE=settings.task_queue,
        ONWARD_LLM_TASK_QUEUE=settings.llm_task_queue,
        ONWARD_MODEL_HEARTBEAT_TIMEOUT=str(HEARTBEAT_S),
        ONWARD_SEARCH_ATTRIBUTES="false",
        EVAL_DIR=str(directory),
        EVAL_STOP_IN=stop_in,
    )
    return env


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return spawn(
        [sys.executable, "-m", "tests.integration.eval_worker"], env=env, log=log, cwd=REPO
    )


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def wait_for_file(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll (with a deadline) for the worker's marker file."""
    for _ in range(1200):
        if await asyncio.to_thread(path.exists):
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker exited: {await asyncio.to_thread(tail, log)}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached the stop: {await asyncio.to_thread(tail, log)}")


def effects(directory: Path) -> list[tuple[str, int, int]]:
    path = directory / eval_worker.EFFECTS
    if not path.exists():
        return []
    with closing(sqlite3.connect(path)) as db:
        return sorted(db.execute("SELECT key, a, b FROM runs").fetchall())


async def record(convs: Conversations, first: int) -> str:
    said = [str(first), str(first + 1), str(first + 2), "thanks, that's all"]
    cid = await convs.start(eval_worker.EVAL_MATH.name, first_message=said[0])
    await convs.wait_for(cid, lambda s: s.turns == 1 and s.status == "waiting_for_user", 60)
    for turn, text in enumerate(said[1:], 2):
        await convs.send(cid, text)
        await convs.wait_for(
            cid, lambda s, t=turn: s.turns == t and s.status == "waiting_for_user", 60
        )
    await convs.end(cid)
    await convs.result(cid)
    return cid


def comparable(report: EvalReport) -> dict[str, Any]:
    """The report without what differs between two runs by nature: ids and timings."""
    return {
        "cases": [c.model_dump(exclude=TIMING) for c in report.cases],
        "totals": report.totals.model_dump(exclude={"candidate_model_s", "candidate_elapsed_s"}),
    }


async def test_a_worker_killed_mid_eval_loses_nothing(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"model_heartbeat_timeout": timedelta(seconds=HEARTBEAT_S)}
    )
    client = dev_env.client
    target = client.service_client.config.target_host
    env = worker_env(settings, target, tmp_path)
    procs: list[subprocess.Popen[bytes]] = [start(env, tmp_path / "worker-1.log")]
    try:
        convs = Conversations(client, settings, catalog_for(settings, [eval_worker.EVAL_MATH]))
        ids = [await record(convs, first) for first in (1, 10, 20)]
        eval_set = await export_conversations(client, settings, ids)
        recorded_effects = effects(tmp_path)
        assert len(recorded_effects) == 9  # three tool calls in each recording
        undisturbed = await run_eval(client, settings, eval_set, Candidate(), concurrency=2)

        stop(procs[0])
        procs.append(start({**env, "EVAL_STOP_IN": "~case2"}, tmp_path / "worker-2.log"))
        run_id = await start_eval(client, settings, eval_set, Candidate(), concurrency=2)
        await wait_for_file(tmp_path / "reached", procs[1], tmp_path / "worker-2.log")
        # Dead inside case 2's model call, with the eval and its children mid-flight.
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait()
        procs.append(start(env, tmp_path / "worker-3.log"))
        report = await asyncio.wait_for(wait_for_report(client, run_id), timeout=90)
    finally:
        for proc in procs:
            stop(proc)
    assert await asyncio.to_thread((tmp_path / "reached").read_text) == f"{run_id}~case2"
    assert comparable(report) == comparable(undisturbed)
    assert report.totals.cases == 3 and report.totals.decisions_differ == 0
    assert report.totals.side_effects == 0 and report.totals.errors == 0
    assert [len(c.turns) for c in report.cases] == [4, 4, 4]
    # Neither eval ran a tool: the log holds the recordings' calls only.
    assert effects(tmp_path) == recorded_effects


def cli(args: list[str], env: dict[str, str]) -> Any:
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    finally:
        get_settings.cache_clear()


def test_onward_eval_run_local_replays_the_bundled_set_with_no_divergence(
    tmp_path: Path,
) -> None:
    out = tmp_path / "report"
    result = cli(
        [
            "eval",
            "run",
            str(REPO / "evals" / "bundled.json"),
            "--local",
            "--fail-on-divergence",
            "--json",
            str(out / "report.json"),
            "--html",
            str(out / "report.html"),
        ],
        env={"ONWARD_DATA_DIR": str(tmp_path / "unused"), "COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    bundled = load_eval_set(REPO / "evals" / "bundled.json")
    assert [c["case_id"] for c in report["cases"]] == [c.id for c in bundled.cases]
    totals = report["totals"]
    assert (totals["diverged_cases"], totals["side_effects"], totals["errors"]) == (0, 0, 0)
    assert totals["candidate_reached"] == totals["recorded_reached"] == len(bundled.cases)
    assert totals["candidate_usage"] == totals["recorded_usage"]
    assert "total (5)" in result.output and "0 of 5 conversations diverged" in result.output
    assert (out / "report.html").read_text().startswith("<!doctype html>")


async def test_onward_eval_export_writes_a_set_that_replays(
    dev_agent: AgentFactory,
    dev_env: WorkflowEnvironment,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EVAL_DIR", str(tmp_path))  # where the in-process tool logs
    env = {
        "ONWARD_TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "ONWARD_DATA_DIR": str(settings.data_dir),
        "ONWARD_TASK_QUEUE": settings.task_queue,
        "ONWARD_LLM_TASK_QUEUE": settings.llm_task_queue,
        "EVAL_DIR": str(tmp_path),
    }
    path = tmp_path / "set.json"
    async with dev_agent(ScriptedModel(eval_worker.math_script), [eval_worker.EVAL_MATH]) as convs:
        cid = await record(convs, 5)
        result = await asyncio.to_thread(cli, ["eval", "export", cid, "--out", str(path)], env)
        assert result.exit_code == 0, result.output
        exported = load_eval_set(path)
        [case] = exported.cases
        assert case.id == cid and case.goal.name == eval_worker.EVAL_MATH.name
        assert [m.text for m in case.transcript if m.kind == "user"] == [
            "5",
            "6",
            "7",
            "thanks, that's all",
        ]
        report = await run_eval(convs.client, settings, exported, Candidate())
        missing = await asyncio.to_thread(cli, ["eval", "export", "conv-nope", "-o", "x"], env)
    assert report.totals.decisions_differ == 0 and report.totals.side_effects == 0
    assert missing.exit_code == 1 and "no conversation `conv-nope`" in missing.output
