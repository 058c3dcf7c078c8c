"""Settling creates that an API process did not finish (see `onward.api.creating`).

A `pending` row older than a grace period (no live create takes that long) is
settled by asking Temporal for its workflow:

- it exists: the start went through before the API died, so the conversation is
  made `active` and its owner sees it (it was started for them; hiding it until the
  idle timeout is what must not happen);
- it does not: the row is removed. The create was never acknowledged (no 201 went
  out), so nothing the client was told is lost, and a retry with the same
  `Idempotency-Key` creates it afresh. Starting it instead would run a request
  whose client may have given up or retried without a key (a second conversation),
  long after it was made.

Runs when the API starts and then periodically; several API processes reconciling
the same row is harmless (activating is idempotent; removal only deletes a row that
is still pending).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from onward.api.deps import ApiState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settled:
    activated: list[str]
    removed: list[str]


async def reconcile(state: ApiState, grace: timedelta | None = None) -> Settled:
    """Settle every pending row older than `grace` (default: the configured one)."""
    older_than = grace if grace is not None else timedelta(seconds=state.api.pending_create_grace_s)
    pending = await state.index.pending(older_than)
    if not pending:
        return Settled([], [])
    convs = await state.conversations()
    activated: list[str] = []
    removed: list[str] = []
    for cid in pending:
        if await convs.exists(cid):
            await state.index.activate(cid)
            activated.append(cid)
        elif await state.index.remove_pending(cid):
            removed.append(cid)
    if activated or removed:
        log.warning(
            "settled unfinished creates: %d activated (%s), %d removed (%s)",
            len(activated),
            ", ".join(activated),
            len(removed),
            ", ".join(removed),
        )
    return Settled(activated, removed)


async def reconcile_forever(state: ApiState, every_s: float) -> None:
    """`reconcile` now and every `every_s` seconds; failures (Temporal down) are
    logged and retried on the next round."""
    while True:
        try:
            await reconcile(state)
        except Exception as exc:  # retried next round
            log.warning("settling unfinished creates failed (retrying): %s", exc)
        await asyncio.sleep(every_s)
