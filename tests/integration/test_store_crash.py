"""A worker SIGKILLed inside a model call, after the transcript store was written and
before or after the model answered: nothing is lost, no side effect is repeated, and
the stored transcript is the one an uncrashed run stores (real dev server)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from onward.agent.contracts import TranscriptRef
from onward.agent.messages import AssistantMessage, ToolCallMessage, ToolResultMessage, UserMessage
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.processes import spawn, stop
from onward.store.transcripts import TranscriptStore, transcript_store
from onward.store.transcripts_sqlite import SqliteTranscriptStore
from tests.conftest import catalog_for
from tests.integration import crash_worker

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 2


def worker_env(settings: Settings, target: str, crash_dir: Path, at: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONWARD_")}
    env.update(
        ONWARD_TEMPORAL_ADDRESS=target,
        ONWARD_DATA_DIR=str(settings.data_dir),
        ONWARD_TASK_QUEUE=settings.task_queue,
        ONWARD_LLM_TASK_QUEUE=settings.llm_task_queue,
        ONWARD_MODEL_HEARTBEAT_TIMEOUT=str(HEARTBEAT_S),
        ONWARD_SEARCH_ATTRIBUTES="false",
        CRASH_AT=at,
        CRASH_DIR=str(crash_dir),
    )
    return env


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return spawn(
        [sys.executable, "-m", "tests.integration.crash_worker"], env=env, log=log, cwd=REPO
    )


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def wait_for_file(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll (with a deadline) for the worker's marker file."""
    for _ in range(600):
        if await asyncio.to_thread(path.exists):
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker exited: {await asyncio.to_thread(tail, log)}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached the crash point: {await asyncio.to_thread(tail, log)}")


def tool_runs(crash_dir: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(crash_dir / crash_worker.EFFECTS)) as db:
        return db.execute("SELECT key, text FROM runs").fetchall()


@pytest.mark.parametrize("at", ["before_model", "after_model"])
async def test_a_worker_killed_inside_a_model_call_loses_and_repeats_nothing(
    at: str, dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"model_heartbeat_timeout": timedelta(seconds=HEARTBEAT_S)}
    )
    target = dev_env.client.service_client.config.target_host
    crash_dir = tmp_path / "crash"
    crash_dir.mkdir()
    env = worker_env(settings, target, crash_dir, at)
    first = start(env, tmp_path / "worker-1.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        convs = Conversations(dev_env.client, settings, catalog_for(settings, [crash_worker.NOTES]))
        cid = await convs.start("test-notes", first_message="buy milk")
        await wait_for_file(crash_dir / "reached", first, tmp_path / "worker-1.log")
        # Stopped inside the first model call: the activity has stored the transcript.
        store = transcript_store(settings)
        stored = [m for m in await store.read(await _head(store, cid)) if m.kind == "user"]
        assert [m.text for m in stored] == ["buy milk"]
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = start({**env, "CRASH_AT": ""}, tmp_path / "worker-2.log")
        snap = await convs.wait_for(
            cid, lambda s: s.answer is not None and s.status == "waiting_for_user", timeout_s=60
        )
    finally:
        for proc in (first, second):
            if proc is not None:
                stop(proc)
    assert snap.answer == "Done: saved: buy milk"
    assert [type(m) for m in snap.messages] == [
        UserMessage,
        ToolCallMessage,
        ToolResultMessage,
        AssistantMessage,
    ]
    # The tool ran once; the store holds each message once, as an uncrashed run would.
    assert tool_runs(crash_dir) == [(f"{cid}:save-1", "buy milk")]
    assert snap.transcript is not None and snap.transcript.count == 3
    stored_all = await transcript_store(settings).read(snap.transcript)
    assert [m.kind for m in stored_all] == ["user", "tool_call", "tool_result"]


async def _head(store: TranscriptStore, cid: str) -> TranscriptRef:
    """The newest stored transcript of `cid` (read straight from the SQLite store)."""
    assert isinstance(store, SqliteTranscriptStore)
    with closing(sqlite3.connect(store.path)) as db:
        row = db.execute(
            "SELECT id, count FROM segments WHERE conversation_id = ? ORDER BY count DESC",
            (cid,),
        ).fetchone()
    assert row is not None, "nothing stored before the model was called"
    return TranscriptRef(conversation_id=cid, id=row[0], count=row[1])
