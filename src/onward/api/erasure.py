"""Erasing deleted conversations' Temporal histories, in the background (the API's side
of `onward.client.erasure`).

`DELETE /v1/conversations/{id}` hides a conversation at once (its index row is marked
deleted) and ends it; erasing its histories needs it closed first, so that runs after
the response. A sweep erases every deleted conversation not yet erased: after each
deletion and when the API starts, so one the API stopped before erasing (or that
Temporal was unreachable for) is erased later, never forgotten.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import Depends, Request

from onward.api.deps import ApiState
from onward.client.erasure import erase

log = logging.getLogger(__name__)

ERASE_WAIT_S = 30.0
"""How long an ended conversation may take to close (cancel its sub-agents, ...)
before its runs are deleted anyway."""


class Eraser:
    """One sweep at a time per API process; several processes may sweep the same row,
    which is harmless (erasing twice deletes nothing the second time)."""

    def __init__(self, state: ApiState) -> None:
        self._state = state
        self._lock = asyncio.Lock()

    async def sweep(self) -> int:
        """Erase every deleted, not yet erased conversation; returns how many were.
        Failures are logged and left for the next sweep."""
        async with self._lock:
            try:
                pending = await self._state.index.not_erased()
                if not pending:
                    return 0
                convs = await self._state.conversations()
            except Exception as exc:  # Temporal or the index unavailable: next sweep
                log.warning("erasing deleted conversations: %s", exc)
                return 0
            erased = 0
            for cid in pending:
                try:
                    runs = await erase(convs, cid, wait_s=ERASE_WAIT_S)
                except Exception as exc:  # kept for the next sweep, with the reason
                    log.warning("erasing conversation %s failed: %s", cid, exc)
                    continue
                await self._state.index.mark_erased(cid)
                log.info("erased conversation %s (%d workflow runs)", cid, runs)
                erased += 1
            return erased


def get_eraser(request: Request) -> Eraser:
    eraser = request.app.state.eraser
    assert isinstance(eraser, Eraser)
    return eraser


EraserDep = Annotated[Eraser, Depends(get_eraser)]
