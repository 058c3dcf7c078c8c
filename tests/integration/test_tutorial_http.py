"""The Temporal tutorial's travel conversation, typed as its reader types it, over the
HTTP API of `onward up` (a subprocess: embedded dev server, worker, API) with the
built-in offline model; the invoice it ends with is read from the ledger (SQLite).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from onward.config import Settings
from onward.examples.ledger import Ledger, ledger_path
from onward.processes import free_port
from tests.integration.test_up import _env, _start_up, _stop_and_check_no_orphans, _wait_healthy

pytestmark = pytest.mark.integration

Json = dict[str, Any]
RESTING = ("waiting_for_user", "ended")


@dataclass
class Turn:
    """What the agent did for one user message, read from the API."""

    replies: list[str]
    calls: list[Json]
    results: list[Json]
    detail: Json
    approvals: int

    @property
    def reply(self) -> str:
        return "\n\n".join(self.replies)


class Tutorial:
    """One conversation through the API, as a browser or `onward chat` has it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.cid = ""
        self._start = 0
        """Where the current turn's messages begin in the transcript."""

    async def detail(self) -> Json:
        response = await self.http.get(f"/v1/conversations/{self.cid}")
        assert response.status_code == 200, response.text
        return response.json()

    async def _rests_after(self, after: int, timeout_s: float = 60) -> Json:
        deadline = time.monotonic() + timeout_s
        while True:
            d = await self.detail()
            last: Json = d["messages"][-1] if d["messages"] else {}
            if d["message_count"] > after and (
                d["status"] == "waiting_for_approval"
                or (d["status"] in RESTING and last.get("kind") == "assistant")
            ):
                return d
            assert time.monotonic() < deadline, f"no rest after message {after}: {d['status']}"
            await asyncio.sleep(0.1)

    async def settle(self, after: int) -> Turn:
        """Until the agent rests after message `after`, approving what it asks for."""
        approvals = 0
        while True:
            d = await self._rests_after(after)
            if d["status"] != "waiting_for_approval":
                break
            for pending in d["pending_approvals"]:
                decided = await self.http.post(
                    f"/v1/conversations/{self.cid}/approvals/{pending['call_id']}",
                    json={"decision": "approve", "args_hash": pending["args_hash"]},
                )
                assert decided.status_code == 200, decided.text
                approvals += 1
            after = d["message_count"]
        new = d["messages"][self._start :]  # the whole transcript comes (offset 0)
        return Turn(
            replies=[m["text"] for m in new if m["kind"] == "assistant"],
            calls=[m for m in new if m["kind"] == "tool_call"],
            results=[m for m in new if m["kind"] == "tool_result"],
            detail=d,
            approvals=approvals,
        )

    async def begin(self, goal: str, text: str) -> Turn:
        created = await self.http.post("/v1/conversations", json={"goal": goal, "message": text})
        assert created.status_code == 201, created.text
        self.cid = created.json()["id"]
        return await self.settle(0)

    async def say(self, text: str) -> Turn:
        self._start = (await self.detail())["message_count"]
        sent = await self.http.post(f"/v1/conversations/{self.cid}/messages", json={"text": text})
        assert sent.status_code == 202, sent.text
        return await self.settle(self._start)


@pytest.mark.timeout(300)
async def test_the_tutorial_script_over_http_against_onward_up(tmp_path: Path) -> None:
    ports = {"temporal": free_port(), "ui": free_port(), "api": free_port()}
    data = tmp_path / "data"
    log = tmp_path / "up.log"
    proc = _start_up(_env(data, ports), log)  # no model configured: the offline model
    try:
        await asyncio.to_thread(_wait_healthy, ports["api"], proc, log)
        token = (data / "api-token").read_text().strip()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{ports['api']}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as http:
            info = (await http.get("/v1/info")).json()
            assert info["model"]["offline"] is True
            chat = Tutorial(http)

            first = await chat.begin("travel", "I'd like to see events in San Francisco in March")
            [found] = first.calls
            assert found["tool"] == "find_events"
            assert found["args"] == {"city": "San Francisco", "month": "March"}
            events = first.results[0]["content"]["events"]
            assert events, first.results
            named = [e["name"] for e in events if e["name"] in first.reply]
            assert named, first.reply  # the reply names an event it found
            event = next(e for e in events if e["name"] == named[0])

            attend = await chat.say(f"I would like to attend the {event['name']}")
            assert attend.calls == [] and event["name"] in attend.reply

            refused = await chat.say("I would like to order two double cheeseburgers.")
            assert refused.calls == []
            assert "trip" in refused.reply, refused.reply  # steered back to the trip
            assert refused.detail["status"] == "waiting_for_user"  # and still open

            flights = await chat.say("I'm sorry. I'd like to depart from Austin, TX")
            [search] = flights.calls
            assert search["tool"] == "search_flights"
            assert (search["args"]["origin"], search["args"]["destination"]) == (
                "Austin",
                "San Francisco",
            )
            listed = flights.results[0]["content"]["flights"]
            assert listed and all(f["flight_number"] in flights.reply for f in listed)

            yes = await chat.say("Yes")
            assert yes.calls == [] and "email" in yes.reply, yes.reply
            invoiced = await chat.say("ada@example.com")
            assert invoiced.approvals == 1
            assert [c["tool"] for c in invoiced.calls] == ["create_invoice"]
            assert invoiced.detail["status"] == "waiting_for_user"

            settings = Settings(_env_file=None, data_dir=data)  # type: ignore[call-arg]
            invoices = Ledger.open(ledger_path(settings)).rows("invoices")
            assert len(invoices) == 1, invoices
            assert f"/pay/{invoices[0]['id']}" in invoiced.reply
            assert invoices[0]["conversation_id"] == chat.cid
            assert event["name"] in invoiced.reply
    finally:
        if proc.poll() is None:
            await asyncio.to_thread(_stop_and_check_no_orphans, proc)
