"""Browser sessions: a bearer token exchanged once for an HttpOnly cookie.

The web page never holds the token: the sign-in link's `?token=` (or a pasted token)
is POSTed to `/v1/session`, which answers with an HttpOnly, SameSite=Strict cookie.
The cookie is stateless: the user name and an expiry, signed with HMAC-SHA256 keyed by
that user's token, so it survives an API restart and dies when the token is rotated.

A cookie travels with every request the browser makes to this origin, so on methods
that change something it counts only when the request says it comes from this origin
(`Sec-Fetch-Site` or `Origin`): a page elsewhere cannot act with the user's cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from onward.api.auth import TokenBook

COOKIE_NAME = "onward_session"
SESSION_SECONDS = 14 * 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CONTEXT = b"onward-session-v1"


@dataclass(frozen=True)
class SessionCookie:
    """What `Set-Cookie` carries for a signed-in browser."""

    value: str
    max_age: int


def _signature(token: str, user: str, expires: int) -> str:
    message = b"\n".join((_CONTEXT, user.encode(), str(expires).encode()))
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def _encode_user(user: str) -> str:
    return base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")


def _decode_user(text: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def issue(token: str, user: str, *, now: float | None = None) -> SessionCookie:
    """A session cookie for `user`, signed with their `token`."""
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    value = f"{_encode_user(user)}.{expires}.{_signature(token, user, expires)}"
    return SessionCookie(value=value, max_age=SESSION_SECONDS)


def user_for_cookie(
    tokens: TokenBook, value: str | None, *, now: float | None = None
) -> str | None:
    """The user a session cookie stands for, or None (absent, malformed, expired, or
    signed with a token that is no longer configured)."""
    if not value:
        return None
    parts = value.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    user = _decode_user(parts[0])
    expires = int(parts[1])
    if user is None or expires < (now if now is not None else time.time()):
        return None
    found = False
    # Every token of the user is tried, so the comparison's timing says nothing.
    for token, owner in tokens.tokens.items():
        if owner == user and hmac.compare_digest(_signature(token, user, expires), parts[2]):
            found = True
    return user if found else None


def same_origin(connection: HTTPConnection) -> bool:
    """Whether a browser sent this request from this origin (or nothing says otherwise:
    a client that is not a browser sends neither header, and cannot be tricked by a
    page into sending the cookie)."""
    fetch_site = connection.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    host = connection.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")
