"""Bearer tokens and the users they stand for.

With tokens configured (`ONWARD_API_TOKENS`), each token is one user. Without any,
the API has a single local user, `local`, whose random token is created once in the
data directory (mode 0600) and printed by `onward up` as a sign-in URL, as Jupyter
does. Tokens are compared in constant time.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from onward.api.settings import LOCAL_USER, ApiSettings
from onward.config import Settings


@dataclass(frozen=True)
class TokenBook:
    """Maps bearer tokens to user names."""

    tokens: dict[str, str]

    def user_for(self, token: str | None) -> str | None:
        """The user `token` belongs to, or None."""
        if not token:
            return None
        found: str | None = None
        given = token.encode()
        # Compare against every token so timing does not reveal which one matched.
        for known, user in self.tokens.items():
            if hmac.compare_digest(known.encode(), given):
                found = user
        return found


def read_local_token(path: Path) -> str | None:
    """The local user's token if it was created, else None."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return token or None


def local_token(path: Path) -> str:
    """The local user's token, created on first use (readable by its owner only).

    Creation is atomic: the token is written to a private temporary file that is then
    hard-linked into place, so concurrent processes agree on one token and never read
    a half-written file.
    """
    existing = read_local_token(path)
    if existing is not None:
        _restrict(path)
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process won the race
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    token = read_local_token(path)
    if token is None:
        raise RuntimeError(f"could not create the API token file {path}")
    return token


def _restrict(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)


def token_book(api: ApiSettings, data_dir: Path) -> TokenBook:
    """Configured tokens, or the local user's token when none are configured."""
    if api.api_tokens:
        return TokenBook(dict(api.api_tokens))
    return TokenBook({local_token(api.token_file(data_dir)): LOCAL_USER})


def local_base_url(settings: Settings) -> str:
    """Where a browser or the CLI on this machine reaches the API."""
    host = settings.api_host
    # A wildcard bind address is not something to connect to; loopback is.
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api_port}"


def signin_url(settings: Settings, api: ApiSettings) -> str | None:
    """The URL that signs a browser in as the local user (created on first use), or
    None when tokens are configured (each user has their own)."""
    if api.api_tokens:
        return None
    token = local_token(api.token_file(settings.data_dir))
    return f"{local_base_url(settings)}/?token={token}"
