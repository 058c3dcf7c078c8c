"""`Idempotency-Key`: a retried POST is answered with the first one's result.

Each POST may carry the header. The id of what the request makes is derived from the
key, the caller and the conversation, so a retry (after a timeout, a dropped
connection, a killed API) names the same thing and Temporal does the rest:

- create: the conversation (= workflow) id; the start uses the existing workflow if
  there is one, so a retried create never starts a second conversation;
- message: the message id; the workflow takes each id once;
- approval, budget, end: the Temporal update id; Temporal answers a repeated update id
  with the first update's result.

The request body's fingerprint is part of the update ids, and stored with a created
conversation, so the same key with a different body is never mistaken for a retry:
a create answers 422, an update is decided on its own.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Header
from pydantic import BaseModel

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Any unique string chosen by the client (a UUID, say). A retry with "
        "the same key and body gets the first request's result instead of doing it twice.",
    ),
]


def _digest(*parts: str) -> str:
    # NUL cannot occur in a header or a user name, so the parts cannot run together.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def fingerprint(body: BaseModel) -> str:
    """A stable hash of a request body."""
    return _digest(body.model_dump_json())


def conversation_id_for(user: str, key: str) -> str:
    """The conversation id a create with `key` makes for `user`."""
    return f"conv-{_digest('conversation', user, key)[:24]}"


def message_id_for(user: str, conversation_id: str, key: str) -> str:
    """The message id a message with `key` gets."""
    return f"msg-{_digest('message', user, conversation_id, key)[:32]}"


def update_id_for(kind: str, user: str, conversation_id: str, key: str, body: str) -> str:
    """The Temporal update id of an approval, budget raise or end sent with `key`;
    `body` is the request's fingerprint (and, for approvals, the call id)."""
    return f"{kind}-{_digest(kind, user, conversation_id, key, body)[:32]}"
