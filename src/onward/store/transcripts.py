"""The transcript store: a conversation's messages kept outside its event history.

Messages are written once, by activities, in *segments*: a segment is the run of
messages appended after a parent segment, and its id is the sha256 of the parent's id
and those messages. So a transcript prefix is one id (a hash chain), a retried write
stores nothing new, and every id names immutable content any worker may cache. Tool
results and goal specs are *blobs*, addressed by the sha256 of their bytes.

Workflow inputs carry only a `TranscriptRef` plus the messages added since it; the
activity that calls the model reads the rest from here. Backends implement four
primitives (`SqliteTranscriptStore` by default, `S3TranscriptStore` with the payload
bucket settings); a Postgres or Redis one is another subclass.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Generator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from onward.agent.contracts import ToolCallRecord, TranscriptRef
from onward.agent.messages import MESSAGES_ADAPTER, Message, ToolResultMessage
from onward.config import Settings
from onward.exceptions import TranscriptMissing

TRANSCRIPTS_FILENAME = "transcripts.sqlite"
_CACHE_SEGMENTS = 4096


@dataclass(frozen=True)
class Segment:
    """Messages appended after `parent`; `count` is the transcript length up to here."""

    conversation_id: str
    parent: TranscriptRef | None
    count: int
    messages: tuple[Message, ...]


def segment_id(parent: TranscriptRef | None, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update((parent.id if parent else "").encode())
    digest.update(b"\n")
    digest.update(body)
    return digest.hexdigest()[:40]


def blob_ref(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descendant_ids(conversation_id: str) -> str:
    """The SQL LIKE pattern of a conversation's sub-agents (`<id>~p1.step`, ...)."""
    return conversation_id.replace("%", r"\%").replace("_", r"\_") + "~%"


class TranscriptStore(ABC):
    """Append-only, content-addressed transcripts and blobs, with a decoded-segment
    cache (content never changes, so the cache is never stale)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[str, Segment] = OrderedDict()
        self._cache_lock = threading.Lock()

    # ------------------------------------------------------------- primitives

    @abstractmethod
    async def _put_segment(self, seg_id: str, segment: Segment, body: bytes) -> None:
        """Store a segment (a second put of the same id is a no-op)."""

    @abstractmethod
    async def _get_segment(self, ref: TranscriptRef) -> tuple[TranscriptRef | None, bytes]:
        """The segment's parent and encoded messages; `TranscriptMissing` if absent."""

    @abstractmethod
    async def put_blob(self, conversation_id: str, data: bytes) -> str:
        """Store `data` for `conversation_id`; returns its ref."""

    @abstractmethod
    async def get_blob(self, conversation_id: str, ref: str) -> bytes:
        """A blob stored with `put_blob`; `TranscriptMissing` if absent."""

    @abstractmethod
    async def erase(self, conversation_id: str) -> int:
        """Delete what the conversation and its sub-agents stored; returns how many
        entries went. Segments another conversation's transcript continues from (a
        fork) are kept for it."""

    # ---------------------------------------------------------- transcripts

    async def append(
        self, conversation_id: str, parent: TranscriptRef | None, messages: Sequence[Message]
    ) -> TranscriptRef:
        """Store `messages` after `parent`; the ref of the whole transcript so far."""
        if not messages:
            if parent is None:
                raise ValueError("nothing to append and no parent")
            return parent
        body = MESSAGES_ADAPTER.dump_json(list(messages))
        count = (parent.count if parent else 0) + len(messages)
        ref = TranscriptRef(
            conversation_id=conversation_id, id=segment_id(parent, body), count=count
        )
        segment = Segment(conversation_id, parent, count, tuple(messages))
        await self._put_segment(ref.id, segment, body)
        self._remember(ref.id, segment)
        return ref

    async def read(self, head: TranscriptRef | None) -> list[Message]:
        """The whole transcript up to and including `head`, oldest first."""
        chain: list[Segment] = []
        ref = head
        while ref is not None:
            segment = await self._segment(ref)
            chain.append(segment)
            ref = segment.parent
        return [m for segment in reversed(chain) for m in segment.messages]

    async def read_range(self, head: TranscriptRef | None, start: int, stop: int) -> list[Message]:
        """Messages `[start, stop)` of the transcript ending at `head` (fewer segments
        are decoded when the range is recent)."""
        chain: list[Segment] = []
        ref = head
        while ref is not None and ref.count > start:
            segment = await self._segment(ref)
            chain.append(segment)
            ref = segment.parent
        first = ref.count if ref is not None else 0
        messages = [m for segment in reversed(chain) for m in segment.messages]
        return messages[start - first : stop - first]

    async def prefix(
        self, head: TranscriptRef | None, at: int
    ) -> tuple[TranscriptRef | None, list[Message]]:
        """The transcript up to index `at`, as the latest stored segment that ends at or
        before it plus the messages from there to `at` (copied: at most one segment's)."""
        ref = head
        while ref is not None and ref.count > at:
            ref = (await self._segment(ref)).parent
        start = ref.count if ref is not None else 0
        return ref, await self.read_range(head, start, at)

    async def _segment(self, ref: TranscriptRef) -> Segment:
        with self._cache_lock:
            cached = self._cache.get(ref.id)
            if cached is not None:
                self._cache.move_to_end(ref.id)
                return cached
        parent, body = await self._get_segment(ref)
        messages = tuple(MESSAGES_ADAPTER.validate_json(body))
        segment = Segment(ref.conversation_id, parent, ref.count, messages)
        self._remember(ref.id, segment)
        return segment

    def _remember(self, seg_id: str, segment: Segment) -> None:
        with self._cache_lock:
            self._cache[seg_id] = segment
            self._cache.move_to_end(seg_id)
            while len(self._cache) > _CACHE_SEGMENTS:
                self._cache.popitem(last=False)

    def forget_cached(self) -> None:
        """Drop decoded segments (after an erasure, or in tests)."""
        with self._cache_lock:
            self._cache.clear()

    async def resolve_results(
        self, conversation_id: str, messages: Sequence[Message]
    ) -> list[Message]:
        """`messages` with every tool result held by reference given its content."""
        out: list[Message] = []
        for m in messages:
            if isinstance(m, ToolResultMessage) and m.content_ref and m.content is None:
                data = await self.get_blob(conversation_id, m.content_ref)
                m = m.model_copy(update={"content": RESULT_ADAPTER.validate_json(data)})
            out.append(m)
        return out

    async def resolve_records(
        self, conversation_id: str, records: Sequence[ToolCallRecord]
    ) -> list[ToolCallRecord]:
        """`records` with every result the workflow keeps by reference given its content."""
        out: list[ToolCallRecord] = []
        for r in records:
            if r.result_ref and r.result is None:
                data = await self.get_blob(conversation_id, r.result_ref)
                r = r.model_copy(update={"result": RESULT_ADAPTER.validate_json(data)})
            out.append(r)
        return out


RESULT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)
"""Tool results are plain JSON (the tool activity made them so)."""


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


_stores: dict[tuple[str, ...], TranscriptStore] = {}


def transcript_store(settings: Settings) -> TranscriptStore:
    """The store every worker and the API of `settings` share (one per process)."""
    if settings.payload_s3_bucket:
        key = ("s3", settings.payload_s3_bucket, settings.payload_s3_endpoint_url or "")
        if key not in _stores:
            from onward.store.transcripts_s3 import S3TranscriptStore

            _stores[key] = S3TranscriptStore(
                settings.payload_s3_bucket,
                settings.payload_s3_endpoint_url,
                settings.payload_s3_region,
            )
        return _stores[key]
    path = settings.data_dir.resolve() / TRANSCRIPTS_FILENAME
    key = ("sqlite", str(path))
    if key not in _stores:
        _stores[key] = SqliteTranscriptStore(path)
    return _stores[key]
