"""Inputs that race each other over HTTP, against the real workflow: concurrent
messages are each taken once (or named in a notice), and of an approve and a reject
sent at once exactly one is acknowledged."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from onward.agent.decisions import AskUser, CallTools, Finish, ToolCall
from onward.agent.messages import AssistantMessage, NoticeMessage, UserMessage
from onward.config import Settings
from onward.examples.chaos.scenarios import named_in_notice
from onward.goals.base import Goal
from onward.models.base import ModelRequest
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, ApiFactory
from tests.conftest import AgentFactory, agent_factory
from tests.workflows import toolbox

SENDS = 20
FINISHER = Goal(
    name="test-api-finisher",
    description="Answers once, then the conversation is over.",
    instructions="Answer.",
    tools=[],
    end_on_finish=True,
)


@pytest.fixture
def dev_agent(dev_env: WorkflowEnvironment, settings: Settings) -> AgentFactory:
    """Workers whose goal catalog also holds this module's goals."""
    return agent_factory(dev_env, settings, [FINISHER])


async def _send_all(a_http: httpx.AsyncClient, cid: str) -> list[tuple[int, str, str | None]]:
    """Send `SENDS` messages at once; (status, text, message id) of each."""
    texts = [f"message {i}" for i in range(SENDS)]
    answers = await asyncio.gather(
        *(
            a_http.post(f"/v1/conversations/{cid}/messages", json={"text": t}, headers=ALICE)
            for t in texts
        )
    )
    return [
        (r.status_code, t, r.json().get("id") if r.status_code == 202 else None)
        for r, t in zip(answers, texts, strict=True)
    ]


async def test_concurrent_messages_are_all_taken_once_and_in_order(api: ApiFactory) -> None:
    def reply(request: ModelRequest) -> AskUser:
        said = [m.text for m in request.messages if isinstance(m, UserMessage)]
        return AskUser(text=f"reply to {said[-1]}")

    async with api(ScriptedModel(reply, word_delay_s=0.01)) as a:
        created = await a.http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "hello"}, headers=ALICE
        )
        cid = created.json()["id"]
        sent = await _send_all(a.http, cid)
        assert [status for status, _, _ in sent] == [202] * SENDS
        ids = {mid: text for _, text, mid in sent if mid is not None}
        assert len(ids) == SENDS  # one id each, none shared
        snap = await a.convs.wait_for(
            cid,
            lambda s: s.status == "waiting_for_user" and s.turns == SENDS + 1,
            timeout_s=90,
        )
    first, *users = [m for m in snap.messages if isinstance(m, UserMessage)]
    assert first.text == "hello"
    assert sorted(m.id or "" for m in users) == sorted(ids)  # each taken exactly once
    for message in users:
        assert message.text == ids[message.id or ""]
        # Taken in turn: each message is answered before the next one is taken.
        after = snap.messages[snap.messages.index(message) + 1]
        assert after == AssistantMessage(text=f"reply to {message.text}")


async def test_messages_racing_the_end_are_taken_or_named_never_dropped(api: ApiFactory) -> None:
    model = ScriptedModel(lambda request: Finish(answer="All done."), word_delay_s=0.01)
    async with api(model) as a:
        created = await a.http.post(
            "/v1/conversations", json={"goal": FINISHER.name, "message": "hi"}, headers=ALICE
        )
        cid = created.json()["id"]
        sent = await _send_all(a.http, cid)
        result = await a.convs.result(cid)
        snap = await a.convs.snapshot(cid)
    assert result.end_reason
    accepted = {mid: text for status, text, mid in sent if status == 202 and mid is not None}
    refused = [status for status, _, _ in sent if status != 202]
    assert set(refused) <= {409}  # a refusal tells the sender the conversation ended
    assert accepted, "no message was accepted before the end: nothing was tested"
    notices = [m.text for m in snap.messages if isinstance(m, NoticeMessage)]
    taken = [m.id for m in snap.messages if isinstance(m, UserMessage) and m.id is not None]
    for message_id, text in accepted.items():
        times_taken = taken.count(message_id)
        assert times_taken <= 1, f"{message_id} taken {times_taken} times"
        assert times_taken == 1 or named_in_notice(text, notices), (
            f"acknowledged message {message_id} ({text!r}) was neither taken nor named"
        )


async def test_approve_and_reject_at_once_acknowledge_exactly_one(api: ApiFactory) -> None:
    rounds = 3
    model = ScriptedModel(
        lambda request: (
            CallTools(
                calls=[ToolCall(call_id="t1", tool="transfer", args={"amount": 7, "to": "z"})]
            )
            if not any(getattr(m, "kind", "") == "tool_result" for m in request.messages)
            else AskUser(text="What next?")
        )
    )
    async with api(model) as a:
        for _ in range(rounds):
            created = await a.http.post(
                "/v1/conversations", json={"goal": "test-math", "message": "pay"}, headers=ALICE
            )
            cid = created.json()["id"]
            snap = await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_approval")
            args_hash = snap.pending_approvals[0].args_hash
            url = f"/v1/conversations/{cid}/approvals/t1"
            approve, reject = await asyncio.gather(
                a.http.post(
                    url, json={"decision": "approve", "args_hash": args_hash}, headers=ALICE
                ),
                a.http.post(
                    url, json={"decision": "reject", "args_hash": args_hash}, headers=ALICE
                ),
            )
            answers = {"approve": approve, "reject": reject}
            won = [d for d, r in answers.items() if r.is_success]
            assert len(won) == 1, {d: (r.status_code, r.text) for d, r in answers.items()}
            lost = next(r for d, r in answers.items() if d != won[0])
            assert lost.status_code == 409, lost.text
            assert lost.json()["error"]["decision"] == won[0]
            await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user")
            ran = sum(1 for _, key in toolbox.CALLS if key == f"{cid}:t1")
            assert ran == (1 if won[0] == "approve" else 0)
