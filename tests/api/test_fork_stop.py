"""`POST …/fork` and `POST …/stop` over HTTP against a real worker on the dev server.

A fork is the caller's new conversation whose transcript is the source's prefix, with
nothing before the fork point run again (counted in the fork's own history); other
users get 404; a bad point is a 422 that says why; an approval pending at the fork
point is not carried over. Stop cancels the model call in flight.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
from onward.agent.messages import ToolResultMessage, UserMessage
from onward.models.base import ModelRequest
from onward.testing import Hang, ScriptedModel, Step
from tests.api.conftest import ALICE, BOB, ApiFactory
from tests.workflows import toolbox
from tests.workflows.test_fork import activities

Json = dict[str, Any]


def adder(request: ModelRequest) -> Step:
    """`n`: add n and 1 with the tool, then say the sum; `pay n`: transfer n to ann."""
    last = request.messages[-1]
    if isinstance(last, UserMessage):
        turn = sum(isinstance(m, UserMessage) for m in request.messages)
        if last.text.startswith("pay "):
            args: Json = {"amount": int(last.text.removeprefix("pay ")), "to": "ann"}
            return CallTools(calls=[ToolCall(call_id=f"pay-{turn}", tool="transfer", args=args)])
        n = int(last.text)
        return CallTools(calls=[ToolCall(call_id=f"add-{turn}", tool="add", args={"a": n, "b": 1})])
    assert isinstance(last, ToolResultMessage)
    return AskUser(text=f"= {last.content}")


def _visible(messages: list[Json]) -> list[tuple[str, str]]:
    return [
        (m["kind"], str(m.get("text") or m.get("content")))
        for m in messages
        if m["kind"] != "notice"
    ]


async def test_a_fork_over_http_reruns_nothing_and_belongs_to_its_caller(
    api: ApiFactory,
) -> None:
    model = ScriptedModel(adder)
    async with api(model) as a:
        created = await a.http.post(
            "/v1/conversations",
            json={"goal": toolbox.OPEN_MATH.name, "message": "1"},
            headers=ALICE,
        )
        cid = created.json()["id"]
        await a.convs.wait_for(cid, lambda s: s.turns == 1 and s.status == "waiting_for_user")
        for turn, text in enumerate(["2", "3", "4"], 2):
            sent = await a.http.post(
                f"/v1/conversations/{cid}/messages", json={"text": text}, headers=ALICE
            )
            assert sent.status_code == 202
            await a.convs.wait_for(
                cid, lambda s, t=turn: s.turns == t and s.status == "waiting_for_user"
            )
        source = (await a.http.get(f"/v1/conversations/{cid}", headers=ALICE)).json()
        calls_before = len(model.calls)
        tools_before = len(toolbox.CALLS)

        # Someone else's conversation is not there for them: 404, as for a missing one.
        assert (
            await a.http.post(f"/v1/conversations/{cid}/fork", json={"turn": 2}, headers=BOB)
        ).status_code == 404
        before = (await a.http.get("/v1/conversations", headers=ALICE)).json()
        # A bad point is refused with the reason, before anything starts: a malformed
        # one is a 422; one past the end a 409 (the conversation is not that long).
        for body, status, says in (
            ({"turn": 9}, 409, "turn 9 is outside 0..4"),
            ({"at": 99}, 409, "message index 99 is outside"),
            ({}, 422, "exactly one of `turn` or `at`"),
            ({"turn": 1, "at": 2}, 422, "exactly one of `turn` or `at`"),
            ({"turn": None, "at": 2}, 422, "exactly one of `turn` or `at`"),
            ({"turn": -1}, 422, "greater than or equal to 0"),
            ({"turn": "two"}, 422, "turn"),
        ):
            bad = await a.http.post(f"/v1/conversations/{cid}/fork", json=body, headers=ALICE)
            assert bad.status_code == status, (body, bad.text)
            assert says in bad.text, bad.text
        # Nothing was started or indexed for them.
        assert (await a.http.get("/v1/conversations", headers=ALICE)).json() == before

        key = {**ALICE, "Idempotency-Key": "fork-at-2"}
        forked = await a.http.post(f"/v1/conversations/{cid}/fork", json={"turn": 2}, headers=key)
        assert forked.status_code == 201, forked.text
        fid = forked.json()["id"]
        assert fid != cid and forked.json()["goal"] == toolbox.OPEN_MATH.name
        assert forked.headers["location"] == f"/v1/conversations/{fid}"
        again = await a.http.post(f"/v1/conversations/{cid}/fork", json={"turn": 2}, headers=key)
        assert again.status_code == 201 and again.json()["id"] == fid  # a retry: same fork

        snap = await a.convs.wait_for(fid, lambda s: s.status == "waiting_for_user")
        detail = (await a.http.get(f"/v1/conversations/{fid}", headers=ALICE)).json()
        assert detail["owner"] == "alice" and detail["turns"] == 2
        assert _visible(detail["messages"]) == _visible(source["messages"][: 2 * 4])
        assert f"Forked from `{cid}`" in detail["messages"][-1]["text"]
        # Nothing ran for turns 1-2: no model call, no tool call, none in its history.
        assert len(model.calls) == calls_before and len(toolbox.CALLS) == tools_before
        assert await activities(a.convs.client, fid) == Counter()
        assert snap.pending_approvals == []

        listed = (await a.http.get("/v1/conversations", headers=ALICE)).json()["conversations"]
        assert [c["id"] for c in listed][:2] == [fid, cid]
        assert fid not in [
            c["id"]
            for c in (await a.http.get("/v1/conversations", headers=BOB)).json()["conversations"]
        ]
        assert (await a.http.get(f"/v1/conversations/{fid}", headers=BOB)).status_code == 404

        # The fork goes on by itself; the source is untouched.
        sent = await a.http.post(
            f"/v1/conversations/{fid}/messages", json={"text": "40"}, headers=ALICE
        )
        assert sent.status_code == 202
        after = await a.convs.wait_for(
            fid, lambda s: s.turns == 3 and s.status == "waiting_for_user"
        )
        assert after.answer is None and after.messages[-1].kind == "assistant"
        assert getattr(after.messages[-1], "text", "") == "= 41"
        source_after = (await a.http.get(f"/v1/conversations/{cid}", headers=ALICE)).json()
        assert source_after["messages"] == source["messages"]


async def test_an_approval_pending_at_the_fork_point_is_not_carried_over(
    api: ApiFactory,
) -> None:
    async with api(ScriptedModel(adder)) as a:
        created = await a.http.post(
            "/v1/conversations",
            json={"goal": toolbox.OPEN_MATH.name, "message": "pay 7"},
            headers=ALICE,
        )
        cid = created.json()["id"]
        snap = await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_approval")
        assert len(snap.pending_approvals) == 1
        forked = await a.http.post(
            f"/v1/conversations/{cid}/fork", json={"at": snap.message_count}, headers=ALICE
        )
        assert forked.status_code == 201, forked.text
        fid = forked.json()["id"]
        fork_snap = await a.convs.wait_for(fid, lambda s: s.status == "waiting_for_user")
        notice = fork_snap.messages[-1]
        assert notice.kind == "notice"
        assert "1 approval(s) pending at that point were not carried over" in notice.text
        assert fork_snap.pending_approvals == []
        # Approving the source's call on the fork is refused: it has no such approval.
        refused = await a.http.post(
            f"/v1/conversations/{fid}/approvals/{snap.pending_approvals[0].call_id}",
            json={"decision": "approve", "args_hash": snap.pending_approvals[0].args_hash},
            headers=ALICE,
        )
        assert refused.status_code == 409, refused.text
    assert [k for name, k in toolbox.CALLS if name == "transfer" and k.startswith(fid)] == []


async def test_stop_cancels_the_model_call_in_flight_and_the_next_message_is_answered(
    api: ApiFactory,
) -> None:
    model = ScriptedModel([Hang(), Finish(answer="Here you are.")])
    async with api(model) as a:
        created = await a.http.post(
            "/v1/conversations",
            json={"goal": toolbox.OPEN_MATH.name, "message": "a long essay, please"},
            headers=ALICE,
        )
        cid = created.json()["id"]
        await a.convs.wait_for(cid, lambda s: s.status == "thinking" and len(model.calls) == 1)
        assert (await a.http.post(f"/v1/conversations/{cid}/stop", headers=BOB)).status_code == 404

        stopped = await a.http.post(f"/v1/conversations/{cid}/stop", headers=ALICE)
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["stopped"] is True
        snap = await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
        assert getattr(snap.messages[-1], "text", "") == "Stopped. Send a message to go on."

        idle = await a.http.post(f"/v1/conversations/{cid}/stop", headers=ALICE)
        assert idle.status_code == 200 and idle.json()["stopped"] is False
        assert "waiting for you" in idle.json()["detail"]

        await a.http.post(
            f"/v1/conversations/{cid}/messages", json={"text": "a short one"}, headers=ALICE
        )
        done = await a.convs.wait_for(cid, lambda s: s.answer == "Here you are.")
        assert done.status == "waiting_for_user"
        ended = await a.http.post(f"/v1/conversations/{cid}/end", headers=ALICE)
        assert ended.status_code == 200
        after_end = await a.http.post(f"/v1/conversations/{cid}/stop", headers=ALICE)
        assert after_end.status_code == 409, after_end.text
    assert len(model.calls) == 2
