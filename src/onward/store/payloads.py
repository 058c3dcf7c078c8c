"""A Temporal `ExternalStorage` driver that keeps large payloads on local disk.

Transcripts and tool results can outgrow what history should hold; payloads above
the threshold are written here, content-addressed (sha256), and history keeps only
a small reference. Content addressing makes a retried store idempotent.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    StorageDriver,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from onward.exceptions import OnwardRuntimeError


class LocalPayloadDriver(StorageDriver):
    """Stores payloads as files under `root`, named by their sha256."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def name(self) -> str:
        return "onward-local"

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def _write(self, payload: Payload) -> StorageDriverClaim:
        data = payload.SerializeToString()
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # atomic: readers never see half a payload
        return StorageDriverClaim(claim_data={"sha256": digest})

    def _read(self, claim: StorageDriverClaim) -> Payload:
        digest = claim.claim_data["sha256"]
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise OnwardRuntimeError(
                f"stored payload {digest} is missing from {self.root}; was the data dir "
                "moved or erased?"
            ) from exc
        payload = Payload()
        payload.ParseFromString(data)
        return payload

    async def store(
        self, context: StorageDriverStoreContext, payloads: Sequence[Payload]
    ) -> list[StorageDriverClaim]:
        return await asyncio.to_thread(lambda: [self._write(p) for p in payloads])

    async def retrieve(
        self, context: StorageDriverRetrieveContext, claims: Sequence[StorageDriverClaim]
    ) -> list[Payload]:
        return await asyncio.to_thread(lambda: [self._read(c) for c in claims])
