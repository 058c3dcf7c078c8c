"""Event streams do not scale Temporal updates with clients: one reader per
conversation per API process, fanned out; a per-user cap on open streams."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import cast

import httpx
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from onward.agent.decisions import AskUser, CallTools, ToolCall
from onward.api.deps import ApiState
from onward.api.errors import install_error_handlers
from onward.client.conversations import Conversations
from onward.client.sse import SseDecoder, SseEvent
from onward.exceptions import ConversationBusy
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, ApiFactory, api_settings, serve
from tests.conftest import make_settings

STREAMS = 12


class OpenStream:
    """One SSE client, read in the background."""

    def __init__(self, http: httpx.AsyncClient, cid: str, after: int = -1) -> None:
        self.events: list[SseEvent] = []
        self.status: int | None = None
        self._first = asyncio.Event()
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read(http, cid, after))

    async def _read(self, http: httpx.AsyncClient, cid: str, after: int) -> None:
        path = f"/v1/conversations/{cid}/events"
        async with http.stream("GET", path, headers=ALICE, params={"after": after}) as response:
            self.status = response.status_code
            self._first.set()
            decoder = SseDecoder()
            async for line in response.aiter_lines():
                event = decoder.feed(line)
                if event is not None:
                    self.events.append(event)
                    self._changed.set()

    async def started(self) -> None:
        async with asyncio.timeout(20):
            await self._first.wait()

    async def until(self, text: str, timeout_s: float = 20) -> None:
        """Until an event whose data contains `text` has arrived."""
        async with asyncio.timeout(timeout_s):
            while not any(text in e.data for e in self.events):
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._task


@contextlib.asynccontextmanager
async def streams(
    http: httpx.AsyncClient, cid: str, count: int, after: int = -1
) -> AsyncGenerator[list[OpenStream]]:
    opened = [OpenStream(http, cid, after) for _ in range(count)]
    try:
        yield opened
    finally:
        for stream in opened:
            await stream.close()


def _transfer(call_id: str) -> CallTools:
    return CallTools(
        calls=[ToolCall(call_id=call_id, tool="transfer", args={"amount": 1, "to": "bob"})]
    )


async def test_twelve_open_streams_leave_room_for_approvals_and_messages(api: ApiFactory) -> None:
    model = ScriptedModel([_transfer("t1"), AskUser(text="Sent. More?"), AskUser(text="Noted.")])
    async with (
        api(model) as a,
        serve(a.app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        created = await http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "pay"}, headers=ALICE
        )
        cid = created.json()["id"]
        snap = await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_approval")
        state = a.app.state.api
        assert isinstance(state, ApiState)
        async with streams(http, cid, STREAMS) as opened:
            for stream in opened:
                await stream.until("approval_requested")
            assert all(s.status == 200 for s in opened)
            # Twelve clients, one reader of the conversation's stream.
            assert state.hub.pollers() == 1

            began = time.monotonic()
            decided = await http.post(
                f"/v1/conversations/{cid}/approvals/t1",
                json={"decision": "approve", "args_hash": snap.pending_approvals[0].args_hash},
                headers=ALICE,
            )
            assert decided.status_code == 200, decided.text
            assert time.monotonic() - began < 1.0
            for stream in opened:
                await stream.until("Sent. More?")

            began = time.monotonic()
            sent = await http.post(
                f"/v1/conversations/{cid}/messages", json={"text": "thanks"}, headers=ALICE
            )
            assert sent.status_code == 202, sent.text
            assert time.monotonic() - began < 1.0
            for stream in opened:
                await stream.until("Noted.")
            # Every client saw the same events, with the same ids, in the same order.
            first = [(e.id, e.event, e.data) for e in opened[0].events]
            assert first and all(
                [(e.id, e.event, e.data) for e in s.events] == first for s in opened
            )


async def test_a_late_client_gets_older_events_and_then_the_live_ones(api: ApiFactory) -> None:
    model = ScriptedModel(lambda request: AskUser(text=f"reply {len(request.messages)}"))
    async with (
        api(model) as a,
        serve(a.app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        created = await http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "one"}, headers=ALICE
        )
        cid = created.json()["id"]
        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
        async with streams(http, cid, 1) as (early,):
            await early.until("reply 1")
            cut = int(early.events[-1].id or 0)
            # A stream joining from further back than the shared reader started.
            async with (
                streams(http, cid, 1, after=-1) as (late,),
                streams(http, cid, 1, after=cut) as (tail,),
            ):
                await late.until("reply 1")
                sent = await http.post(
                    f"/v1/conversations/{cid}/messages", json={"text": "two"}, headers=ALICE
                )
                assert sent.status_code == 202
                for stream in (early, late, tail):
                    await stream.until("reply 3")
        ids = [int(e.id) for e in late.events if e.id is not None]
        assert ids == list(range(ids[0], ids[-1] + 1)) and ids[0] == 0
        seen = min(len(early.events), len(late.events))
        assert [e.id for e in early.events][:seen] == [e.id for e in late.events][:seen]
        # Each stream stopped when it had seen "reply 3": compare what they both saw.
        later = [i for i in ids if i > cut]
        got = [int(e.id or 0) for e in tail.events]
        assert got and got == later[: len(got)]


async def test_open_streams_are_capped_per_user_with_a_clear_reason(api: ApiFactory) -> None:
    config = api_settings(user_max_streams=2)
    async with (
        api(ScriptedModel(lambda request: AskUser(text="yes?")), api_config=config) as a,
        serve(a.app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        created = await http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "hi"}, headers=ALICE
        )
        cid = created.json()["id"]
        async with streams(http, cid, 2) as opened:
            for stream in opened:
                await stream.started()
            refused = await http.get(f"/v1/conversations/{cid}/events", headers=ALICE)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "too_many_streams"
            assert "limit is 2 per user" in refused.json()["error"]["reason"]
            assert int(refused.headers["retry-after"]) >= 1
            other = await http.get("/v1/me", headers=ALICE)
            assert other.status_code == 200
        # Closed streams give their slots back.
        async with streams(http, cid, 1) as (again,):
            await again.until("yes?")
            assert again.status == 200


async def test_events_of_a_missing_child_conversation_are_a_404(api: ApiFactory) -> None:
    async with api(ScriptedModel(lambda request: AskUser(text="yes?"))) as a:
        created = await a.http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "hi"}, headers=ALICE
        )
        cid = created.json()["id"]
        for path in (f"/v1/conversations/{cid}~p1.x", f"/v1/conversations/{cid}~p1.x/events"):
            response = await a.http.get(path, headers=ALICE)
            assert response.status_code == 404, (path, response.text)
            assert response.json()["error"]["code"] == "not_found"


async def test_temporal_refusing_more_work_is_a_429_that_says_so(tmp_path: Path) -> None:
    """What ten streams used to cause (Temporal's per-workflow update limit) is said as
    what it is, and as retryable, not as Temporal being down."""
    full = RPCError(
        "limit on number of concurrent in-flight updates has been reached (10)",
        RPCStatusCode.RESOURCE_EXHAUSTED,
        b"",
    )
    convs = Conversations(cast(Client, object()), make_settings(tmp_path))
    busy = convs._rpc("conv-x", full)
    assert isinstance(busy, ConversationBusy)

    app = FastAPI()
    install_error_handlers(app)

    @app.post("/busy")
    async def refuse() -> None:  # pyright: ignore[reportUnusedFunction]
        raise busy

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as h:
        response = await h.post("/busy")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert error["code"] == "conversation_busy"
    assert "in-flight updates" in error["reason"] and "retry" in error["reason"]
