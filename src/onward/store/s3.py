"""S3 for large payloads (`ONWARD_PAYLOAD_S3_BUCKET`): Temporal's S3 driver with an
aioboto3 client opened per operation.

The data converter is built synchronously, before any event loop runs, so a long-lived
async client cannot be handed to it; opening one per operation is cheap next to
payloads large enough to leave history. Credentials come from the usual AWS sources
(environment, profile, instance role), never from onward's settings or history.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from temporalio.contrib.aws.s3driver import S3StorageDriver, S3StorageDriverClient

from onward.exceptions import UserError


def is_missing(exc: Exception) -> bool:
    """Whether an S3 error says the object is not there."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("404", "NoSuchKey", "NotFound")


class S3Session:
    """An aioboto3 session that opens a client per operation (`async with s.client()`)."""

    def __init__(self, endpoint_url: str | None, region: str | None) -> None:
        try:
            import aioboto3  # pyright: ignore[reportMissingTypeStubs]
        except ImportError as exc:
            raise UserError(
                "ONWARD_PAYLOAD_S3_BUCKET is set but aioboto3 is missing: install `onward[s3]`"
            ) from exc
        self._session: Any = aioboto3.Session()
        self._endpoint_url = endpoint_url
        self._region = region

    @asynccontextmanager
    async def client(self) -> AsyncGenerator[Any]:
        async with self._session.client(
            "s3", endpoint_url=self._endpoint_url, region_name=self._region
        ) as client:
            yield client


class PerCallS3Client(S3StorageDriverClient):
    """`S3StorageDriverClient` over aioboto3, one client per call."""

    def __init__(self, endpoint_url: str | None, region: str | None) -> None:
        self._s3 = S3Session(endpoint_url, region).client

    async def put_object(self, *, bucket: str, key: str, data: bytes) -> None:
        async with self._s3() as s3:
            await s3.put_object(Bucket=bucket, Key=key, Body=data)

    async def object_exists(self, *, bucket: str, key: str) -> bool:
        async with self._s3() as s3:
            try:
                await s3.head_object(Bucket=bucket, Key=key)
            except Exception as exc:
                if is_missing(exc):
                    return False
                raise
            return True

    async def get_object(self, *, bucket: str, key: str) -> bytes:
        async with self._s3() as s3:
            response = await s3.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as body:
                return bytes(await body.read())


def s3_driver(bucket: str, endpoint_url: str | None, region: str | None) -> S3StorageDriver:
    return S3StorageDriver(client=PerCallS3Client(endpoint_url, region), bucket=bucket)
