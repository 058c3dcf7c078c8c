"""One reader of a conversation's event stream per API process, shared by every client.

Reading a workflow stream holds a long-poll Temporal update on the workflow, and
Temporal allows only a few updates in flight per workflow (10 by default). One
update per SSE client would let a handful of browser tabs, or one client in a
reconnect loop, use them all, and then the user's own message or approval is
refused. So each conversation has one `_Feed`: a single poller that appends items to
a buffer, and any number of subscribers that read the buffer from their own offset.

A subscriber asking for items older than what its feed has read (the feed started
later, or dropped them) gets those with queries, which hold nothing on the workflow,
and then continues from the buffer. A feed whose last subscriber left stays a while
(`linger_s`), so a reconnecting client finds it, and then stops.

While a read goes unanswered the feed also watches whether any worker runs the
conversation (`onward.api.worker_watch`) and tells every subscriber when that
changes, as a `WorkerStatus` between the items.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from temporalio.client import Client

from onward.api.worker_watch import WorkerProbe, WorkerStatus, worker_answers
from onward.client.streaming import StreamItem, conversation_events, retained_events
from onward.exceptions import StreamLagged

Events = Callable[[Client, str, int], AsyncIterator[StreamItem]]
Retained = Callable[[Client, str, int, int], AsyncIterator[StreamItem]]


@dataclass(eq=False)
class _Feed:
    conversation_id: str
    start: int
    """The offset the poller started reading from."""
    items: list[StreamItem] = field(default_factory=list[StreamItem])
    offsets: list[int] = field(default_factory=list[int])
    done: bool = False
    error: BaseException | None = None
    cursors: dict[int, int] = field(default_factory=dict[int, int])
    """Subscriber -> the next offset it needs (items below every cursor may go)."""
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    wanted: asyncio.Event = field(default_factory=asyncio.Event)
    """Set while the feed has subscribers."""
    task: asyncio.Task[None] | None = None
    linger: asyncio.TimerHandle | None = None
    polling: bool | None = None
    """Whether a worker answers this conversation's reads (None: not asked yet)."""
    waiting_since: float | None = None
    """Loop time the read in flight was sent at (None: no read in flight)."""

    @property
    def floor(self) -> int:
        """The lowest offset the feed can still serve from its buffer."""
        return self.offsets[0] if self.offsets else self.start

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def append(self, item: StreamItem, keep: int) -> None:
        if self.offsets and item.offset <= self.offsets[-1]:
            return  # a poller never goes back, but a duplicate must not be served twice
        self.items.append(item)
        self.offsets.append(item.offset)
        if len(self.items) > keep:
            self._trim(keep)
        self.notify()

    def _trim(self, keep: int) -> None:
        # The newest `keep` items stay for reconnecting clients; older ones go once
        # every subscriber has read them, or anyway past twice the budget (a subscriber
        # that far behind then reconnects from its offset).
        excess = len(self.items) - keep
        if excess <= 0:
            return
        needed = min(self.cursors.values(), default=self.offsets[-1] + 1)
        cut = min(bisect.bisect_left(self.offsets, needed), excess)
        if len(self.items) - cut > 2 * keep:
            cut = excess
        if cut > 0:
            del self.items[:cut]
            del self.offsets[:cut]


class StreamHub:
    """The feeds of one API process, by conversation id."""

    def __init__(
        self,
        *,
        linger_s: float = 30.0,
        keep_items: int = 5000,
        events: Events = conversation_events,
        retained: Retained = retained_events,
        probe: WorkerProbe = worker_answers,
        check_after_s: float = 3.0,
        recheck_s: float = 5.0,
        probe_timeout_s: float = 3.0,
    ) -> None:
        """Args:
        linger_s: How long a feed without subscribers stays for reconnecting ones.
        keep_items: Items a feed keeps for subscribers that reconnect.
        events: Reads the workflow's stream (one long-poll update at a time).
        retained: Reads retained items by query (for subscribers behind the buffer).
        probe: Asks whether a worker runs the conversation.
        check_after_s: A read unanswered this long makes the feed ask `probe`.
        recheck_s: Then ask again this often while the read stays unanswered (and
            every second while no worker answered, to report one that starts).
        probe_timeout_s: A worker that does not answer `probe` in this time is down.
        """
        self._feeds: dict[str, _Feed] = {}
        self._linger_s = linger_s
        self._keep = keep_items
        self._events = events
        self._retained = retained
        self._probe = probe
        self._check_after_s = check_after_s
        self._recheck_s = recheck_s
        self._probe_timeout_s = probe_timeout_s
        self._ids = itertools.count()

    def pollers(self) -> int:
        """Feeds with a poller running (each holds at most one Temporal update)."""
        return sum(1 for f in self._feeds.values() if f.task is not None and not f.task.done())

    async def subscribe(
        self, client: Client, conversation_id: str, from_offset: int
    ) -> AsyncIterator[StreamItem | WorkerStatus]:
        """The conversation's items from `from_offset` on, until it has ended and every
        item was read; raises what the poller raised, or `StreamLagged`.

        A `WorkerStatus(polling=False)` comes while no worker answers (at once for a
        subscriber that joins then), and `WorkerStatus(polling=True)` after it once
        one does."""
        feed = self._feed(client, conversation_id, from_offset)
        me = next(self._ids)
        feed.cursors[me] = from_offset
        feed.wanted.set()
        try:
            cursor = from_offset
            if cursor < feed.floor:
                # Older than the buffer: read those by query, pinned below the buffer.
                floor = feed.floor
                feed.cursors[me] = floor
                async for item in self._retained(client, conversation_id, cursor, floor):
                    yield item
                    cursor = item.offset + 1
                cursor = max(cursor, floor)
            told: bool | None = None
            while True:
                changed = feed.changed
                if feed.polling is False and told is not False:
                    told = False
                    yield WorkerStatus(polling=False)
                    continue
                if feed.polling is True and told is False:
                    told = True
                    yield WorkerStatus(polling=True)
                    continue
                if cursor < feed.floor:
                    raise StreamLagged(
                        f"this stream fell behind by more than {self._keep} events; "
                        f"reconnect from offset {cursor - 1}"
                    )
                at = bisect.bisect_left(feed.offsets, cursor)
                if at < len(feed.items):
                    item = feed.items[at]
                    cursor = item.offset + 1
                    feed.cursors[me] = cursor
                    yield item
                    continue
                if feed.done:
                    if feed.error is not None:
                        raise feed.error
                    return
                await changed.wait()
        finally:
            feed.cursors.pop(me, None)
            if not feed.cursors:
                feed.wanted.clear()
                self._linger(feed)

    def _feed(self, client: Client, conversation_id: str, from_offset: int) -> _Feed:
        feed = self._feeds.get(conversation_id)
        if feed is not None:
            if feed.linger is not None:
                feed.linger.cancel()
                feed.linger = None
            return feed
        feed = _Feed(conversation_id=conversation_id, start=from_offset)
        feed.task = asyncio.create_task(
            self._poll(client, feed), name=f"stream-feed-{conversation_id}"
        )
        self._feeds[conversation_id] = feed
        return feed

    async def _poll(self, client: Client, feed: _Feed) -> None:
        items = aiter(self._events(client, feed.conversation_id, feed.start))
        loop = asyncio.get_running_loop()
        watcher = asyncio.create_task(
            self._watch_worker(client, feed), name=f"stream-worker-{feed.conversation_id}"
        )
        try:
            while True:
                # The next item may mean the next long-poll update on the workflow: a
                # feed nobody reads (lingering) sends none, so that it holds nothing
                # that keeps a workflow from closing, and it costs nothing while idle.
                await feed.wanted.wait()
                feed.waiting_since = loop.time()
                try:
                    item = await anext(items)
                except StopAsyncIteration:
                    break
                finally:
                    feed.waiting_since = None
                # Only workflow code answers a read: a worker is running it.
                self._set_polling(feed, True)
                feed.append(item, self._keep)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to every subscriber, which reports it
            feed.error = exc
            # A new subscriber starts a fresh poller rather than inherit the failure.
            if self._feeds.get(feed.conversation_id) is feed:
                del self._feeds[feed.conversation_id]
        finally:
            watcher.cancel()
            feed.done = True
            feed.notify()

    async def _watch_worker(self, client: Client, feed: _Feed) -> None:
        """Ask whether a worker runs the conversation while a read goes unanswered."""
        loop = asyncio.get_running_loop()
        last_asked = -float("inf")
        while True:
            # Once no worker answered, ask every second so that one starting is
            # reported promptly; otherwise every `recheck_s`.
            every = 1.0 if feed.polling is False else self._recheck_s
            since = feed.waiting_since
            now = loop.time()
            due = (
                since is not None
                and feed.wanted.is_set()
                and now - since >= self._check_after_s
                and now - last_asked >= every
            )
            if not due:
                await asyncio.sleep(0.5)
                continue
            last_asked = now
            try:
                answered = await self._probe(client, feed.conversation_id, self._probe_timeout_s)
            except Exception:  # a failed question says nothing about the worker
                answered = None
            # A read answered meanwhile is the better evidence: it set `polling`.
            if answered is not None and feed.waiting_since == since:
                self._set_polling(feed, answered)

    def _set_polling(self, feed: _Feed, polling: bool) -> None:
        if feed.polling is polling:
            return
        if feed.polling is None and polling:
            feed.polling = True  # nothing to tell: nobody heard otherwise
            return
        feed.polling = polling
        feed.notify()

    def _linger(self, feed: _Feed) -> None:
        if self._feeds.get(feed.conversation_id) is not feed:
            return
        loop = asyncio.get_running_loop()
        feed.linger = loop.call_later(self._linger_s, self._drop, feed)

    def _drop(self, feed: _Feed) -> None:
        if feed.cursors or self._feeds.get(feed.conversation_id) is not feed:
            return
        del self._feeds[feed.conversation_id]
        if feed.task is not None and not feed.task.done():
            feed.task.cancel()

    async def close(self) -> None:
        """Stop every poller (the API is shutting down)."""
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            if feed.linger is not None:
                feed.linger.cancel()
            if feed.task is not None:
                feed.task.cancel()
        for feed in feeds:
            if feed.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await feed.task
