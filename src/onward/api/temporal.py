"""The API's Temporal connection: made lazily, re-made after a failure.

The API starts even when Temporal is down (so `/healthz` can say so) and connects
on first use.
"""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from onward.client.connect import connect
from onward.config import Settings


class TemporalConnection:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self, timeout_s: float = 5.0) -> Client:
        """A connected client; raises on failure (the next call tries again)."""
        async with self._lock:
            if self._client is None:
                self._client = await asyncio.wait_for(connect(self.settings), timeout_s)
            return self._client

    async def reachable(self, timeout_s: float = 3.0) -> tuple[bool, str | None]:
        """Whether Temporal answers a health check, and why not."""
        try:
            client = await self.client(timeout_s)
            ok = await asyncio.wait_for(client.service_client.check_health(), timeout_s)
        except Exception as exc:  # any failure means "not reachable", with its reason
            self._client = None
            return False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ok, None if ok else "health check returned not serving"
