"""Connecting to Temporal (embedded, a cluster or Temporal Cloud) with onward's
data converter: pydantic models as JSON, large payloads in external storage."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, ExternalStorage
from temporalio.runtime import Runtime

from onward.config import Settings
from onward.store.payloads import LocalPayloadDriver


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic-aware JSON; payloads above the threshold go to S3 when a bucket is
    configured, else to the local store (which stays readable for older references)."""
    local = LocalPayloadDriver(settings.data_dir / "payloads")
    if settings.payload_s3_bucket:
        from onward.store.s3 import s3_driver

        s3 = s3_driver(
            settings.payload_s3_bucket,
            settings.payload_s3_endpoint_url,
            settings.payload_s3_region,
        )
        storage = ExternalStorage(
            drivers=[s3, local],
            driver_selector=lambda _ctx, _payload: s3,
            payload_size_threshold=settings.payload_threshold_bytes,
        )
    else:
        storage = ExternalStorage(
            drivers=[local], payload_size_threshold=settings.payload_threshold_bytes
        )
    return dataclasses.replace(pydantic_data_converter, external_storage=storage)


def _tls(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        return TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    # Temporal Cloud API keys require TLS.
    return settings.temporal_api_key is not None


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client for the configured Temporal (the embedded server by default)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.target_address,
        namespace=settings.temporal_namespace,
        tls=_tls(settings),
        api_key=api_key,
        data_converter=data_converter(settings),
        runtime=runtime,
    )
