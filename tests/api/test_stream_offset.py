"""A conversation's detail says which stream item it is as of (`stream_offset`), so a
client that loads the transcript and then subscribes `after` it sees each event once:
none it already has, none missed."""

from __future__ import annotations

import json

import httpx

from onward.agent.decisions import AskUser
from onward.agent.events import MessageEvent
from onward.client.streaming import retained_events
from onward.testing import ScriptedModel
from tests.api.conftest import ALICE, ApiFactory, serve
from tests.api.test_streams import streams


async def test_events_after_the_snapshot_offset_are_exactly_the_later_ones(
    api: ApiFactory,
) -> None:
    model = ScriptedModel(lambda request: AskUser(text=f"reply {len(request.messages)}"))
    async with (
        api(model) as a,
        serve(a.app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        created = await http.post(
            "/v1/conversations", json={"goal": "test-math", "message": "one"}, headers=ALICE
        )
        cid = created.json()["id"]
        await a.convs.wait_for(cid, lambda s: s.status == "waiting_for_user" and s.turns == 1)
        detail = (await http.get(f"/v1/conversations/{cid}", headers=ALICE)).json()
        offset, count = detail["stream_offset"], detail["message_count"]
        assert count == len(detail["messages"]) == 2

        # The conversation is idle: the stream holds exactly the items up to the offset,
        # and their messages are the transcript the detail returned.
        before = [i async for i in retained_events(a.convs.client, cid, 0, 10**9)]
        assert [i.offset for i in before] == list(range(offset + 1))
        indexes = [i.data.index for i in before if isinstance(i.data, MessageEvent)]
        assert indexes == list(range(count))

        async with streams(http, cid, 1, after=offset) as (tail,):
            sent = await http.post(
                f"/v1/conversations/{cid}/messages", json={"text": "two"}, headers=ALICE
            )
            assert sent.status_code == 202
            await tail.until("reply 3")
        ids = [int(e.id) for e in tail.events if e.id is not None]
        assert ids[0] == offset + 1 and ids == list(range(ids[0], ids[-1] + 1))
        said = [json.loads(e.data) for e in tail.events if e.event == "message"]
        assert [m["index"] for m in said] == [2, 3]
        assert [m["message"]["text"] for m in said] == ["two", "reply 3"]
