"""Unguessable, retry-stable record ids: an HMAC of the idempotency key.

A record id must be the same for every attempt of one tool call (so a retry finds
what the first attempt wrote) and must not be computable by anyone who knows the
conversation and call ids: a pay link (`/pay/<invoice id>`) needs no sign-in. So ids
are `<prefix>_` + HMAC-SHA256(key file, idempotency key), with a random key created
on first use next to the ledger (`ledger.key`, mode 0600) and never shown anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from onward.exceptions import LedgerError

KEY_FILENAME = "ledger.key"
KEY_BYTES = 32
ID_HEX_CHARS = 32
"""128 bits of the HMAC: far beyond guessing, short enough for a URL."""


def load_or_create_key(path: Path) -> bytes:
    """The key in `path`, created (atomically, once across processes) if missing.

    Raises:
        LedgerError: the file exists but does not hold a key.
    """
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = _create(path)
    if len(key) < KEY_BYTES:
        raise LedgerError(
            f"{str(path)!r} does not hold a ledger key ({len(key)} bytes); "
            "move it away and a new key is created (existing records keep their ids)"
        )
    return key


def write_key(path: Path, key: bytes) -> None:
    """Install `key` before first use, e.g. so two data dirs give the same ids (the
    chaos run compares an undisturbed run with a disturbed one)."""
    if len(key) < KEY_BYTES:
        raise LedgerError(f"a ledger key needs at least {KEY_BYTES} bytes")
    path.parent.mkdir(parents=True, exist_ok=True)
    _publish(path, key, replace=True)


def _create(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    _publish(path, secrets.token_bytes(KEY_BYTES), replace=False)
    # Whoever won the race wrote the key every process now uses.
    return path.read_bytes()


def _publish(path: Path, key: bytes, *, replace: bool) -> None:
    # Written whole under a private name, then linked into place: a reader never sees
    # a half-written key, and of two racing creators exactly one wins.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(key)
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(tmp, path)
            return
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def keyed_id(key: bytes, prefix: str, idempotency_key: str) -> str:
    """`<prefix>_<hex>`: the same for every attempt of one call, unguessable without `key`."""
    digest = hmac.new(key, idempotency_key.encode(), hashlib.sha256).hexdigest()
    return f"{prefix}_{digest[:ID_HEX_CHARS]}"
