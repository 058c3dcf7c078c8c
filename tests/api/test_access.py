"""Who may do what: bearer tokens, owner isolation, the local token, CORS."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import httpx

from onward.agent.decisions import AskUser
from onward.api.app import create_app
from onward.api.auth import signin_url
from onward.api.settings import ApiSettings
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, BOB, ApiFactory, api_settings
from tests.conftest import make_settings


def _routes(cid: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    base = f"/v1/conversations/{cid}"
    return [
        ("GET", base, None),
        ("GET", f"{base}/events", None),
        ("POST", f"{base}/messages", {"text": "hello"}),
        ("POST", f"{base}/approvals/c1", {"decision": "approve", "args_hash": "x"}),
        ("POST", f"{base}/budget", {"max_tokens": 10}),
        ("DELETE", base, None),
    ]


async def test_other_users_conversations_are_indistinguishable_from_missing_ones(
    api: ApiFactory,
) -> None:
    async with api(ScriptedModel(lambda request: AskUser(text="yes?"))) as a:
        created = await a.http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "mine"}, headers=ALICE
        )
        cid = created.json()["id"]
        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)

        for method, path, body in _routes(cid):
            theirs = await a.http.request(method, path, json=body, headers=BOB)
            missing = await a.http.request(
                method, path.replace(cid, "conv-doesnotexist"), json=body, headers=BOB
            )
            assert theirs.status_code == missing.status_code == 404, (method, path)
            assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
            assert theirs.json()["error"]["reason"] == f"no conversation `{cid}`"
        # The query-string token of the events route does not bypass ownership either.
        by_query = await a.http.get(f"/v1/conversations/{cid}/events?token=bob-token")
        assert by_query.status_code == 404

        bobs = (await a.http.get("/v1/conversations", headers=BOB)).json()["conversations"]
        assert cid not in [c["id"] for c in bobs]
        # Bob's attempts changed nothing: alice's conversation is untouched.
        snap = await a.convs.snapshot(cid)
        assert snap.status == "waiting_for_user" and snap.message_count == 2
        assert (await a.http.get(f"/v1/conversations/{cid}", headers=ALICE)).status_code == 200


async def test_requests_without_a_valid_token_are_refused(api: ApiFactory) -> None:
    async with api(ScriptedModel([])) as a:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            response = await a.http.get("/v1/conversations", headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["code"] == "unauthorized"
        # `?token=` is for EventSource on the events route only.
        assert (await a.http.get("/v1/me?token=alice-token")).status_code == 401
        unauthenticated_stream = await a.http.get("/v1/conversations/x/events")
        assert unauthenticated_stream.status_code == 401
        me = await a.http.get("/v1/me", headers=BOB)
        assert me.status_code == 200 and me.json() == {"user": "bob"}


async def test_local_user_token_is_created_once_private_and_signs_in(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    local = ApiSettings(_env_file=None)  # type: ignore[call-arg]
    app = create_app(settings, api_settings=local)
    token_file = tmp_path / "api-token"
    token = token_file.read_text().strip()
    assert len(token) >= 32
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    again = create_app(settings, api_settings=local)
    url = signin_url(settings, local)
    assert url == f"http://127.0.0.1:8000/?token={token}"
    assert token_file.read_text().strip() == token  # not regenerated

    for each in (app, again):
        transport = httpx.ASGITransport(each)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            me = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json() == {"user": "local"}
            assert (await http.get("/v1/me", headers=ALICE)).status_code == 401


async def test_signin_url_is_absent_when_tokens_are_configured(tmp_path: Path) -> None:
    assert signin_url(make_settings(tmp_path), api_settings()) is None
    assert not (tmp_path / "api-token").exists()


async def test_cors_is_closed_by_default_and_opens_for_configured_origins(
    tmp_path: Path,
) -> None:
    preflight = {
        "Origin": "http://ui.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    for origins, allowed in (([], False), (["http://ui.example"], True)):
        app = create_app(make_settings(tmp_path), api_settings=api_settings(cors_origins=origins))
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            response = await http.options("/v1/conversations", headers=preflight)
            me = await http.get("/v1/me", headers={**ALICE, "Origin": "http://ui.example"})
        got = response.headers.get("access-control-allow-origin")
        assert (got == "http://ui.example") is allowed, (origins, response.headers)
        assert ("access-control-allow-origin" in me.headers) is allowed
