"""MCP call results as onward tool outcomes.

- `isError` results are tool errors the model reads (`ok=False`).
- Text and structured content become the content: the structured value when there
  is one (it is what the text says, for code), else the text.
- Images, audio and embedded resources go to the blob store; the content keeps a
  reference (`onward-blob:sha256/…`, type, size), never the bytes. Resource links
  are references already and are kept as they are.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from mcp.types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from onward.agent.activity_contracts import ToolOutcome
from onward.store.blobs import BlobStore, blob_uri

MAX_ERROR_CHARS = 2000


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        # Not base64 after all: keep what was sent, as text bytes.
        return data.encode()


def _attachment(block: ContentBlock, blobs: BlobStore) -> dict[str, Any] | None:
    if isinstance(block, ImageContent | AudioContent):
        data = _decode(block.data)
        return {
            "type": block.type,
            "mime_type": block.mime_type,
            "uri": blob_uri(blobs.put(data)),
            "bytes": len(data),
        }
    if isinstance(block, EmbeddedResource):
        resource = block.resource
        if isinstance(resource, TextResourceContents):
            data = resource.text.encode()
        else:
            assert isinstance(resource, BlobResourceContents)
            data = _decode(resource.blob)
        return {
            "type": "resource",
            "resource_uri": str(resource.uri),
            "mime_type": resource.mime_type,
            "uri": blob_uri(blobs.put(data)),
            "bytes": len(data),
        }
    if isinstance(block, ResourceLink):
        link: dict[str, Any] = {"type": "resource_link", "uri": str(block.uri), "name": block.name}
        for key in ("title", "description", "mime_type", "size"):
            value = getattr(block, key, None)
            if value is not None:
                link[key] = value
        return link
    return None


def to_outcome(result: CallToolResult, blobs: BlobStore) -> ToolOutcome:
    """The tool outcome the model sees for one MCP call result."""
    texts = [b.text for b in result.content if isinstance(b, TextContent)]
    text = "\n".join(texts)
    if result.is_error:
        return ToolOutcome(ok=False, error=(text or "the tool reported an error")[:MAX_ERROR_CHARS])
    attachments = [
        a
        for a in (_attachment(b, blobs) for b in result.content if not isinstance(b, TextContent))
        if a is not None
    ]
    structured = result.structured_content
    if not attachments:
        return ToolOutcome(ok=True, content=structured if structured is not None else text)
    content: dict[str, Any] = {}
    if text:
        content["text"] = text
    if structured is not None:
        content["structured"] = structured
    content["attachments"] = attachments
    return ToolOutcome(ok=True, content=content)
