"""Per-user limits: POSTs per minute and open conversations, each a 429 with
Retry-After and a reason naming the limit; other users are not affected."""

from __future__ import annotations

from pathlib import Path

from onward.agent.decisions import AskUser
from onward.api.quotas import WriteRate
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, BOB, ApiFactory, api_settings

CREATE = {"goal": "test-math", "message": "hi"}


def _model() -> ScriptedModel:
    return ScriptedModel(lambda request: AskUser(text="yes?"))


async def test_writes_per_minute_are_limited_per_user(api: ApiFactory) -> None:
    async with api(_model(), api_config=api_settings(user_writes_per_minute=3)) as a:
        answers = [
            (await a.http.post("/v1/conversations", json=CREATE, headers=ALICE)).status_code
            for _ in range(3)
        ]
        assert answers == [201, 201, 201]
        refused = await a.http.post("/v1/conversations", json=CREATE, headers=ALICE)
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["code"] == "rate_limited"
        assert "3 POST requests a minute" in error["reason"]
        assert 1 <= int(refused.headers["retry-after"]) <= 20
        # Reads are not writes, and bob has his own allowance.
        assert (await a.http.get("/v1/conversations", headers=ALICE)).status_code == 200
        assert (await a.http.post("/v1/conversations", json=CREATE, headers=BOB)).status_code == 201


def test_the_write_bucket_refills_with_time() -> None:
    now = [1000.0]
    rate = WriteRate(per_minute=2, clock=lambda: now[0])
    rate.take("ann")
    rate.take("ann")
    try:
        rate.take("ann")
        raise AssertionError("a third write within the same instant must be refused")
    except Exception as exc:  # the route's ApiError
        assert getattr(exc, "status", None) == 429
        assert getattr(exc, "headers", {})["Retry-After"] == "30"
    now[0] += 30  # one write's worth of refill at 2 a minute
    rate.take("ann")


async def test_open_conversations_are_capped_per_user(api: ApiFactory, tmp_path: Path) -> None:
    config = api_settings(user_max_open_conversations=2)
    # An index of its own: alice's conversations of other tests do not count here.
    async with api(_model(), api_config=config, data_dir=tmp_path) as a:
        first, second = [
            (
                await a.http.post(
                    "/v1/conversations", json=CREATE, headers={**ALICE, "Idempotency-Key": key}
                )
            ).json()["id"]
            for key in ("q1", "q2")
        ]
        # At the limit, a retry of a create that succeeded still gets its answer.
        retried = await a.http.post(
            "/v1/conversations", json=CREATE, headers={**ALICE, "Idempotency-Key": "q1"}
        )
        assert retried.status_code == 201 and retried.json()["id"] == first
        refused = await a.http.post("/v1/conversations", json=CREATE, headers=ALICE)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_conversations"
        assert "limit is 2 per user" in refused.json()["error"]["reason"]
        assert int(refused.headers["retry-after"]) >= 1
        assert (await a.http.post("/v1/conversations", json=CREATE, headers=BOB)).status_code == 201

        # An ended conversation no longer counts, however it ended.
        await a.convs.end(first, "ended elsewhere")
        await a.convs.result(first)
        third = await a.http.post("/v1/conversations", json=CREATE, headers=ALICE)
        assert third.status_code == 201, third.text
        ended = await a.http.post(f"/v1/conversations/{second}/end", headers=ALICE)
        assert ended.status_code == 200
        fourth = await a.http.post("/v1/conversations", json=CREATE, headers=ALICE)
        assert fourth.status_code == 201, fourth.text
        assert (
            await a.http.post("/v1/conversations", json=CREATE, headers=ALICE)
        ).status_code == 429
