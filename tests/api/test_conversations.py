"""Every conversation route against a real worker: the happy path and its refusals."""

from __future__ import annotations

import json

from onward.agent.contracts import ConversationSnapshot
from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
from onward.agent.messages import Usage
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, ApiFactory, read_stream


def _transfer_script() -> ScriptedModel:
    return ScriptedModel(
        [
            AskUser(text="How much, and to whom?"),
            CallTools(
                calls=[ToolCall(call_id="t1", tool="transfer", args={"amount": 5, "to": "bob"})]
            ),
            Finish(answer="Sent **5** to bob."),
        ],
        # Slower than one delta batch (150 ms), so text is streamed as deltas.
        word_delay_s=0.05,
    )


async def test_conversation_lifecycle_over_http(api: ApiFactory) -> None:
    async with api(_transfer_script()) as a:
        created = await a.http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "pay someone"}, headers=ALICE
        )
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        assert created.headers["location"] == f"/v1/conversations/{cid}"
        assert created.json()["links"]["workflow"].endswith(f"/namespaces/default/workflows/{cid}")

        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
        listed = (await a.http.get("/v1/conversations", headers=ALICE)).json()["conversations"]
        mine = [c for c in listed if c["id"] == cid]
        assert mine and mine[0]["title"] == "pay someone" and mine[0]["goal"] == "test-math"

        detail = await a.http.get(f"/v1/conversations/{cid}", headers=ALICE)
        assert detail.status_code == 200
        body = detail.json()
        assert body["status"] == "waiting_for_user" and body["owner"] == "alice"
        assert [m["kind"] for m in body["messages"]] == ["user", "assistant"]
        tail = (await a.http.get(f"/v1/conversations/{cid}?offset=1", headers=ALICE)).json()
        assert tail["offset"] == 1 and [m["text"] for m in tail["messages"]] == [
            "How much, and to whom?"
        ]

        sent = await a.http.post(
            f"/v1/conversations/{cid}/messages", json={"text": "5 to bob"}, headers=ALICE
        )
        assert sent.status_code == 202
        assert sent.json() == {"id": sent.json()["id"], "queued": True}
        snap = await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_approval")
        # What is true about its position comes with the transcript, under the same id.
        ids = [getattr(m, "id", None) for m in snap.messages]
        assert ids.index(sent.json()["id"]) == 2
        pending = snap.pending_approvals[0]
        assert pending.call_id == "t1"

        decided = await a.http.post(
            f"/v1/conversations/{cid}/approvals/t1",
            json={"decision": "approve", "args_hash": pending.args_hash},
            headers=ALICE,
        )
        assert decided.status_code == 200 and decided.json() == {
            "call_id": "t1",
            "decision": "approve",
        }
        result = await a.convs.result(cid)
        assert result.answer == "Sent **5** to bob."
        assert [r.tool for r in result.tool_calls if r.ok] == ["transfer"]

        final = ConversationSnapshot.model_validate(
            (await a.http.get(f"/v1/conversations/{cid}", headers=ALICE)).json()
        )
        assert final.status == "ended" and final.answer == "Sent **5** to bob."

        late = await a.http.post(
            f"/v1/conversations/{cid}/messages", json={"text": "again"}, headers=ALICE
        )
        assert late.status_code == 409
        assert late.json() == {
            "error": {"code": "input_rejected", "reason": "the conversation has ended"}
        }


async def test_events_route_streams_the_whole_conversation(api: ApiFactory) -> None:
    async with api(_transfer_script()) as a:
        cid = (
            await a.http.post(
                "/v1/conversations", json={"goal": "test-math", "message": "pay"}, headers=ALICE
            )
        ).json()["id"]
        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
        await a.convs.send(cid, "5 to bob")
        snap = await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_approval")
        await a.convs.decide(cid, "t1", "approve", snap.pending_approvals[0].args_hash)
        await a.convs.result(cid)

        events = await read_stream(a.http, cid, ALICE)
        assert events[-1].event == "end" and events[-1].id is None
        ids = [int(e.id) for e in events if e.id is not None]
        assert ids == sorted(set(ids)) and len(ids) == len(events) - 1
        names = {e.event for e in events}
        assert {"message", "status", "delta", "model_call_started", "approval_requested"} <= names
        requested = next(e for e in events if e.event == "approval_requested")
        assert json.loads(requested.data)["args_hash"] == snap.pending_approvals[0].args_hash
        statuses = [json.loads(e.data)["status"] for e in events if e.event == "status"]
        assert statuses[-1] == "ended" and "waiting_for_approval" in statuses

        # `?after=` and `Last-Event-ID` both resume after the given offset.
        cut = ids[len(ids) // 2]
        rest = [int(e.id) for e in events if e.id is not None and int(e.id) > cut]
        by_query = await read_stream(a.http, cid, ALICE, params={"after": cut})
        by_header = await read_stream(a.http, cid, {**ALICE, "Last-Event-ID": str(cut)})
        assert [int(e.id) for e in by_query if e.id] == rest
        assert [int(e.id) for e in by_header if e.id] == rest


async def test_stale_and_mismatched_approvals_are_refused_with_reason(api: ApiFactory) -> None:
    model = ScriptedModel(
        [
            CallTools(
                calls=[ToolCall(call_id="t1", tool="transfer", args={"amount": 9, "to": "eve"})]
            ),
            AskUser(text="Not sent. Anything else?"),
        ]
    )
    async with api(model) as a:
        cid = (
            await a.http.post(
                "/v1/conversations", json={"goal": "test-math", "message": "pay"}, headers=ALICE
            )
        ).json()["id"]
        snap = await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_approval")
        good_hash = snap.pending_approvals[0].args_hash
        url = f"/v1/conversations/{cid}/approvals"

        wrong = await a.http.post(
            f"{url}/t1", json={"decision": "approve", "args_hash": "0" * 64}, headers=ALICE
        )
        assert wrong.status_code == 409
        assert wrong.json()["error"]["code"] == "input_rejected"
        assert "args hash mismatch" in wrong.json()["error"]["reason"]

        unknown = await a.http.post(
            f"{url}/nope", json={"decision": "approve", "args_hash": good_hash}, headers=ALICE
        )
        assert unknown.status_code == 409
        assert "no approval is pending for call `nope`" in unknown.json()["error"]["reason"]

        rejected = await a.http.post(
            f"{url}/t1",
            json={"decision": "reject", "args_hash": good_hash, "feedback": "not eve"},
            headers=ALICE,
        )
        assert rejected.status_code == 200
        stale = await a.http.post(
            f"{url}/t1", json={"decision": "approve", "args_hash": good_hash}, headers=ALICE
        )
        assert stale.status_code == 409
        assert stale.json()["error"]["reason"] == "already decided: reject"

        bad = await a.http.post(
            f"{url}/t1", json={"decision": "maybe", "args_hash": good_hash}, headers=ALICE
        )
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        await a.convs.end(cid)
        result = await a.convs.result(cid)
    assert [r.tool for r in result.tool_calls] == []  # the rejected transfer never ran


async def test_budget_is_raised_over_http(api: ApiFactory) -> None:
    model = ScriptedModel(
        lambda request: AskUser(text="and?"),
        usage_per_call=Usage(
            requests=1, input_tokens=100, output_tokens=20, cost_usd=None, cost_unknown_requests=1
        ),
    )
    async with api(model) as a:
        created = await a.http.post(
            "/v1/conversations",
            json={
                "goal": "test-math",
                "message": "one",
                "options": {"budget": {"max_tokens": 100}},
            },
            headers=ALICE,
        )
        cid = created.json()["id"]
        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
        await a.http.post(f"/v1/conversations/{cid}/messages", json={"text": "two"}, headers=ALICE)
        await a.convs.wait_for(cid, lambda s: s.status == "budget_exhausted")
        url = f"/v1/conversations/{cid}/budget"

        empty = await a.http.post(url, json={}, headers=ALICE)
        assert empty.status_code == 422
        assert "max_tokens" in empty.json()["error"]["reason"]
        lower = await a.http.post(url, json={"max_tokens": 50}, headers=ALICE)
        assert lower.status_code == 409
        assert "lower than the current 100" in lower.json()["error"]["reason"]

        raised = await a.http.post(url, json={"max_tokens": 10_000}, headers=ALICE)
        assert raised.status_code == 200, raised.text
        assert raised.json()["budget"] == {"max_tokens": 10_000, "max_cost_usd": None}
        # The conversation goes on at once: its next model call may be counted already.
        assert raised.json()["usage"]["cost_unknown_requests"] in (1, 2)
        snap = await a.convs.wait_for(
            cid, lambda s: s.status == "waiting_for_user" and s.turns == 2
        )
    assert snap.usage.total_tokens == 240


async def test_delete_ends_the_conversation_and_hides_it(api: ApiFactory) -> None:
    async with api(ScriptedModel(lambda request: AskUser(text="yes?"))) as a:
        cid = (
            await a.http.post(
                "/v1/conversations", json={"goal": "test-math", "message": "hi"}, headers=ALICE
            )
        ).json()["id"]
        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)

        deleted = await a.http.delete(f"/v1/conversations/{cid}", headers=ALICE)
        assert deleted.status_code == 204 and deleted.content == b""
        result = await a.convs.result(cid)
        assert result.end_reason == "deleted by its owner"

        for method, path in (
            ("GET", f"/v1/conversations/{cid}"),
            ("GET", f"/v1/conversations/{cid}/events"),
            ("DELETE", f"/v1/conversations/{cid}"),
        ):
            gone = await a.http.request(method, path, headers=ALICE)
            assert gone.status_code == 404, (method, path)
        listed = (await a.http.get("/v1/conversations", headers=ALICE)).json()["conversations"]
        assert cid not in [c["id"] for c in listed]


async def test_unreachable_cost_limits_are_refused_on_create_and_raise(api: ApiFactory) -> None:
    async with api(ScriptedModel(lambda request: AskUser(text="yes?"))) as a:
        # JSON `1e999` is infinity once parsed: a limit that could never be reached.
        infinite = '{"goal": "test-math", "options": {"budget": {"max_cost_usd": 1e999}}}'
        created = await a.http.post(
            "/v1/conversations",
            content=infinite,
            headers={**ALICE, "Content-Type": "application/json"},
        )
        assert created.status_code == 422
        assert created.json()["error"]["code"] == "invalid_request"
        assert "max_cost_usd" in created.json()["error"]["reason"]
        assert "finite" in created.json()["error"]["reason"]

        cid = (
            await a.http.post("/v1/conversations", json={"goal": "test-math"}, headers=ALICE)
        ).json()["id"]
        raised = await a.http.post(
            f"/v1/conversations/{cid}/budget",
            content='{"max_cost_usd": 1e999}',
            headers={**ALICE, "Content-Type": "application/json"},
        )
        assert raised.status_code == 422
        assert "finite" in raised.json()["error"]["reason"]
        nulls = await a.http.post(
            f"/v1/conversations/{cid}/budget", json={"max_tokens": None}, headers=ALICE
        )
        assert nulls.status_code == 422 and "may not be null" in nulls.json()["error"]["reason"]
        snap = await a.convs.snapshot(cid)
        assert snap.budget.max_cost_usd is None  # nothing was stored
