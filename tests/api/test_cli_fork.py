"""`onward chat --fork ID@TURN` through typer's runner, against a real API and worker:
it forks, shows where the fork starts, and chats in the fork."""

from __future__ import annotations

from onward.agent.messages import UserMessage
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, ApiFactory, serve
from tests.api.test_cli import _invoke  # pyright: ignore[reportPrivateUsage]
from tests.api.test_fork_stop import adder
from tests.workflows import toolbox


async def test_chat_forks_and_chats_in_the_fork(api: ApiFactory) -> None:
    model = ScriptedModel(adder)
    async with api(model) as a, serve(a.app) as url:
        created = await a.http.post(
            "/v1/conversations",
            json={"goal": toolbox.OPEN_MATH.name, "message": "1"},
            headers=ALICE,
        )
        cid = created.json()["id"]
        await a.convs.wait_for(cid, lambda s: s.turns == 1 and s.status == "waiting_for_user")
        await a.http.post(f"/v1/conversations/{cid}/messages", json={"text": "2"}, headers=ALICE)
        await a.convs.wait_for(cid, lambda s: s.turns == 2 and s.status == "waiting_for_user")
        calls_before = len(model.calls)

        target = ["--url", url, "--token", "alice-token"]
        code, out = await _invoke(["chat", "--fork", f"{cid}@1", *target], "40\n")
        assert code == 0, out
        fid = out.split(f"(forked {cid} after turn 1: ")[1].split(")")[0]
        snap = await a.convs.wait_for(fid, lambda s: s.turns == 2)

        bad_code, bad = await _invoke(["chat", "--fork", cid, *target])
        past_code, past = await _invoke(["chat", "--fork", f"{cid}@7", *target])
    assert "you> 1" in out and "agent> = 2" in out  # the kept turn, shown once
    assert f"Forked from `{cid}`" in out
    assert "agent> = 41" in out and "agent> = 3" not in out
    assert [m.text for m in snap.messages if isinstance(m, UserMessage)] == ["1", "40"]
    assert len(model.calls) == calls_before + 2  # the fork's own turn only
    assert bad_code == 1 and "--fork takes ID@TURN" in bad
    assert past_code == 1 and "turn 7 is outside 0..2" in past
