"""The stream hub's worker watch, with the workflow stream and the probe played by the
test: when a read goes unanswered and no worker answers the probe, every subscriber
hears `polling=False` (a late one at once), and `polling=True` before the next item."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

from temporalio.client import Client

from onward.agent.events import TOPIC_EVENTS, StatusChanged
from onward.api.stream_hub import StreamHub
from onward.api.worker_watch import WorkerStatus
from onward.client.streaming import StreamItem

CLIENT = cast(Client, object())  # never used: both reads are the test's


class World:
    """A stream whose items the test releases, and a worker it switches on and off."""

    def __init__(self) -> None:
        self.items: asyncio.Queue[StreamItem] = asyncio.Queue()
        self.worker: bool | None = True
        self.probes = 0
        self._probed = asyncio.Event()

    async def events(self, _client: Client, _cid: str, start: int) -> AsyncIterator[StreamItem]:
        while True:
            yield await self.items.get()

    async def probe(self, _client: Client, _cid: str, _timeout: float) -> bool | None:
        self.probes += 1
        self._probed.set()
        return self.worker

    async def probed(self, count: int) -> None:
        """Until the probe has been asked `count` times (10 s at most)."""
        async with asyncio.timeout(10):
            while self.probes < count:
                self._probed.clear()
                await self._probed.wait()

    def release(self, offset: int) -> None:
        event = StatusChanged(status="thinking")
        self.items.put_nowait(StreamItem(offset=offset, topic=TOPIC_EVENTS, data=event))


async def _next(stream: AsyncIterator[StreamItem | WorkerStatus]) -> StreamItem | WorkerStatus:
    return await asyncio.wait_for(anext(stream), 10)


def _hub(world: World) -> StreamHub:
    return StreamHub(
        events=world.events,
        probe=world.probe,
        check_after_s=0.05,
        recheck_s=0.05,
        probe_timeout_s=0.05,
    )


async def test_subscribers_hear_the_worker_go_and_come_back_before_the_next_item() -> None:
    world = World()
    hub = _hub(world)
    first = aiter(hub.subscribe(CLIENT, "c1", 0))
    world.release(0)
    got = await _next(first)
    assert isinstance(got, StreamItem) and got.offset == 0

    world.worker = False
    assert await _next(first) == WorkerStatus(polling=False)
    assert WorkerStatus(polling=False).payload()["polling"] is False
    # A subscriber joining while no worker runs hears it at once, then the items.
    late = aiter(hub.subscribe(CLIENT, "c1", 0))
    assert await _next(late) == WorkerStatus(polling=False)
    got = await _next(late)
    assert isinstance(got, StreamItem) and got.offset == 0

    world.worker = True  # a worker starts; the item it publishes comes after the news
    world.release(1)
    for stream in (first, late):
        assert await _next(stream) == WorkerStatus(polling=True)
        got = await _next(stream)
        assert isinstance(got, StreamItem) and got.offset == 1
    assert hub.pollers() == 1
    await hub.close()


async def test_a_live_worker_makes_no_event_and_an_unknown_answer_changes_nothing() -> None:
    world = World()
    hub = _hub(world)
    stream = aiter(hub.subscribe(CLIENT, "c2", 0))
    pending = asyncio.ensure_future(_next(stream))
    # Answered probes while the read waits: nothing to tell.
    await world.probed(3)
    world.worker = None  # the probe could not ask (Temporal down, workflow gone)
    await world.probed(world.probes + 3)
    assert not pending.done()
    world.release(0)
    got = await pending
    assert isinstance(got, StreamItem) and got.offset == 0
    await hub.close()
