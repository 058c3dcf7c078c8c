"""Starting and awaiting many conversations from the harness (the client side)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from onward.client.conversations import Conversations

START_CONCURRENCY = 100
"""Concurrent workflow starts: enough to keep the server busy, few enough that no
start waits long enough to time out on a loaded 2-core machine."""


async def start_all(
    convs: Conversations, ids: Sequence[str], goal: str, first_message: str | None
) -> None:
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(cid: str) -> None:
        async with gate:
            await convs.start(goal, first_message=first_message, conversation_id=cid)

    await asyncio.gather(*(one(cid) for cid in ids))


async def wait_all(convs: Conversations, ids: Sequence[str], timeout_s: float) -> None:
    """Every conversation's result, or TimeoutError after `timeout_s` in total."""
    async with asyncio.timeout(timeout_s):
        await asyncio.gather(*(convs.result(cid) for cid in ids))
