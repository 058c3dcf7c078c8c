"""Per-user limits: writes per minute, open conversations, open event streams.

Each is a setting (`ONWARD_USER_*`, 0 = no limit) and each refusal is a 429 with a
`Retry-After` and a reason that names the limit. The write rate and the stream count
are kept per API process (in memory); the open-conversation count comes from the
owner index, so it holds across processes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from onward.api.index import ConversationIndex
from onward.client.conversations import Conversations
from onward.exceptions import ApiError

_DESCRIBE_AT_ONCE = 16
"""Workflows described at a time when recounting a user's open conversations."""


def too_many(code: str, reason: str, retry_after_s: float) -> ApiError:
    """A 429 whose `Retry-After` says when trying again can work."""
    seconds = max(1, math.ceil(retry_after_s))
    return ApiError(429, code, reason, headers={"Retry-After": str(seconds)})


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class WriteRate:
    """A token bucket per user: `per_minute` writes a minute, bursts up to as many."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict[str, _Bucket])

    def take(self, user: str) -> None:
        """Count one write by `user`; 429 when their bucket is empty."""
        if self.per_minute <= 0:
            return
        now = self.clock()
        rate = self.per_minute / 60.0
        bucket = self._buckets.get(user) or _Bucket(float(self.per_minute), now)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        self._buckets[user] = bucket
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / rate
            raise too_many(
                "rate_limited",
                f"too many requests: at most {self.per_minute} POST requests a minute per user "
                f"(ONWARD_USER_WRITES_PER_MINUTE); try again in {math.ceil(wait)} s",
                wait,
            )
        bucket.tokens -= 1.0


class StreamSlot:
    """One open event stream of a user; released once, by whoever ends it first."""

    def __init__(self, streams: StreamSlots, user: str) -> None:
        self._streams = streams
        self._user = user
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._streams.release(self._user)


@dataclass
class StreamSlots:
    """How many event streams each user holds open on this process."""

    per_user: int
    _open: dict[str, int] = field(default_factory=dict[str, int])

    def acquire(self, user: str) -> StreamSlot:
        """A slot for one more stream of `user`; 429 when they hold `per_user` already."""
        held = self._open.get(user, 0)
        if self.per_user > 0 and held >= self.per_user:
            raise too_many(
                "too_many_streams",
                f"you have {held} event streams open; the limit is {self.per_user} per user "
                "(ONWARD_USER_MAX_STREAMS): close a tab or stream first",
                5,
            )
        self._open[user] = held + 1
        return StreamSlot(self, user)

    def release(self, user: str) -> None:
        left = self._open.get(user, 0) - 1
        if left > 0:
            self._open[user] = left
        else:
            self._open.pop(user, None)

    def held(self, user: str) -> int:
        return self._open.get(user, 0)


async def check_open_conversations(
    index: ConversationIndex, convs: Conversations, user: str, limit: int
) -> None:
    """429 when `user` has `limit` conversations open already.

    The index knows which conversations ended only when someone noticed, so at the
    limit the candidates' workflows are asked, and those that have closed are marked.
    """
    if limit <= 0:
        return
    candidates = await index.open_ids(user)
    if len(candidates) < limit:
        return
    gate = asyncio.Semaphore(_DESCRIBE_AT_ONCE)

    async def closed(cid: str) -> bool:
        async with gate:
            return not await convs.is_open(cid)

    flags = await asyncio.gather(*(closed(cid) for cid in candidates))
    ended = [cid for cid, flag in zip(candidates, flags, strict=True) if flag]
    await index.mark_closed(ended)
    still_open = len(candidates) - len(ended)
    if still_open >= limit:
        raise too_many(
            "too_many_conversations",
            f"you have {still_open} conversations open; the limit is {limit} per user "
            "(ONWARD_USER_MAX_OPEN_CONVERSATIONS): end or delete one first",
            60,
        )
