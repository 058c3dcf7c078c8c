"""The transcript store on S3 (`ONWARD_PAYLOAD_S3_BUCKET`, `onward[s3]`): for workers on
several machines. One object per segment and per blob, under
`onward/transcripts/<conversation id>/`; content-addressed keys make every put
idempotent and every object immutable (so the segment cache holds)."""

from __future__ import annotations

import json

from onward.agent.contracts import TranscriptRef
from onward.exceptions import TranscriptMissing
from onward.store.s3 import S3Session, is_missing
from onward.store.transcripts import Segment, TranscriptStore, blob_ref

PREFIX = "onward/transcripts/"


class S3TranscriptStore(TranscriptStore):
    """Segments and blobs as S3 objects. Credentials come from the usual AWS sources."""

    def __init__(self, bucket: str, endpoint_url: str | None, region: str | None) -> None:
        super().__init__()
        self._s3 = S3Session(endpoint_url, region).client
        self.bucket = bucket

    @staticmethod
    def _segment_key(conversation_id: str, seg_id: str) -> str:
        return f"{PREFIX}{conversation_id}/segments/{seg_id}"

    @staticmethod
    def _blob_key(conversation_id: str, ref: str) -> str:
        return f"{PREFIX}{conversation_id}/blobs/{ref.replace(':', '-')}"

    async def _get(self, key: str) -> bytes | None:
        async with self._s3() as s3:
            try:
                response = await s3.get_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                if is_missing(exc):
                    return None
                raise
            async with response["Body"] as body:
                return bytes(await body.read())

    async def _put(self, key: str, data: bytes) -> None:
        async with self._s3() as s3:
            await s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    async def _put_segment(self, seg_id: str, segment: Segment, body: bytes) -> None:
        parent = segment.parent.model_dump() if segment.parent else None
        header = json.dumps({"parent": parent, "count": segment.count}).encode()
        await self._put(self._segment_key(segment.conversation_id, seg_id), header + b"\n" + body)

    async def _get_segment(self, ref: TranscriptRef) -> tuple[TranscriptRef | None, bytes]:
        data = await self._get(self._segment_key(ref.conversation_id, ref.id))
        if data is None:
            raise TranscriptMissing(
                f"transcript segment {ref.id} of `{ref.conversation_id}` is not in "
                f"s3://{self.bucket}/{PREFIX}"
            )
        header, _, body = data.partition(b"\n")
        parent: object = json.loads(header).get("parent")
        return (TranscriptRef.model_validate(parent) if parent else None), body

    async def put_blob(self, conversation_id: str, data: bytes) -> str:
        ref = blob_ref(data)
        await self._put(self._blob_key(conversation_id, ref), data)
        return ref

    async def get_blob(self, conversation_id: str, ref: str) -> bytes:
        data = await self._get(self._blob_key(conversation_id, ref))
        if data is None:
            raise TranscriptMissing(f"blob {ref} of `{conversation_id}` is not in S3")
        return data

    async def erase(self, conversation_id: str) -> int:
        """Everything under the conversation's and its sub-agents' prefixes. (On S3 a
        fork holds its own copy of the transcript it continues from.)"""
        gone = 0
        async with self._s3() as s3:
            for prefix in (f"{PREFIX}{conversation_id}/", f"{PREFIX}{conversation_id}~"):
                paginator = s3.get_paginator("list_objects_v2")
                async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                    if keys:
                        await s3.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})
                        gone += len(keys)
        self.forget_cached()
        return gone
