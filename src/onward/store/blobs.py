"""A content-addressed file store for tool attachments (images, audio, resources).

Tool results go into workflow history and every later model request; a screenshot
would bloat both. Attachments are written here under their sha256 and the result
keeps a reference (`onward-blob:sha256/<hex>`). Writing the same bytes twice (a
retried activity) leaves one file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from onward.exceptions import OnwardRuntimeError

URI_PREFIX = "onward-blob:sha256/"


class BlobStore:
    """Files under `root`, named by the sha256 of their bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Store `data`; returns its sha256 (hex)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        return digest

    def get(self, ref: str) -> bytes:
        """The bytes of a digest or an `onward-blob:` URI."""
        digest = ref.removeprefix(URI_PREFIX)
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise OnwardRuntimeError(
                f"attachment {digest} is missing from {self.root}; was the data dir moved?"
            ) from exc


def blob_uri(digest: str) -> str:
    return URI_PREFIX + digest
