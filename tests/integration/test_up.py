"""`onward up` end to end: real dev server from the wheel, worker, API, clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from onward.agent.contracts import WORKFLOW_NAME, StartConversation
from onward.agent.specs import GoalSpec
from onward.client.connect import connect
from onward.config import Settings
from onward.processes import free_port, port_open

pytestmark = pytest.mark.integration

EMPTY_GOAL = GoalSpec(name="idle", description="Waits.", instructions="Wait.", tools=[])


def _env(data_dir: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONWARD_")}
    env.update(
        ONWARD_DATA_DIR=str(data_dir),
        ONWARD_EMBEDDED_PORT=str(ports["temporal"]),
        ONWARD_EMBEDDED_UI_PORT=str(ports["ui"]),
        ONWARD_API_PORT=str(ports["api"]),
    )
    return env


def _start_up(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "onward", "up"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _wait_healthy(api_port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"onward up exited early:\n{log.read_text()[-3000:]}"
        try:
            r = httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2)
            if r.status_code == 200:
                assert r.json()["temporal"]["reachable"] is True
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"/healthz was not 200 within 60 s:\n{log.read_text()[-3000:]}")


def _stop_and_check_no_orphans(proc: subprocess.Popen[bytes]) -> None:
    family = psutil.Process(proc.pid).children(recursive=True)
    names = {p.name() for p in family}
    assert "temporal" in names, names
    assert len(family) >= 3  # server, worker, api
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    gone, alive = psutil.wait_procs(family, timeout=15)
    assert not alive, f"left running after SIGINT: {[(p.pid, p.name()) for p in alive]}"
    assert len(gone) == len(family)


async def test_up_serves_health_stops_cleanly_and_keeps_state(tmp_path: Path) -> None:
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    env = _env(tmp_path / "data", ports)
    log = tmp_path / "up.log"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        embedded_port=ports["temporal"],
    )

    proc = _start_up(env, log)
    try:
        _wait_healthy(ports["api"], proc, log)
        assert port_open("127.0.0.1", ports["ui"]), "the Temporal Web UI port does not answer"
        client = await connect(settings)
        handle = await client.start_workflow(
            WORKFLOW_NAME,
            StartConversation(conversation_id="survivor", goal=EMPTY_GOAL),
            id="survivor",
            task_queue=settings.task_queue,
        )
        run_id = handle.result_run_id
    finally:
        if proc.poll() is None:
            _stop_and_check_no_orphans(proc)

    assert (tmp_path / "data" / "temporal.sqlite").exists()

    proc = _start_up(env, log)
    try:
        _wait_healthy(ports["api"], proc, log)
        client = await connect(settings)
        desc = await client.get_workflow_handle("survivor").describe()
        assert desc.run_id == run_id
        assert desc.status is not None and desc.status.name == "RUNNING"
        events = [e async for e in client.get_workflow_handle("survivor").fetch_history_events()]
        assert events[0].HasField("workflow_execution_started_event_attributes")
    finally:
        if proc.poll() is None:
            _stop_and_check_no_orphans(proc)


def _temporal_pid(proc: subprocess.Popen[bytes]) -> int | None:
    for child in psutil.Process(proc.pid).children(recursive=True):
        if child.name() == "temporal" and child.status() != psutil.STATUS_ZOMBIE:
            return child.pid
    return None


def _api_call(
    api_port: int, token: str, method: str, path: str, body: dict[str, str] | None = None
) -> httpx.Response:
    """Retry while the API cannot reach Temporal (503) or is refused a connection."""
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.request(
                method,
                f"http://127.0.0.1:{api_port}{path}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=20,
            )
            if response.status_code != 503:
                return response
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{method} {path} kept failing"
        time.sleep(0.2)


def _wait_status(api_port: int, token: str, cid: str, turns: int) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        detail = _api_call(api_port, token, "GET", f"/v1/conversations/{cid}").json()
        resting = ("waiting_for_user", "waiting_for_approval", "ended")
        if detail.get("status") in resting and detail["turns"] >= turns:
            return detail
        assert time.monotonic() < deadline, f"{cid} did not reach turn {turns}: {detail}"
        time.sleep(0.2)


@pytest.mark.timeout(300)
def test_up_restarts_a_killed_temporal_server_and_conversations_continue(
    tmp_path: Path,
) -> None:
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    data = tmp_path / "data"
    log = tmp_path / "up.log"
    proc = _start_up(_env(data, ports), log)
    try:
        _wait_healthy(ports["api"], proc, log)
        token = (data / "api-token").read_text().strip()
        created = _api_call(
            ports["api"],
            token,
            "POST",
            "/v1/conversations",
            {"goal": "support", "message": "I was charged twice on my invoice, please help"},
        )
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        _wait_status(ports["api"], token, cid, turns=1)

        killed = _temporal_pid(proc)
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 90
        while (pid := _temporal_pid(proc)) in (None, killed) or not port_open(
            "127.0.0.1", ports["temporal"]
        ):
            assert proc.poll() is None, f"onward up stopped:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no new server:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        assert pid != killed
        _wait_healthy(ports["api"], proc, log)

        # The same conversation, on the same database, takes the next message.
        sent = _api_call(
            ports["api"],
            token,
            "POST",
            f"/v1/conversations/{cid}/messages",
            {"text": "me@example.com"},
        )
        assert sent.status_code == 202, sent.text
        detail = _wait_status(ports["api"], token, cid, turns=2)
        ids = [m.get("id") for m in detail["messages"] if m["kind"] == "user"]
        assert sent.json()["id"] in ids
        assert "restarting" in log.read_text()
    finally:
        if proc.poll() is None:
            _stop_and_check_no_orphans(proc)
