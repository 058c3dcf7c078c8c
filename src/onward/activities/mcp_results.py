"""MCP call results as onward tool outcomes.

- `isError` results are tool errors the model reads (`ok=False`).
- Text and structured content become the content: the structured value when there
  is one (it is what the text says, for code), else the text.
- Images, audio and embedded resources go to the conversation's transcript store
  (content-addressed, erased with the conversation); the content keeps a reference
  (`ref`, type, size), never the bytes. Resource links are references already and
  are kept as they are.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
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

MAX_ERROR_CHARS = 2000
Put = Callable[[bytes], Awaitable[str]]
"""Stores bytes, returns their reference."""


def _decode(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        # Not base64 after all: keep what was sent, as text bytes.
        return data.encode()


async def _attachment(block: ContentBlock, put: Put) -> dict[str, Any] | None:
    if isinstance(block, ImageContent | AudioContent):
        data = _decode(block.data)
        return {
            "type": block.type,
            "mime_type": block.mime_type,
            "ref": await put(data),
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
            "uri": str(resource.uri),
            "mime_type": resource.mime_type,
            "ref": await put(data),
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


async def to_outcome(result: CallToolResult, put: Put) -> ToolOutcome:
    """The tool outcome the model sees for one MCP call result."""
    texts = [b.text for b in result.content if isinstance(b, TextContent)]
    text = "\n".join(texts)
    if result.is_error:
        return ToolOutcome(ok=False, error=(text or "the tool reported an error")[:MAX_ERROR_CHARS])
    attachments: list[dict[str, Any]] = []
    for block in result.content:
        if not isinstance(block, TextContent):
            found = await _attachment(block, put)
            if found is not None:
                attachments.append(found)
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
