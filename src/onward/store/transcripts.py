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

This module holds the interface (`TranscriptStore`, `Segment`, the content
addresses) and `transcript_store`, which picks the backend from the settings; the
backends live in `transcripts_sqlite` and `transcripts_s3`.
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from onward.agent.contracts import ToolCallRecord, TranscriptRef
from onward.agent.messages import MESSAGES_ADAPTER, Message, ToolResultMessage
from onward.config import Settings

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
    from onward.store.transcripts_sqlite import TRANSCRIPTS_FILENAME, SqliteTranscriptStore

    path = settings.data_dir.resolve() / TRANSCRIPTS_FILENAME
    key = ("sqlite", str(path))
    if key not in _stores:
        _stores[key] = SqliteTranscriptStore(path)
    return _stores[key]
