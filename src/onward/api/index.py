"""Who owns which conversation: a small SQLite index kept by the API.

Temporal's visibility (list) API is not available on every server (the time-skipping
test server has none), and ownership must be checked on every request anyway, so the
API records each conversation it starts here. A deleted conversation stays as a row
marked `deleted`, which makes it unreachable through the API, and `erased` once its
Temporal history has been deleted too (`onward.client.erasure`).

Child conversations (the steps of a plan) are started by their parent's workflow, not
by the API, so they have no row: `get_readable` authorises them by their parent's.

A create writes its row first, `pending`, and only then starts the workflow; the row
turns `active` once the start is confirmed, and only active rows are reachable. So a
workflow never exists without a row that names its owner: an API killed in between
leaves a pending row, which the next create with the same `Idempotency-Key`
completes, or which `onward.api.reconcile` settles (activated when the workflow
exists, removed when it does not).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    goal TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    erased INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'active',
    request_hash TEXT NOT NULL DEFAULT '',
    closed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS conversations_by_owner
    ON conversations (owner, deleted, created_at);
"""
_ADDED_COLUMNS = {
    # Columns later than the first index, added to an index made before them.
    "erased": "INTEGER NOT NULL DEFAULT 0",
    "state": "TEXT NOT NULL DEFAULT 'active'",
    "request_hash": "TEXT NOT NULL DEFAULT ''",
    "closed": "INTEGER NOT NULL DEFAULT 0",
}
PENDING = "pending"
ACTIVE = "active"
_COLUMNS = "conversation_id, owner, goal, title, created_at"
TITLE_CHARS = 80
CHILD_SEPARATOR = "~"
"""Joins a parent's id and a step key in a child's id: `<parent>~p1.step1`."""


@dataclass(frozen=True)
class IndexedConversation:
    """One row of the owner index."""

    conversation_id: str
    owner: str
    goal: str
    title: str
    created_at: datetime
    parent_id: str | None = None
    """For a child conversation: the indexed (top-level) conversation that started it."""


@dataclass(frozen=True)
class Reservation:
    """The row a create wrote (`fresh`), or the one an earlier create with the same id
    left."""

    conversation: IndexedConversation
    fresh: bool
    state: str
    request_hash: str
    """Fingerprint of the create request that wrote the row."""
    deleted: bool


class ConversationIndex:
    """Owner index in `path` (created on first use; safe for several API processes).

    Every call opens its own connection in a worker thread, so the event loop never
    blocks on disk and no connection is shared across threads.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            # WAL lets readers and one writer from several API processes proceed.
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(conversations)")}
            for column, definition in _ADDED_COLUMNS.items():
                if column not in columns:
                    db.execute(f"ALTER TABLE conversations ADD COLUMN {column} {definition}")

    @contextmanager
    def _connect(self) -> Generator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:  # commit on success, roll back on error
                yield db
        finally:
            db.close()

    async def add(self, conversation_id: str, owner: str, goal: str, title: str) -> datetime:
        """Record a conversation whose workflow exists already; returns its creation time."""
        reserved = await self.reserve(conversation_id, owner, goal, title, request_hash="")
        await self.activate(conversation_id)
        return reserved.conversation.created_at

    async def reserve(
        self, conversation_id: str, owner: str, goal: str, title: str, *, request_hash: str
    ) -> Reservation:
        """Write the row of a conversation about to be started (`pending`), or return
        the row already there for that id (a retried create, with the same key)."""
        if CHILD_SEPARATOR in conversation_id:
            # Such an id would read as a child of another conversation (`get_readable`).
            raise ValueError(f"conversation ids may not contain {CHILD_SEPARATOR!r}")
        created = datetime.now(UTC)

        def write() -> tuple[int, tuple[str, str, str, str, str, str, str, int]]:
            with self._connect() as db:
                inserted = db.execute(
                    "INSERT OR IGNORE INTO conversations"
                    " (conversation_id, owner, goal, title, created_at, state, request_hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        conversation_id,
                        owner,
                        goal,
                        title[:TITLE_CHARS],
                        created.isoformat(),
                        PENDING,
                        request_hash,
                    ),
                ).rowcount
                return inserted, db.execute(
                    f"SELECT {_COLUMNS}, state, request_hash, deleted FROM conversations"
                    " WHERE conversation_id = ?",
                    (conversation_id,),
                ).fetchone()

        (
            inserted,
            (cid, row_owner, row_goal, row_title, row_created, state, stored_hash, deleted),
        ) = await asyncio.to_thread(write)
        return Reservation(
            conversation=_row((cid, row_owner, row_goal, row_title, row_created)),
            fresh=inserted == 1,
            state=state,
            request_hash=stored_hash,
            deleted=bool(deleted),
        )

    async def has_row(self, conversation_id: str) -> bool:
        """Whether any row (pending, active or deleted) has this id."""

        def read() -> list[tuple[int]]:
            with self._connect() as db:
                return db.execute(
                    "SELECT 1 FROM conversations WHERE conversation_id = ?", (conversation_id,)
                ).fetchall()

        return bool(await asyncio.to_thread(read))

    async def activate(self, conversation_id: str) -> None:
        """The workflow is known to exist: the conversation becomes reachable."""

        def write() -> None:
            with self._connect() as db:
                db.execute(
                    "UPDATE conversations SET state = ? WHERE conversation_id = ?",
                    (ACTIVE, conversation_id),
                )

        await asyncio.to_thread(write)

    async def pending(self, older_than: timedelta) -> list[str]:
        """Conversations whose start has not been confirmed for `older_than`."""
        cutoff = (datetime.now(UTC) - older_than).isoformat()

        def read() -> list[tuple[str]]:
            with self._connect() as db:
                return db.execute(
                    "SELECT conversation_id FROM conversations"
                    " WHERE state = ? AND deleted = 0 AND created_at < ?",
                    (PENDING, cutoff),
                ).fetchall()

        return [cid for (cid,) in await asyncio.to_thread(read)]

    async def remove_pending(self, conversation_id: str) -> bool:
        """Drop a pending row whose workflow was never started; False if it is not
        pending any more (its create completed meanwhile)."""

        def write() -> int:
            with self._connect() as db:
                return db.execute(
                    "DELETE FROM conversations WHERE conversation_id = ? AND state = ?",
                    (conversation_id, PENDING),
                ).rowcount

        return await asyncio.to_thread(write) > 0

    async def open_ids(self, owner: str) -> list[str]:
        """`owner`'s conversations not known to have ended (ended ones are marked by
        `mark_closed` when someone notices)."""

        def read() -> list[tuple[str]]:
            with self._connect() as db:
                return db.execute(
                    "SELECT conversation_id FROM conversations"
                    " WHERE owner = ? AND deleted = 0 AND closed = 0",
                    (owner,),
                ).fetchall()

        return [cid for (cid,) in await asyncio.to_thread(read)]

    async def mark_closed(self, conversation_ids: list[str]) -> None:
        """These conversations' workflows have ended: they no longer count as open."""
        if not conversation_ids:
            return

        def write() -> None:
            with self._connect() as db:
                db.executemany(
                    "UPDATE conversations SET closed = 1 WHERE conversation_id = ?",
                    [(cid,) for cid in conversation_ids],
                )

        await asyncio.to_thread(write)

    async def get(self, conversation_id: str, owner: str) -> IndexedConversation | None:
        """The conversation if `owner` owns it and it is not deleted, else None."""

        def read() -> list[tuple[str, str, str, str, str]]:
            with self._connect() as db:
                return db.execute(
                    f"SELECT {_COLUMNS} FROM conversations"
                    " WHERE conversation_id = ? AND owner = ? AND deleted = 0 AND state = ?",
                    (conversation_id, owner, ACTIVE),
                ).fetchall()

        rows = await asyncio.to_thread(read)
        return _row(rows[0]) if rows else None

    async def get_readable(self, conversation_id: str, owner: str) -> IndexedConversation | None:
        """Like `get`, and also a child conversation of one `owner` owns.

        The rule: an id `<root>~<suffix>` is readable by whoever owns the indexed,
        undeleted conversation `<root>` (the part before the first `~`). It is sound
        because only a workflow makes such ids, always by appending `~<step key>` to its
        own id (so grandchildren keep the root), and indexed ids never contain `~`: the
        API generates them and `add` refuses any other. A child that does not exist is
        left for Temporal to report as not found. Children are readable only; they are
        steered through their parent (decisions on their approvals go to the parent).
        """
        root, separator, suffix = conversation_id.partition(CHILD_SEPARATOR)
        if not separator:
            return await self.get(conversation_id, owner)
        parent = await self.get(root, owner) if suffix else None
        if parent is None:
            return None
        return IndexedConversation(
            conversation_id=conversation_id,
            owner=parent.owner,
            goal="",  # the child's goal is in its workflow's snapshot, not here
            title="",
            created_at=parent.created_at,
            parent_id=parent.conversation_id,
        )

    async def list_owned(self, owner: str, limit: int = 50) -> list[IndexedConversation]:
        """`owner`'s conversations, newest first."""

        def read() -> list[tuple[str, str, str, str, str]]:
            with self._connect() as db:
                return db.execute(
                    f"SELECT {_COLUMNS} FROM conversations"
                    " WHERE owner = ? AND deleted = 0 AND state = ?"
                    " ORDER BY created_at DESC LIMIT ?",
                    (owner, ACTIVE, limit),
                ).fetchall()

        return [_row(r) for r in await asyncio.to_thread(read)]

    async def title_if_untitled(self, conversation_id: str, owner: str, title: str) -> None:
        """Name a conversation started without a message after its first message."""

        def write() -> None:
            with self._connect() as db:
                db.execute(
                    "UPDATE conversations SET title = ? WHERE conversation_id = ? AND owner = ?"
                    " AND deleted = 0 AND title = ''",
                    (title[:TITLE_CHARS], conversation_id, owner),
                )

        await asyncio.to_thread(write)

    async def mark_deleted(self, conversation_id: str, owner: str) -> bool:
        """Hide the conversation from the API and drop its title; False if not found."""

        def write() -> int:
            with self._connect() as db:
                cursor = db.execute(
                    "UPDATE conversations SET deleted = 1, title = ''"
                    " WHERE conversation_id = ? AND owner = ? AND deleted = 0",
                    (conversation_id, owner),
                )
                return cursor.rowcount

        return await asyncio.to_thread(write) > 0

    async def not_erased(self) -> list[str]:
        """Deleted conversations whose Temporal history is still to be erased."""

        def read() -> list[tuple[str]]:
            with self._connect() as db:
                return db.execute(
                    "SELECT conversation_id FROM conversations WHERE deleted = 1 AND erased = 0"
                ).fetchall()

        return [cid for (cid,) in await asyncio.to_thread(read)]

    async def mark_erased(self, conversation_id: str) -> None:
        def write() -> None:
            with self._connect() as db:
                db.execute(
                    "UPDATE conversations SET erased = 1 WHERE conversation_id = ? AND deleted = 1",
                    (conversation_id,),
                )

        await asyncio.to_thread(write)


def _row(row: tuple[str, str, str, str, str]) -> IndexedConversation:
    cid, owner, goal, title, created = row
    return IndexedConversation(
        conversation_id=cid,
        owner=owner,
        goal=goal,
        title=title,
        created_at=datetime.fromisoformat(created),
    )
