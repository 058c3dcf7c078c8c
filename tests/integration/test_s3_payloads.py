"""Large payloads go to S3 when a bucket is configured (moto's S3 server on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3  # pyright: ignore[reportMissingTypeStubs]
import pytest
from moto.server import ThreadedMotoServer  # pyright: ignore[reportMissingTypeStubs]
from temporalio.testing import WorkflowEnvironment

from onward.agent.decisions import Finish
from onward.agent.messages import AssistantMessage, ToolResultMessage, UserMessage
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.exceptions import TranscriptMissing
from onward.processes import free_port
from onward.store.transcripts_s3 import S3TranscriptStore
from onward.testing import ScriptedModel, local_dev_environment
from onward.worker import build_workers, running_workers
from tests.conftest import make_settings
from tests.workflows import toolbox

pytestmark = pytest.mark.integration
BUCKET = "onward-payloads"


def _s3(endpoint: str) -> Any:
    return cast(Any, boto3).client("s3", endpoint_url=endpoint)


def _object_count(endpoint: str) -> int:
    listing = cast(dict[str, Any], _s3(endpoint).list_objects_v2(Bucket=BUCKET))
    return int(listing.get("KeyCount", 0))


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    _s3(endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


async def test_large_payloads_are_stored_in_s3(s3_endpoint: str, tmp_path: Path) -> None:
    settings: Settings = make_settings(
        tmp_path,
        payload_s3_bucket=BUCKET,
        payload_s3_endpoint_url=s3_endpoint,
        payload_s3_region="us-east-1",
    )
    env: WorkflowEnvironment = await local_dev_environment(settings)
    try:
        model = ScriptedModel([Finish(answer="stored")])
        async with running_workers(build_workers(env.client, settings, model)):
            convs = Conversations(env.client, settings)
            big = "y" * 300_000
            cid = await convs.start(toolbox.MATH.name, first_message=big)
            assert (await convs.result(cid)).answer == "stored"
            snap = await convs.snapshot(cid)
        assert snap.messages[0].kind == "user" and len(snap.messages[0].text) == 300_000
        history = await env.client.get_workflow_handle(cid).fetch_history()
        assert max(e.ByteSize() for e in history.events) < 100_000
    finally:
        await env.shutdown()
    assert _object_count(s3_endpoint) >= 1
    assert not (tmp_path / "payloads").exists()


async def test_the_transcript_store_on_s3_appends_reads_and_erases(
    s3_endpoint: str, tmp_path: Path
) -> None:
    store = S3TranscriptStore(BUCKET, s3_endpoint, "us-east-1")
    first = await store.append("conv-s3", None, [UserMessage(text="hi")])
    ref = await store.put_blob("conv-s3", b'{"page": 1}')
    result = ToolResultMessage(call_id="c1", tool="read", ok=True, content_ref=ref)
    head = await store.append("conv-s3", first, [result, AssistantMessage(text="done")])
    await store.append("conv-s3~p1.a", None, [UserMessage(text="child")])
    store.forget_cached()  # read back from S3, not from memory
    messages = await store.resolve_results("conv-s3", await store.read(head))
    assert [m.kind for m in messages] == ["user", "tool_result", "assistant"]
    assert isinstance(messages[1], ToolResultMessage) and messages[1].content == {"page": 1}
    ranged = await store.read_range(head, 1, 3)
    assert [m.kind for m in ranged] == ["tool_result", "assistant"]
    assert await store.erase("conv-s3") == 4
    listing = cast(dict[str, Any], _s3(s3_endpoint).list_objects_v2(Bucket=BUCKET))
    # moto keeps one S3 per process: other tests' conversations may be there too.
    keys = [o["Key"] for o in listing.get("Contents", [])]
    assert [k for k in keys if "/conv-s3" in k] == []
    with pytest.raises(TranscriptMissing):
        await store.read(head)
