"""The web page's session: a token exchanged for an HttpOnly, SameSite=Strict cookie
that authenticates like the bearer header, and is refused on a request that changes
something when another site sent it."""

from __future__ import annotations

from typing import get_args

from onward.agent.contracts import Status
from onward.agent.decisions import AskUser
from onward.agent.events import EventType
from onward.api.auth import TokenBook
from onward.api.routers.system import STATUS_WORDS
from onward.api.session import COOKIE_NAME, issue, user_for_cookie
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, ApiFactory

BOOK = TokenBook({"alice-token": "alice", "bob-token": "bob"})


def test_a_cookie_names_its_user_until_it_expires_or_its_token_goes() -> None:
    cookie = issue("alice-token", "alice", now=1_000.0)
    assert "alice-token" not in cookie.value
    assert user_for_cookie(BOOK, cookie.value, now=1_001.0) == "alice"
    assert user_for_cookie(BOOK, cookie.value, now=1_000.0 + cookie.max_age + 1) is None
    assert user_for_cookie(TokenBook({"rotated": "alice"}), cookie.value, now=1_001.0) is None
    # A cookie edited to name another user (or mangled) names nobody.
    _, expires, mac = cookie.value.split(".")
    forged = f"{issue('x', 'bob').value.split('.')[0]}.{expires}.{mac}"
    for bad in (forged, "", "a.b", "a.1.c", cookie.value + "0", "!!!.1.x"):
        assert user_for_cookie(BOOK, bad, now=1_001.0) is None, bad


def test_every_status_has_words() -> None:
    assert set(STATUS_WORDS) == set(get_args(Status))


async def test_signed_in_browser_uses_the_cookie_and_other_sites_cannot(
    api: ApiFactory,
) -> None:
    async with api(ScriptedModel(lambda request: AskUser(text="yes?"))) as a:
        bad = await a.http.post("/session", json={"token": "nope"})
        assert bad.status_code == 401 and COOKIE_NAME not in bad.cookies
        signed = await a.http.post(
            "/session", json={"token": "alice-token"}, headers={"Origin": "http://api"}
        )
        assert signed.status_code == 200 and signed.json() == {"user": "alice"}
        set_cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie
        assert "path=/" in set_cookie and "alice-token" not in set_cookie
        cookie = {COOKIE_NAME: signed.cookies[COOKIE_NAME]}
        a.http.cookies.clear()

        jar = {"Cookie": f"{COOKIE_NAME}={cookie[COOKIE_NAME]}"}
        me = await a.http.get("/v1/me", headers=jar)
        assert me.json() == {"user": "alice"}
        same = {**jar, "Origin": "http://api", "Sec-Fetch-Site": "same-origin"}
        created = await a.http.post("/v1/conversations", json={"goal": "test-math"}, headers=same)
        assert created.status_code == 201, created.text
        cid = created.json()["id"]
        listed = await a.http.get("/v1/conversations", headers=ALICE)
        assert cid in [c["id"] for c in listed.json()["conversations"]]

        # The same cookie on a request another site's page made: refused, nothing done.
        for headers in (
            {"Origin": "http://evil.example"},
            {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
            {"Sec-Fetch-Site": "same-site"},
            {"Origin": "null"},
        ):
            refused = await a.http.post(
                f"/v1/conversations/{cid}/messages",
                json={"text": "transfer everything"},
                headers={**jar, **headers},
            )
            assert refused.status_code == 403, headers
            assert refused.json()["error"]["code"] == "cross_site_request"
            login = await a.http.post("/session", json={"token": "alice-token"}, headers=headers)
            assert login.status_code == 403
        snap = await a.convs.snapshot(cid)
        assert [m for m in snap.messages if m.kind == "user"] == []
        # Bearer clients (the CLI) are not browsers: no Origin check for them.
        sent = await a.http.post(
            f"/v1/conversations/{cid}/messages",
            json={"text": "hello"},
            headers={**ALICE, "Origin": "http://evil.example"},
        )
        assert sent.status_code == 202

        out = await a.http.delete("/session", headers=same)
        assert out.status_code == 204
        assert COOKIE_NAME in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]


async def test_info_carries_the_servers_vocabulary(api: ApiFactory) -> None:
    async with api(ScriptedModel(lambda request: AskUser(text="yes?"))) as a:
        words = (await a.http.get("/v1/info", headers=ALICE)).json()["vocabulary"]
        assert words["event_types"] == list(get_args(EventType))
        assert words["statuses"] == list(get_args(Status))
        assert words["status_words"]["retrying_model"] == "retrying the model"
        assert set(words["busy_statuses"]) <= set(words["statuses"])
        assert "delta" in words["stream_events"] and "worker" in words["stream_events"]
