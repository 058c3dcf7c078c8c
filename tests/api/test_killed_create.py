"""The API, a real uvicorn subprocess, is SIGKILLed while twenty purchases are being
created; clients retry with their `Idempotency-Key`s against a restarted API. Each
key gets one conversation (one workflow, one reservation, at most one charge),
listed for its owner; no workflow exists that its owner cannot reach."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from onward.api.idempotency import conversation_id_for
from onward.config import Settings, get_settings
from onward.examples.ledger import ledger_for
from onward.models.offline import OfflineModel
from onward.processes import free_port, wait_for_port
from tests.conftest import AgentFactory

pytestmark = pytest.mark.integration

CREATES = 20
PURCHASE = {"goal": "purchase", "message": "Buy 1 MUG-1 with card tok_visa"}
TOKEN = {"Authorization": "Bearer kill-token"}
IDLE = {"waiting_for_user", "waiting_for_approval", "ended"}


@pytest.fixture
def worker_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The ledger the purchase tools write to, in a data dir of this test's own."""
    data = tmp_path / "worker"
    monkeypatch.setenv("ONWARD_DATA_DIR", str(data))
    get_settings.cache_clear()
    yield data
    monkeypatch.undo()
    get_settings.cache_clear()


class ApiProcess:
    """`onward api` as a subprocess (uvicorn inside), against the test's dev server."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "onward", "api"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if not wait_for_port("127.0.0.1", self.port, 60, self.proc):
            raise AssertionError(f"the API did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def _api_env(
    dev_env: WorkflowEnvironment, settings: Settings, data: Path, port: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONWARD_")}
    env.update(
        ONWARD_TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        ONWARD_TASK_QUEUE=settings.task_queue,
        ONWARD_LLM_TASK_QUEUE=settings.llm_task_queue,
        ONWARD_SEARCH_ATTRIBUTES="false",
        ONWARD_DATA_DIR=str(data),
        ONWARD_API_HOST="127.0.0.1",
        ONWARD_API_PORT=str(port),
        ONWARD_API_TOKENS=json.dumps({"kill-token": "kim"}),
    )
    return env


async def _create(http: httpx.AsyncClient, key: str) -> httpx.Response:
    return await http.post(
        "/v1/conversations", json=PURCHASE, headers={**TOKEN, "Idempotency-Key": key}
    )


@pytest.mark.timeout(240)
async def test_api_killed_mid_create_then_retried_creates_one_conversation_each(
    dev_env: WorkflowEnvironment,
    dev_agent: AgentFactory,
    settings: Settings,
    worker_data_dir: Path,
    tmp_path: Path,
) -> None:
    port = free_port()
    api = ApiProcess(
        _api_env(dev_env, settings, tmp_path / "api", port), port, tmp_path / "api.log"
    )
    keys = [f"purchase-{i}" for i in range(CREATES)]
    async with dev_agent(OfflineModel()) as convs:
        api.start()
        try:
            derived = [conversation_id_for("kim", key) for key in keys]
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                assert (await http.get("/healthz")).status_code == 200  # connected to Temporal
                attempts = [asyncio.create_task(_create(http, key)) for key in keys]
                # Mid-create: killed as soon as the first of the workflows has started.
                async with asyncio.timeout(30):
                    while not any(await asyncio.gather(*(convs.exists(c) for c in derived))):
                        pass
                api.kill()
                first = await asyncio.gather(*attempts, return_exceptions=True)
            answered = {
                keys[i]: r.json()["id"]
                for i, r in enumerate(first)
                if isinstance(r, httpx.Response) and r.status_code == 201
            }
            before = [c for c in derived if await convs.exists(c)]
            # What hid conversations before: workflows started, their creates unanswered.
            assert before and len(answered) < CREATES, (answered, before)

            api.start()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                retried = [await _create(http, key) for key in keys]
                assert [r.status_code for r in retried] == [201] * CREATES, [
                    r.text for r in retried if r.status_code != 201
                ]
                ids = [r.json()["id"] for r in retried]
                # A retry is answered with the conversation its key made, before or after.
                assert ids == derived
                assert all(answered[k] == ids[keys.index(k)] for k in answered)
                deadline = time.monotonic() + 90
                for cid in ids:
                    while (await http.get(f"/v1/conversations/{cid}", headers=TOKEN)).json().get(
                        "status"
                    ) not in IDLE:
                        assert time.monotonic() < deadline, f"{cid} never settled"
                        await asyncio.sleep(0.1)
                listed = (await http.get("/v1/conversations", headers=TOKEN)).json()
            assert sorted(c["id"] for c in listed["conversations"]) == sorted(ids)

            # One workflow per key, and none that its owner cannot reach.
            started: dict[str, int] = {}
            query = f"TaskQueue = '{settings.task_queue}'"
            async for execution in convs.client.list_workflows(query):
                started[execution.id] = started.get(execution.id, 0) + 1
            assert started == dict.fromkeys(ids, 1)
        finally:
            api.stop()

    tables = ledger_for(get_settings()).dump()
    for cid in ids:
        reservations = [
            r for r in tables["reservations"] if r["idempotency_key"].startswith(f"{cid}:")
        ]
        charges = [
            r for r in tables.get("charges", []) if r["idempotency_key"].startswith(f"{cid}:")
        ]
        assert len(reservations) == 1, (cid, reservations)
        assert len(charges) <= 1, (cid, charges)
    assert len(tables["reservations"]) == CREATES
    assert len(tables.get("charges", [])) <= CREATES
