"""Token deltas of one model call on their way to the conversation's event stream.

Deltas reach the workflow as signals, in batches, and every batch costs a workflow
task. A call that answers within one batch interval sends none: its result carries
the same text at the moment the first batch would have gone out, so the signal would
cost a workflow task and show a watcher nothing sooner.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from types import TracebackType
from typing import Self

from temporalio.contrib.workflow_streams import TopicHandle, WorkflowStreamClient

from onward.agent.events import TOPIC_DELTA, TokenDelta


class DeltaRelay:
    """Holds a call's deltas for its first batch interval, then streams them.

    Use as `async with DeltaRelay(interval) as relay:` inside a model activity."""

    def __init__(self, interval: timedelta) -> None:
        self._interval = interval
        self._window_ends = time.monotonic() + interval.total_seconds()
        self._held: list[TokenDelta] = []
        self._stream: WorkflowStreamClient | None = None
        self._deltas: TopicHandle[TokenDelta] | None = None
        self._opening: asyncio.Task[WorkflowStreamClient] | None = None

    async def __aenter__(self) -> Self:
        return self

    async def open(self) -> WorkflowStreamClient:
        """The stream, opened now (held deltas go out with its first batch)."""
        if self._stream is None:
            stream = WorkflowStreamClient.from_within_activity(batch_interval=self._interval)
            await stream.__aenter__()
            self._stream = stream
            self._deltas = stream.topic(TOPIC_DELTA, type=TokenDelta)
            for delta in self._held:
                self._deltas.publish(delta)
            self._held.clear()
        return self._stream

    def publish(self, delta: TokenDelta) -> None:
        if self._deltas is not None:
            self._deltas.publish(delta)
            return
        self._held.append(delta)
        if self._opening is None:
            self._opening = asyncio.create_task(self._open_when_the_window_ends())

    async def _open_when_the_window_ends(self) -> WorkflowStreamClient:
        # Not a wait for a result: the window is how long deltas may be held back.
        await asyncio.sleep(max(0.0, self._window_ends - time.monotonic()))
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        opening = self._opening
        if opening is not None and not opening.done():
            # Finished (or failed) within the window: nothing to stream.
            opening.cancel()
            self._held.clear()
        elif opening is not None and not opening.cancelled():
            opening.result()  # a stream that could not open fails the call, as before
        if self._stream is not None:
            await self._stream.__aexit__(exc_type, exc, tb)
