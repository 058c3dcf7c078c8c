"""`Idempotency-Key` on every POST: a retry is answered with the first result, and the
index row that names a conversation's owner is written before its workflow starts."""

from __future__ import annotations

from datetime import timedelta

from onward.agent.decisions import AskUser, CallTools, ToolCall
from onward.api.deps import ApiState
from onward.api.idempotency import conversation_id_for
from onward.api.reconcile import Settled, reconcile
from onward.client.erasure import runs_of
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, BOB, ApiFactory
from tests.workflows import toolbox


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def _state(api_state: object) -> ApiState:
    assert isinstance(api_state, ApiState)
    return api_state


async def test_a_retried_create_is_answered_with_the_first_conversation(api: ApiFactory) -> None:
    async with api(ScriptedModel(lambda request: AskUser(text="yes?"))) as a:
        body = {"goal": "test-math", "message": "hi there"}
        first = await a.http.post("/v1/conversations", json=body, headers={**ALICE, **_key("k1")})
        again = await a.http.post("/v1/conversations", json=body, headers={**ALICE, **_key("k1")})
        assert first.status_code == again.status_code == 201, (first.text, again.text)
        assert first.json() == again.json()
        cid = first.json()["id"]
        assert cid == conversation_id_for("alice", "k1")
        assert again.headers["location"] == f"/v1/conversations/{cid}"

        # The key is the caller's: bob's `k1` is another conversation.
        bobs = await a.http.post("/v1/conversations", json=body, headers={**BOB, **_key("k1")})
        assert bobs.status_code == 201 and bobs.json()["id"] != cid
        # The same key for another request is a mistake, said as such.
        other = await a.http.post(
            "/v1/conversations",
            json={"goal": "test-math", "message": "something else"},
            headers={**ALICE, **_key("k1")},
        )
        assert other.status_code == 422
        assert other.json()["error"]["code"] == "idempotency_key_reused"

        snap = await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
        assert [getattr(m, "text", None) for m in snap.messages] == ["hi there", "yes?"]
        assert len(await runs_of(a.convs.client, cid)) == 1  # one workflow, one run
        listed = (await a.http.get("/v1/conversations", headers=ALICE)).json()["conversations"]
        assert [c["id"] for c in listed].count(cid) == 1


async def test_retried_approval_budget_and_end_get_the_first_answer(api: ApiFactory) -> None:
    model = ScriptedModel(
        [
            CallTools(
                calls=[ToolCall(call_id="t1", tool="transfer", args={"amount": 4, "to": "ann"})]
            ),
            AskUser(text="Sent. Anything else?"),
        ]
    )
    async with api(model) as a:
        created = await a.http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "pay ann"}, headers=ALICE
        )
        cid = created.json()["id"]
        snap = await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_approval")
        url = f"/v1/conversations/{cid}"
        decision = {"decision": "approve", "args_hash": snap.pending_approvals[0].args_hash}

        approved = [
            await a.http.post(f"{url}/approvals/t1", json=decision, headers={**ALICE, **_key("a")})
            for _ in range(2)
        ]
        assert [r.status_code for r in approved] == [200, 200], [r.text for r in approved]
        assert approved[0].json() == approved[1].json() == {"call_id": "t1", "decision": "approve"}
        # Without the key the same request is a second decision, and refused.
        unkeyed = await a.http.post(f"{url}/approvals/t1", json=decision, headers=ALICE)
        assert unkeyed.status_code == 409
        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
        assert sum(1 for _, key in toolbox.CALLS if key == f"{cid}:t1") == 1

        raised = [
            await a.http.post(
                f"{url}/budget", json={"max_tokens": 5000}, headers={**ALICE, **_key("b")}
            )
            for _ in range(2)
        ]
        assert [r.status_code for r in raised] == [200, 200]
        assert raised[1].json()["budget"]["max_tokens"] == 5000

        ended = [await a.http.post(f"{url}/end", headers={**ALICE, **_key("e")}) for _ in range(2)]
        assert [r.status_code for r in ended] == [200, 200], [r.text for r in ended]
        assert ended[0].json() == ended[1].json() == {"id": cid, "status": "ended"}
        result = await a.convs.result(cid)
        assert result.end_reason == "ended by user"
        # Ending an ended conversation is what was asked: the same answer, key or not.
        late = await a.http.post(f"{url}/end", json={"reason": "again"}, headers=ALICE)
        assert late.status_code == 200 and late.json()["status"] == "ended"


async def test_unfinished_creates_are_settled_by_the_reconciler(api: ApiFactory) -> None:
    async with api(ScriptedModel(lambda request: AskUser(text="yes?"))) as a:
        state = _state(a.app.state.api)
        # An API died after starting this workflow, before marking its row active ...
        started = await a.convs.start("test-math", owner="alice", conversation_id="conv-started")
        await state.index.reserve(started, "alice", "test-math", "hi", request_hash="h1")
        # ... and another one before starting anything at all.
        await state.index.reserve("conv-never", "alice", "test-math", "hi", request_hash="h2")
        for cid in (started, "conv-never"):
            hidden = await a.http.get(f"/v1/conversations/{cid}", headers=ALICE)
            assert hidden.status_code == 404  # pending: not reachable yet

        # Rows younger than the grace period may be a create still under way.
        assert await reconcile(state, grace=timedelta(hours=1)) == Settled([], [])
        settled = await reconcile(state, grace=timedelta(0))
        assert settled.activated == [started] and settled.removed == ["conv-never"]

        shown = await a.http.get(f"/v1/conversations/{started}", headers=ALICE)
        assert shown.status_code == 200 and shown.json()["owner"] == "alice"
        listed = (await a.http.get("/v1/conversations", headers=ALICE)).json()["conversations"]
        ids = [c["id"] for c in listed]
        assert started in ids and "conv-never" not in ids
        assert await state.index.pending(timedelta(0)) == []
