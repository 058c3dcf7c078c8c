"""Deleting a conversation erases its Temporal history: every run of a continue-as-new
chain, at once after the deletion or, if the API stopped first, when it starts again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from onward.agent.decisions import AskUser
from onward.api.deps import ApiState
from onward.api.index import ConversationIndex
from onward.client.erasure import runs_of
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, Api, ApiFactory, wait_erased


def asking() -> ScriptedModel:
    return ScriptedModel(lambda request: AskUser(text="And then?"))


async def two_turns(a: Api) -> str:
    """A conversation that has continued as new once (one turn per run)."""
    created = await a.http.post(
        "/v1/conversations", json={"goal": "test-math", "message": "hi"}, headers=ALICE
    )
    cid = created.json()["id"]
    await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
    sent = await a.http.post(
        f"/v1/conversations/{cid}/messages", json={"text": "more"}, headers=ALICE
    )
    assert sent.status_code == 202, sent.text
    await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 2)
    return cid


def state(a: Api) -> ApiState:
    s = a.app.state.api
    assert isinstance(s, ApiState)
    return s


async def test_delete_erases_every_run(api: ApiFactory) -> None:
    async with api(asking(), turns_before_continue_as_new=1) as a:
        cid = await two_turns(a)
        runs = await runs_of(a.convs.client, cid)
        assert len(runs) >= 2 and {wid for wid, _ in runs} == {cid}

        deleted = await a.http.delete(f"/v1/conversations/{cid}", headers=ALICE)
        assert deleted.status_code == 204
        assert (await a.http.get(f"/v1/conversations/{cid}", headers=ALICE)).status_code == 404
        await wait_erased(a.convs.client, cid)
        assert cid not in await state(a).index.not_erased()
        # Deleting again is still a 404, not an error.
        again = await a.http.delete(f"/v1/conversations/{cid}", headers=ALICE)
        assert again.status_code == 404


async def test_a_deletion_not_yet_erased_is_erased_when_the_api_starts(
    api: ApiFactory,
) -> None:
    async with api(asking(), turns_before_continue_as_new=1) as a:
        cid = await two_turns(a)
        # As if the API had stopped between hiding the conversation and erasing it.
        index = state(a).index
        assert await index.mark_deleted(cid, "alice")
        assert cid in await index.not_erased()
        assert await runs_of(a.convs.client, cid)

        async with a.app.router.lifespan_context(a.app):
            await wait_erased(a.convs.client, cid)
        assert cid not in await index.not_erased()


async def test_an_index_from_before_erasure_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE conversations (conversation_id TEXT PRIMARY KEY, owner TEXT NOT NULL,"
            " goal TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,"
            " deleted INTEGER NOT NULL DEFAULT 0)"
        )
        db.execute(
            "INSERT INTO conversations VALUES ('conv-old', 'alice', 'test-math', '', "
            "'2026-01-01T00:00:00+00:00', 1)"
        )
    index = ConversationIndex(path)
    # A conversation deleted before erasure existed is erased by the next sweep.
    assert await index.not_erased() == ["conv-old"]
    await index.mark_erased("conv-old")
    assert await index.not_erased() == []
