"""Bad input gets a 4xx with a reason, and nothing reaches the conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator

from onward.agent.decisions import AskUser
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, ApiFactory, api_settings


async def test_oversized_and_invalid_requests_are_refused_with_reasons(api: ApiFactory) -> None:
    model = ScriptedModel(lambda request: AskUser(text="yes?"))
    async with api(model, api_config=api_settings(max_body_bytes=1024), max_message_chars=20) as a:
        created = await a.http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "hi"}, headers=ALICE
        )
        cid = created.json()["id"]
        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
        messages = f"/v1/conversations/{cid}/messages"

        declared = await a.http.post(messages, json={"text": "x" * 2000}, headers=ALICE)
        assert declared.status_code == 413
        assert declared.json() == {
            "error": {
                "code": "payload_too_large",
                "reason": "the request body is larger than 1024 bytes",
            }
        }

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"text": "'
            for _ in range(10):
                yield b"y" * 200
            yield b'"}'

        chunked = await a.http.post(
            messages, content=chunks(), headers={**ALICE, "Content-Type": "application/json"}
        )
        assert "content-length" not in chunked.request.headers  # counted as it arrives
        assert chunked.status_code == 413
        assert chunked.json()["error"]["code"] == "payload_too_large"

        long = await a.http.post(messages, json={"text": "z" * 21}, headers=ALICE)
        assert long.status_code == 422
        assert long.json() == {
            "error": {
                "code": "message_too_long",
                "reason": "the message has 21 characters; the limit is 20",
            }
        }
        long_first = await a.http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "z" * 21}, headers=ALICE
        )
        assert long_first.status_code == 422
        assert long_first.json()["error"]["code"] == "message_too_long"

        blank = await a.http.post(messages, json={"text": "   "}, headers=ALICE)
        assert blank.status_code == 422 and blank.json()["error"]["code"] == "empty_message"
        missing = await a.http.post(messages, json={}, headers=ALICE)
        assert missing.status_code == 422
        assert missing.json()["error"] == {
            "code": "invalid_request",
            "reason": "text: Field required",
        }
        extra = await a.http.post(messages, json={"text": "ok", "owner": "bob"}, headers=ALICE)
        assert extra.status_code == 422 and "owner" in extra.json()["error"]["reason"]
        broken = await a.http.post(
            messages, content=b"{not json", headers={**ALICE, "Content-Type": "application/json"}
        )
        assert broken.status_code == 422
        assert broken.json()["error"]["reason"].startswith("the request body is not valid JSON")

        unknown_goal = await a.http.post(
            "/v1/conversations", json={"goal": "no-such-goal"}, headers=ALICE
        )
        assert unknown_goal.status_code == 422
        assert unknown_goal.json()["error"]["code"] == "unknown_goal"
        assert "no goal named `no-such-goal`" in unknown_goal.json()["error"]["reason"]

        snap = await a.convs.snapshot(cid)
    # None of the refused requests reached the conversation.
    assert snap.message_count == 2 and snap.turns == 1 and len(model.calls) == 1


async def test_unknown_conversation_is_404_on_every_route(api: ApiFactory) -> None:
    async with api(ScriptedModel([])) as a:
        base = "/v1/conversations/conv-unknown"
        for method, path, body in (
            ("GET", base, None),
            ("GET", f"{base}/events", None),
            ("DELETE", base, None),
            ("POST", f"{base}/messages", {"text": "hi"}),
            ("POST", f"{base}/approvals/c1", {"decision": "reject", "args_hash": "x"}),
            ("POST", f"{base}/budget", {"max_tokens": 5}),
        ):
            response = await a.http.request(method, path, json=body, headers=ALICE)
            assert response.status_code == 404, (method, path)
            assert response.json() == {
                "error": {"code": "not_found", "reason": "no conversation `conv-unknown`"}
            }
        nowhere = await a.http.get("/v1/nowhere", headers=ALICE)
        assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "not_found"
