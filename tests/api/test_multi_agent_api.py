"""Multi-agent conversations over HTTP: a child's approval surfaced on its parent and
decided there, and who may read the child conversations a plan starts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from onward.agent.contracts import ConversationSnapshot
from onward.agent.decisions import CallTools, Finish, PlanStep, Review, RunPlan, ToolCall
from onward.agent.messages import ToolResultMessage
from onward.api.index import ConversationIndex
from onward.client.erasure import runs_of
from onward.client.sse import SseEvent
from onward.models.base import ModelRequest
from onward.testing import ScriptedModel
from onward.testing.scripted import Step
from tests.api.conftest import ALICE, BOB, ApiFactory, read_stream, serve, wait_erased
from tests.workflows import team_goals

assert team_goals.PLANNER.name == "test-planner"  # importing registers the team goals


def _planner_script(request: ModelRequest) -> Step:
    """The planner delegates one payment to the math agent, whose transfer needs an
    approval; then it passes the agent's answer on."""
    if request.review:
        return Review(approved=True)
    results = [m for m in request.messages if isinstance(m, ToolResultMessage)]
    if request.goal.name == "test-planner":
        if not results:
            return RunPlan(steps=[PlanStep(id="pay", goal="test-math", instruction="send 5")])
        return Finish(answer=str(results[-1].content["steps"][0]["answer"]))
    if not results:
        return CallTools(
            calls=[ToolCall(call_id="t1", tool="transfer", args={"amount": 5, "to": "bo"})]
        )
    return Finish(answer="sent 5 to bo")


def _data(events: list[SseEvent], name: str) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in events if e.event == name]


async def test_a_childs_approval_is_decided_on_the_parent_over_http(api: ApiFactory) -> None:
    # A real server: streams of running conversations are read live, which the ASGI
    # test transport (it buffers whole responses) cannot do.
    async with (
        api(ScriptedModel(_planner_script)) as a,
        serve(a.app) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        created = await http.post(
            "/v1/conversations", json={"goal": "test-planner", "message": "pay bo"}, headers=ALICE
        )
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        child = f"{cid}~p1.pay"
        await a.convs.wait_for(cid, lambda s: bool(s.pending_approvals))

        detail = await http.get(f"/v1/conversations/{cid}", headers=ALICE)
        assert detail.status_code == 200
        parent = ConversationSnapshot.model_validate(detail.json())
        assert parent.status == "waiting_for_approval"
        [pending] = parent.pending_approvals
        assert (pending.call_id, pending.tool) == ("p1.pay:t1", "transfer")
        assert (pending.agent, pending.conversation_id) == ("test-math", child)

        # The parent's stream announces the sub-agent and its approval with the same ids.
        events = await read_stream(http, cid, ALICE, stop=lambda e: e.event == "approval_requested")
        [started] = _data(events, "agent_started")
        assert (started["agent"], started["conversation_id"]) == ("test-math", child)
        [requested] = _data(events, "approval_requested")
        assert requested["call_id"] == "p1.pay:t1"
        assert (requested["agent"], requested["conversation_id"]) == ("test-math", child)
        assert requested["args_hash"] == pending.args_hash

        decided = await http.post(
            f"/v1/conversations/{cid}/approvals/{pending.call_id}",
            json={"decision": "approve", "args_hash": pending.args_hash},
            headers=ALICE,
        )
        assert decided.status_code == 200, decided.text
        assert decided.json() == {"call_id": "p1.pay:t1", "decision": "approve"}
        result = await asyncio.wait_for(a.convs.result(cid), 60)
        assert (result.outcome, result.answer) == ("finished", "sent 5 to bo")

        final = ConversationSnapshot.model_validate(
            (await http.get(f"/v1/conversations/{cid}", headers=ALICE)).json()
        )
        assert final.status == "ended" and final.pending_approvals == []
        events = await read_stream(http, cid, ALICE)
        assert events[-1].event == "end"
        [closed] = _data(events, "approval_decided")
        assert closed["call_id"] == "p1.pay:t1" and closed["decision"] == "approve"
        assert (closed["agent"], closed["conversation_id"]) == ("test-math", child)
        [finished] = _data(events, "agent_finished")
        assert (finished["conversation_id"], finished["detail"], finished["ok"]) == (
            child,
            "finished",
            True,
        )
        assert [r["ok"] for r in _data(events, "review")] == [True]

        # The tool ran once, in the child, which recorded the decision as its own.
        snap = await a.convs.snapshot(child)
        assert [(r.tool, r.ok) for r in (await a.convs.result(child)).tool_calls] == [
            ("transfer", True)
        ]
        assert snap.pending_approvals == []


async def test_child_conversations_are_readable_by_the_parents_owner_only(
    api: ApiFactory,
) -> None:
    async with (
        api(ScriptedModel(_planner_script)) as a,
        serve(a.app) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        cid = (
            await http.post(
                "/v1/conversations",
                json={"goal": "test-planner", "message": "pay bo"},
                headers=ALICE,
            )
        ).json()["id"]
        child = f"{cid}~p1.pay"
        await a.convs.wait_for(cid, lambda s: bool(s.pending_approvals))

        mine = await http.get(f"/v1/conversations/{child}", headers=ALICE)
        assert mine.status_code == 200, mine.text
        body = mine.json()
        assert (body["conversation_id"], body["goal"], body["owner"]) == (
            child,
            "test-math",
            "alice",
        )
        assert body["status"] == "waiting_for_approval"
        assert [p["call_id"] for p in body["pending_approvals"]] == ["t1"]
        first = body["messages"][0]
        assert (first["kind"], first["text"], type(first["id"])) == ("user", "send 5", str)
        assert body["links"]["self"] == f"/v1/conversations/{child}"
        stream = await read_stream(
            http, child, ALICE, stop=lambda e: e.event == "approval_requested"
        )
        assert json.loads(stream[-1].data)["call_id"] == "t1"
        by_query = await read_stream(
            http,
            child,
            {},
            params={"token": "alice-token"},
            stop=lambda e: e.event == "approval_requested",
        )
        assert [e.id for e in by_query] == [e.id for e in stream]

        # Anyone else: the same 404 as for a conversation that does not exist.
        refused = [
            await http.get(f"/v1/conversations/{child}", headers=BOB),
            await http.get(f"/v1/conversations/{child}/events", headers=BOB),
            await http.get(f"/v1/conversations/{child}/events?token=bob-token"),
        ]
        for response in refused:
            assert response.status_code == 404
            assert response.json()["error"] == {
                "code": "not_found",
                "reason": f"no conversation `{child}`",
            }
        # A made-up child of her own conversation does not exist; nor does a child of
        # a conversation nobody has.
        for missing in (f"{cid}~p9.nope", f"{cid}~", "conv-doesnotexist~p1.pay"):
            response = await http.get(f"/v1/conversations/{missing}", headers=ALICE)
            assert response.status_code == 404, missing

        # Children are read-only: they are steered through the parent.
        base = f"/v1/conversations/{child}"
        writes: list[tuple[str, str, dict[str, Any] | None]] = [
            ("POST", f"{base}/messages", {"text": "hello"}),
            ("POST", f"{base}/approvals/t1", {"decision": "approve", "args_hash": "x"}),
            ("POST", f"{base}/budget", {"max_tokens": 10}),
            ("DELETE", base, None),
        ]
        for method, path, body in writes:
            response = await http.request(method, path, json=body, headers=ALICE)
            assert response.status_code == 404, (method, path)
        assert (await a.convs.snapshot(child)).status == "waiting_for_approval"

        # Deleting the parent takes its children out of reach too, and erases them.
        assert child in {wid for wid, _ in await runs_of(a.convs.client, cid)}
        deleted = await http.delete(f"/v1/conversations/{cid}", headers=ALICE)
        assert deleted.status_code == 204
        gone = await http.get(f"/v1/conversations/{child}", headers=ALICE)
        assert gone.status_code == 404
        await wait_erased(a.convs.client, cid)
        await wait_erased(a.convs.client, child)  # the server deletes asynchronously


async def test_the_index_refuses_ids_that_would_read_as_children(tmp_path: Path) -> None:
    index = ConversationIndex(tmp_path / "index.sqlite3")
    await index.add("conv-a", "alice", "test-planner", "")
    with pytest.raises(ValueError, match="may not contain '~'"):
        await index.add("conv-a~p1.x", "bob", "test-math", "")
    assert await index.get_readable("conv-a~p1.x", "bob") is None
    readable = await index.get_readable("conv-a~p1.x~p1.y", "alice")
    assert readable is not None and readable.parent_id == "conv-a"
    assert await index.get_readable("conv-a~", "alice") is None


async def test_unlisted_goals_are_neither_listed_nor_startable(api: ApiFactory) -> None:
    async with api(ScriptedModel([])) as a:
        listed = (await a.http.get("/v1/goals", headers=ALICE)).json()["goals"]
        started = await a.http.post(
            "/v1/conversations",
            json={"goal": "trip-reviewer", "message": "review this"},
            headers=ALICE,
        )
    names = {g["name"] for g in listed}
    assert "trip-planner" in names and "trip-reviewer" not in names
    assert started.status_code == 422, started.text
    assert "only used by other goals" in started.text
