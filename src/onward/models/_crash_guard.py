"""Stop a model call that keeps killing its worker.

llama.cpp runs inside the worker process: when it crashes (a segfault on a grammar it
cannot handle, an out-of-memory kill) the worker dies, Temporal retries the activity
on the restarted worker, and the same call crashes it again. A marker file is written
before entering the native code and removed after it returns or raises; markers left
behind are attempts that died. Once a call has left `limit` of them, the next attempt
refuses to run it and reports why, so the user is told instead of waiting forever.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path

from onward.exceptions import ModelPermanentError

DEFAULT_LIMIT = 2
"""Crashes of one call before it is refused (the third attempt reports)."""


def call_key(*parts: str) -> str:
    """A file-name-safe key for one model call, the same for every retry of it."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


class CrashGuard:
    """Counts attempts of a call that never came back (see the module docstring).

    Args:
        directory: Where the markers live (under the data dir); None turns the guard off.
        limit: Crashes after which the call is refused.
    """

    def __init__(self, directory: Path | None, limit: int = DEFAULT_LIMIT) -> None:
        self._dir = directory
        self._limit = max(1, limit)

    def crashes(self, key: str) -> int:
        """Attempts of the call `key` that died inside the guarded code."""
        if self._dir is None or not self._dir.is_dir():
            return 0
        return sum(1 for _ in self._dir.glob(f"{key}.*.attempt"))

    @contextmanager
    def attempt(self, key: str, what: str = "this call") -> Generator[None]:
        """Run the guarded code for call `key`, or refuse if it crashed too often.

        Raises:
            ModelPermanentError: `limit` earlier attempts of this call died.
        """
        if self._dir is None:
            yield
            return
        crashed = self.crashes(key)
        if crashed >= self._limit:
            raise ModelPermanentError(
                f"the local model crashed the worker {crashed} times on {what}, so it is "
                "not tried again; try another model (ONWARD_MODEL) or rephrase the request"
            )
        self._dir.mkdir(parents=True, exist_ok=True)
        marker = self._dir / f"{key}.{uuid.uuid4().hex[:8]}.attempt"
        marker.write_text(f"pid {os.getpid()}\n")
        try:
            yield
        finally:
            marker.unlink(missing_ok=True)
