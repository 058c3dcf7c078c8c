"""Live SSE through a real uvicorn server on 127.0.0.1: resume across an API restart
with nothing missed and nothing repeated, keep-alives, and the body limit on the wire."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx

from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
from onward.api.app import create_app
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, ApiFactory, api_settings, read_stream, serve


def _script() -> ScriptedModel:
    return ScriptedModel(
        [
            AskUser(text="Which account?"),
            CallTools(
                calls=[ToolCall(call_id="t1", tool="transfer", args={"amount": 3, "to": "ann"})]
            ),
            Finish(answer="Done: 3 sent to ann."),
        ]
    )


async def test_sse_resumes_after_an_api_restart_without_gaps_or_duplicates(
    api: ApiFactory,
) -> None:
    async with api(_script()) as a:
        async with serve(a.app) as url, httpx.AsyncClient(base_url=url) as http:
            created = await http.post(
                "/v1/conversations", json={"goal": "test-math", "message": "pay"}, headers=ALICE
            )
            cid = created.json()["id"]
            # Read live until the agent's question arrives, then drop the connection.
            first = await read_stream(
                http, cid, ALICE, stop=lambda e: e.event == "message" and "Which" in e.data
            )
        assert first and first[-1].event == "message"

        # While no API runs, the conversation moves on (events keep accumulating).
        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
        await a.convs.send(cid, "savings")
        snap = await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_approval")

        # A new API instance (fresh app, same data dir) picks up from Last-Event-ID.
        second_app = create_app(a.settings, client=a.convs.client, api_settings=api_settings())
        async with serve(second_app) as url, httpx.AsyncClient(base_url=url) as http:
            last_seen = first[-1].id
            assert last_seen is not None

            # Approve while the resumed stream is open: its events arrive live.
            approver = asyncio.create_task(
                a.convs.decide(cid, "t1", "approve", snap.pending_approvals[0].args_hash)
            )
            rest = await read_stream(http, cid, {**ALICE, "Last-Event-ID": last_seen})
            await approver
            full = await read_stream(http, cid, ALICE)

    assert rest[-1].event == "end" and full[-1].event == "end"
    stitched = [(e.id, e.event, e.data) for e in first + rest if e.id is not None]
    complete = [(e.id, e.event, e.data) for e in full if e.id is not None]
    assert stitched == complete  # nothing missed, nothing twice, same payloads
    answers = [json.loads(e.data)["message"].get("text") for e in rest if e.event == "message"]
    assert "Done: 3 sent to ann." in answers


async def test_idle_stream_sends_keepalives_and_live_events(api: ApiFactory) -> None:
    model = ScriptedModel(lambda request: AskUser(text=f"reply {len(request.messages)}"))
    async with (
        api(model, api_config=api_settings(sse_keepalive_s=0.05)) as a,
        serve(a.app) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        created = await http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "hi"}, headers=ALICE
        )
        cid = created.json()["id"]
        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
        seen: list[str] = []
        async with (
            asyncio.timeout(30),
            http.stream(
                "GET", f"/v1/conversations/{cid}/events", params={"token": "alice-token"}
            ) as response,
        ):
            lines = response.aiter_lines()
            async for line in lines:
                seen.append(line)
                if line.startswith(": keep-alive"):
                    break
            # A message sent now arrives on the open stream.
            sent = await http.post(
                f"/v1/conversations/{cid}/messages", json={"text": "more"}, headers=ALICE
            )
            assert sent.status_code == 202
            async for line in lines:
                seen.append(line)
                if line.startswith("data:") and "reply 3" in line:
                    break
    assert seen[0] == "retry: 2000"
    assert any(line.startswith(": keep-alive") for line in seen)
    assert any("reply 3" in line for line in seen)


async def test_chunked_oversized_body_is_refused_on_the_wire(api: ApiFactory) -> None:
    async with (
        api(ScriptedModel([]), api_config=api_settings(max_body_bytes=512)) as a,
        serve(a.app) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):

        async def body() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"x" * 64

        response = await http.post(
            "/v1/conversations",
            content=body(),
            headers={**ALICE, "Content-Type": "application/json"},
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        # The server is still fine afterwards.
        assert (await http.get("/v1/me", headers=ALICE)).json() == {"user": "alice"}
