"""The SQLite transcript store, the default: one file in the data dir that every
process on the machine shares (`ONWARD_PAYLOAD_S3_BUCKET` unset)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Generator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

from onward.agent.contracts import TranscriptRef
from onward.agent.messages import MESSAGES_ADAPTER, ToolResultMessage
from onward.exceptions import TranscriptMissing
from onward.store.transcripts import Segment, TranscriptStore, blob_ref

TRANSCRIPTS_FILENAME = "transcripts.sqlite"


def descendant_ids(conversation_id: str) -> str:
    """The SQL LIKE pattern of a conversation's sub-agents (`<id>~p1.step`, ...)."""
    return conversation_id.replace("%", r"\%").replace("_", r"\_") + "~%"


class SqliteTranscriptStore(TranscriptStore):
    """One SQLite file (`<data dir>/transcripts.sqlite`, WAL) that every process on the
    machine shares."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(
                """
                CREATE TABLE IF NOT EXISTS segments (
                    id TEXT NOT NULL, conversation_id TEXT NOT NULL,
                    parent_id TEXT, parent_conversation TEXT, parent_count INTEGER,
                    count INTEGER NOT NULL, body BLOB NOT NULL,
                    PRIMARY KEY (id, conversation_id));
                CREATE INDEX IF NOT EXISTS segments_parent ON segments (parent_id);
                CREATE TABLE IF NOT EXISTS blobs (
                    ref TEXT NOT NULL, conversation_id TEXT NOT NULL, body BLOB NOT NULL,
                    PRIMARY KEY (ref, conversation_id));
                """
            )

    @contextmanager
    def _connect(self) -> Generator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            yield db

    async def _put_segment(self, seg_id: str, segment: Segment, body: bytes) -> None:
        parent = segment.parent

        def put() -> None:
            with self._connect() as db:
                db.execute(
                    "INSERT OR IGNORE INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        seg_id,
                        segment.conversation_id,
                        parent.id if parent else None,
                        parent.conversation_id if parent else None,
                        parent.count if parent else None,
                        segment.count,
                        body,
                    ),
                )

        await asyncio.to_thread(put)

    async def _get_segment(self, ref: TranscriptRef) -> tuple[TranscriptRef | None, bytes]:
        def get() -> tuple[str | None, str | None, int | None, bytes] | None:
            with self._connect() as db:
                return db.execute(
                    "SELECT parent_id, parent_conversation, parent_count, body FROM segments "
                    "WHERE id = ? ORDER BY conversation_id = ? DESC LIMIT 1",
                    (ref.id, ref.conversation_id),
                ).fetchone()

        row = await asyncio.to_thread(get)
        if row is None:
            raise TranscriptMissing(
                f"transcript segment {ref.id} of `{ref.conversation_id}` is not in "
                f"{self.path}: erased, or this worker uses another data dir"
            )
        parent_id, parent_conv, parent_count, body = row
        parent = (
            TranscriptRef(conversation_id=parent_conv or "", id=parent_id, count=parent_count or 0)
            if parent_id
            else None
        )
        return parent, body

    async def put_blob(self, conversation_id: str, data: bytes) -> str:
        ref = blob_ref(data)

        def put() -> None:
            with self._connect() as db:
                db.execute(
                    "INSERT OR IGNORE INTO blobs VALUES (?, ?, ?)", (ref, conversation_id, data)
                )

        await asyncio.to_thread(put)
        return ref

    async def get_blob(self, conversation_id: str, ref: str) -> bytes:
        def get() -> tuple[bytes] | None:
            with self._connect() as db:
                return db.execute(
                    "SELECT body FROM blobs WHERE ref = ? "
                    "ORDER BY conversation_id = ? DESC LIMIT 1",
                    (ref, conversation_id),
                ).fetchone()

        row = await asyncio.to_thread(get)
        if row is None:
            raise TranscriptMissing(f"blob {ref} of `{conversation_id}` is not in {self.path}")
        return row[0]

    async def erase(self, conversation_id: str) -> int:
        pattern = descendant_ids(conversation_id)
        owned = "(conversation_id = ?1 OR conversation_id LIKE ?2 ESCAPE '\\')"

        def erase() -> int:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                # Segments a surviving transcript (a fork) continues from, and theirs.
                kept = {
                    row[0]
                    for row in db.execute(
                        f"""
                        WITH RECURSIVE needed(id) AS (
                            SELECT parent_id FROM segments
                            WHERE NOT {owned} AND parent_id IN
                                (SELECT id FROM segments WHERE {owned})
                            UNION
                            SELECT s.parent_id FROM segments s JOIN needed n ON s.id = n.id
                            WHERE s.parent_id IS NOT NULL)
                        SELECT id FROM needed
                        """,
                        (conversation_id, pattern),
                    )
                }
                # Latest first: a kept segment's child has been handed on before it.
                victims = db.execute(
                    f"SELECT id, body FROM segments WHERE {owned} ORDER BY count DESC",
                    (conversation_id, pattern),
                ).fetchall()
                kept_refs = _refs_in([body for seg, body in victims if seg in kept])
                gone = 0
                for seg, _ in victims:
                    if seg not in kept:
                        gone += db.execute(
                            f"DELETE FROM segments WHERE id = ?3 AND {owned}",
                            (conversation_id, pattern, seg),
                        ).rowcount
                        continue
                    # Kept for a fork: it becomes the fork's, so erasing the fork (the
                    # last one that needs it) takes it too.
                    heir = db.execute(
                        f"SELECT conversation_id FROM segments WHERE parent_id = ?3 "
                        f"AND NOT {owned} LIMIT 1",
                        (conversation_id, pattern, seg),
                    ).fetchone()
                    db.execute(
                        f"UPDATE OR IGNORE segments SET conversation_id = ?4 "
                        f"WHERE id = ?3 AND {owned}",
                        (conversation_id, pattern, seg, heir[0] if heir else conversation_id),
                    )
                for (ref,) in db.execute(
                    f"SELECT ref FROM blobs WHERE {owned}", (conversation_id, pattern)
                ).fetchall():
                    if ref not in kept_refs:
                        gone += db.execute(
                            f"DELETE FROM blobs WHERE ref = ?3 AND {owned}",
                            (conversation_id, pattern, ref),
                        ).rowcount
                db.execute("COMMIT")
                return gone

        gone = await asyncio.to_thread(erase)
        self.forget_cached()
        return gone

    def counts(self, conversation_id: str) -> tuple[int, int]:
        """(segments, blobs) stored for the conversation and its sub-agents (tests)."""
        pattern = descendant_ids(conversation_id)
        with self._connect() as db:
            where = "conversation_id = ? OR conversation_id LIKE ? ESCAPE '\\'"
            segments = db.execute(
                f"SELECT count(*) FROM segments WHERE {where}", (conversation_id, pattern)
            ).fetchone()[0]
            blobs = db.execute(
                f"SELECT count(*) FROM blobs WHERE {where}", (conversation_id, pattern)
            ).fetchone()[0]
        return int(segments), int(blobs)


def _refs_in(bodies: Sequence[bytes]) -> set[str]:
    """Blob refs the tool results in these segment bodies point at."""
    refs: set[str] = set()
    for body in bodies:
        for m in MESSAGES_ADAPTER.validate_json(body):
            if isinstance(m, ToolResultMessage) and m.content_ref:
                refs.add(m.content_ref)
    return refs
