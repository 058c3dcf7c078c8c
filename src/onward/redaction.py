"""Credentials out of everything onward shows: settings, `/v1/info`, `doctor`, logs.

A URL may carry a secret in two places: its userinfo (`https://user:PASS@host`) and
its query string (`?api_key=…`). `mask_url` replaces both with `***` and leaves the
rest (scheme, host, port, path) readable, so an operator still sees where a setting
points. `mask_urls` does the same for every URL inside free text (a model
description, an exception message), and `RedactingFilter` applies it to log records.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_PARAMS = re.compile(
    r"(key|token|secret|password|passwd|pwd|auth|signature|sig|credential|session)", re.I
)
# scheme://[userinfo@]host… up to whitespace or a closing quote/bracket.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]{}]+")


def mask_url(url: str) -> str:
    """`url` with its userinfo and the values of secret-looking query parameters
    replaced by `***`; anything that is not a URL with a host is returned unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAMS.search(name) for name, _ in pairs):
            masked = [(n, MASK if _SECRET_PARAMS.search(n) else v) for n, v in pairs]
            query = urlencode(masked, safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def public_url(url: str) -> str:
    """`url` fit to hand out as a link: without userinfo and without secret-looking
    query parameters (a masked value would only break the link)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(n, v) for n, v in pairs if not _SECRET_PARAMS.search(n)]
    query = urlencode(kept) if len(kept) != len(pairs) else parts.query
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_urls(text: str) -> str:
    """`text` with `mask_url` applied to every URL in it."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: mask_url(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """Masks credentials in URLs of every record it sees (install it on handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_urls(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def redact_logs() -> None:
    """Install `RedactingFilter` on the root logger's handlers (creating a stderr handler
    when there is none), so no process of onward logs a URL's credentials."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.WARNING)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
