"""MCP server configuration, the workflow-side policy on listed tools, and how call
results become tool outcomes (pure logic; real servers are in tests/integration)."""

from __future__ import annotations

import base64
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp.types import (
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
    Tool,
    ToolAnnotations,
)

from onward.activities.mcp import McpActivities, tool_info
from onward.activities.mcp_results import to_outcome
from onward.agent.mcp import (
    McpServerListing,
    McpToolInfo,
    approval_for,
    merge_tools,
    retry_for,
    tool_allowed,
)
from onward.agent.specs import GoalSpec, RetrySpec, SecretRef, ToolSpec
from onward.config import Settings
from onward.exceptions import UserError
from onward.goals.base import Goal
from onward.store.transcripts import transcript_store
from onward.store.transcripts_sqlite import SqliteTranscriptStore
from onward.tools.mcp import McpServer, Secret

SCHEMA: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "integer"}}}


def info(name: str, read_only: bool | None = None, idempotent: bool | None = None) -> McpToolInfo:
    return McpToolInfo(name=name, input_schema=SCHEMA, read_only=read_only, idempotent=idempotent)


# ------------------------------------------------------------------ configuration


def test_credentials_must_be_secrets_never_literals() -> None:
    with pytest.raises(UserError, match="`Authorization` looks like a credential"):
        McpServer.http("web", "https://mcp.example.com/mcp", headers={"Authorization": "Bearer x"})
    with pytest.raises(UserError, match="`GITHUB_TOKEN` looks like a credential"):
        McpServer.stdio("gh", "gh-mcp", env={"GITHUB_TOKEN": "ghp_123"})
    with pytest.raises(UserError, match="carries credentials"):
        McpServer.http("web", "https://user:pw@mcp.example.com/mcp")
    ok = McpServer.http(
        "web",
        "https://mcp.example.com/mcp",
        headers={"Authorization": Secret("web", "Bearer {}"), "X-Team": "blue"},
    )
    spec = ok.spec()
    assert spec.transport.kind == "http"
    assert spec.transport.headers == {
        "Authorization": SecretRef(secret="web", template="Bearer {}"),
        "X-Team": "blue",
    }
    assert "Bearer" in spec.model_dump_json() and "secret" in spec.model_dump_json()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: McpServer.stdio("Bad Name", "x"), "the name must match"),
        (lambda: McpServer.stdio("ok", "  "), "`command` is empty"),
        (lambda: McpServer.http("ok", "ftp://host/mcp"), "http:// or https://"),
        (lambda: McpServer.stdio("ok", "x", approval={"*": "maybe"}), "approval for `*`"),  # type: ignore[dict-item]
        (lambda: McpServer.stdio("ok", "x", tools="add"), "not one string"),  # type: ignore[arg-type]
        (lambda: McpServer.stdio("ok", "x", timeout_s=0), "`timeout_s` must be positive"),
        (lambda: McpServer.stdio("ok", "x", env={"K": Secret("k", "no slot")}), "exactly one"),
        (lambda: McpServer.stdio("ok", "x", prefix="a.b"), "prefix"),
    ],
)
def test_bad_server_configuration_is_a_clear_error(build: Any, message: str) -> None:
    with pytest.raises(UserError, match=message):
        build()


def test_a_goal_records_its_servers_and_refuses_duplicates() -> None:
    server = McpServer.stdio("time", "mcp-server-time")
    goal = Goal(name="unit-mcp", description="d", instructions="i", mcp=[server])
    assert goal.spec().mcp_servers == [server.spec()]
    with pytest.raises(UserError, match="MCP server name twice"):
        Goal(
            name="unit-mcp2",
            description="d",
            instructions="i",
            mcp=[server, server],
        )


def test_settings_mask_mcp_secrets() -> None:
    settings = Settings(_env_file=None, mcp_secrets={"web": "s3cr3t"})  # type: ignore[call-arg, arg-type]
    assert settings.mcp_secrets["web"].get_secret_value() == "s3cr3t"
    assert settings.masked()["mcp_secrets"] == {"web": "***"}


# ---------------------------------------------------------------------- policy


def test_allow_list_by_name_or_pattern() -> None:
    server = McpServer.stdio("git", "x", tools=["git_log", "git_diff*"]).spec()
    assert [
        n
        for n in ("git_log", "git_diff", "git_diff_staged", "git_commit")
        if tool_allowed(server, n)
    ] == [
        "git_log",
        "git_diff",
        "git_diff_staged",
    ]
    assert tool_allowed(McpServer.stdio("git", "x").spec(), "anything")


def test_approval_exact_name_then_first_pattern_then_read_only_default() -> None:
    server = McpServer.stdio(
        "git", "x", approval={"git_*": "deny", "git_log": "confirm", "*_status": "auto"}
    ).spec()
    assert approval_for(server, info("git_log", read_only=True)) == "confirm"  # exact wins
    assert approval_for(server, info("git_reset")) == "deny"  # first matching pattern
    assert approval_for(server, info("svn_status")) == "auto"
    plain = McpServer.stdio("git", "x").spec()
    assert approval_for(plain, info("git_show", read_only=True)) == "auto"
    assert approval_for(plain, info("git_commit", read_only=False)) == "confirm"
    assert approval_for(plain, info("unknown")) == "confirm"  # no hint: not known read-only


def test_only_tools_safe_to_repeat_are_retried() -> None:
    server = McpServer.stdio("s", "x", retry=RetrySpec(max_attempts=5)).spec()
    assert retry_for(server, info("read", read_only=True)).max_attempts == 5
    assert retry_for(server, info("put", idempotent=True)).max_attempts == 5
    assert retry_for(server, info("send")).max_attempts == 1


def test_merged_tools_look_like_python_tools_and_never_shadow_them() -> None:
    python = ToolSpec(name="add", description="Add.", parameters=SCHEMA)
    old = ToolSpec(
        name="stale", description="From the last run.", parameters=SCHEMA, origin="mcp:calc"
    )
    calc = McpServer.stdio("calc", "x", tools=["add", "mul", "bad name", "div"]).spec()
    pre = McpServer.stdio("pre", "x", prefix="p_").spec()
    goal = GoalSpec(
        name="g", description="d", instructions="i", tools=[python, old], mcp_servers=[calc, pre]
    )
    listings = {
        "calc": McpServerListing(
            server="calc",
            tools=[info("add"), info("mul", read_only=True), info("bad name")],
            skipped=["`div` has an invalid input schema (bad)"],
        ),
        "pre": McpServerListing(server="pre", tools=[info("add")]),
    }
    tools, problems = merge_tools(goal, listings)
    by_name = {t.name: t for t in tools}
    assert list(by_name) == ["add", "mul", "p_add"]  # the stale MCP tool is gone
    assert by_name["add"].origin == "python"
    assert by_name["mul"].origin == "mcp:calc" and by_name["mul"].approval == "auto"
    assert by_name["mul"].read_only is True and by_name["mul"].parameters == SCHEMA
    assert by_name["p_add"].origin == "mcp:pre" and by_name["p_add"].approval == "confirm"
    assert any("`add` of `calc`: the name is already taken" in p for p in problems)
    assert any("`bad name` of `calc`: not a name models accept" in p for p in problems)
    assert any("invalid input schema" in p for p in problems)
    # A server whose listing failed contributes nothing.
    failed = {"calc": McpServerListing(server="calc", error="down")}
    assert [t.name for t in merge_tools(goal, failed)[0]] == ["add"]


def test_listed_tools_with_unusable_schemas_are_left_out() -> None:
    good = Tool(
        name="t",
        input_schema=SCHEMA,
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    converted = tool_info(good)
    assert isinstance(converted, McpToolInfo)
    assert converted.read_only is True and converted.idempotent is True
    assert "invalid input schema" in str(tool_info(Tool(name="t", input_schema={"type": 3})))
    assert "not an object" in str(tool_info(Tool(name="t", input_schema={"type": "string"})))
    remote = {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}
    assert "refers outside itself (https://example.com/a.json)" in str(
        tool_info(Tool(name="t", input_schema=remote))
    )
    local: dict[str, Any] = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "$defs": {"A": {}},
    }
    assert isinstance(tool_info(Tool(name="t", input_schema=local)), McpToolInfo)


# --------------------------------------------------------------------- results


@pytest.fixture
def store(tmp_path: Path) -> SqliteTranscriptStore:
    return SqliteTranscriptStore(tmp_path / "transcripts.sqlite")


def putter(store: SqliteTranscriptStore) -> Callable[[bytes], Awaitable[str]]:
    async def put(data: bytes) -> str:
        return await store.put_blob("conv-1", data)

    return put


async def test_text_and_structured_results(store: SqliteTranscriptStore) -> None:
    put = putter(store)
    text = CallToolResult(content=[TextContent(text="hello")])
    assert (await to_outcome(text, put)).model_dump() == {
        "ok": True,
        "content": "hello",
        "error": None,
        "content_ref": None,
    }
    both = CallToolResult(content=[TextContent(text='{"a": 1}')], structured_content={"a": 1})
    assert (await to_outcome(both, put)).content == {"a": 1}
    error = CallToolResult(content=[TextContent(text="no such repo")], is_error=True)
    failed = await to_outcome(error, put)
    assert (failed.ok, failed.error) == (False, "no such repo")
    assert store.counts("conv-1") == (0, 0)  # nothing to store for text


async def test_images_and_resources_are_stored_and_referenced(store: SqliteTranscriptStore) -> None:
    png = b"\x89PNG fake bytes"
    result = CallToolResult(
        content=[
            TextContent(text="a chart and its data"),
            ImageContent(data=base64.b64encode(png).decode(), mime_type="image/png"),
            EmbeddedResource(
                resource=TextResourceContents(
                    uri="file:///data.csv", text="a,b\n1,2\n", mime_type="text/csv"
                )
            ),
            EmbeddedResource(
                resource=BlobResourceContents(
                    uri="file:///x.bin", blob=base64.b64encode(b"\x00\x01").decode()
                )
            ),
            ResourceLink(uri="https://example.com/report", name="report", mime_type="text/html"),
        ]
    )
    outcome = await to_outcome(result, putter(store))
    assert outcome.ok
    content = outcome.content
    assert content["text"] == "a chart and its data"
    image, csv, binary, link = content["attachments"]
    assert image["type"] == "image" and image["bytes"] == len(png)
    assert await store.get_blob("conv-1", image["ref"]) == png
    assert csv["uri"] == "file:///data.csv"
    assert await store.get_blob("conv-1", csv["ref"]) == b"a,b\n1,2\n"
    assert await store.get_blob("conv-1", binary["ref"]) == b"\x00\x01"
    assert link == {
        "type": "resource_link",
        "uri": "https://example.com/report",
        "name": "report",
        "mime_type": "text/html",
    }
    assert "fake bytes" not in outcome.model_dump_json()
    # The same bytes again are the same blobs (a retried call stores nothing new).
    assert (await to_outcome(result, putter(store))).content == content
    assert store.counts("conv-1") == (0, 3)
    # Erasing the conversation erases its attachments.
    await store.erase("conv-1")
    assert store.counts("conv-1") == (0, 0)


async def test_a_worker_without_the_mcp_sdk_says_how_to_get_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onward.activities.mcp_sessions", None)
    listing = await McpActivities(settings, transcript_store(settings)).list_server(
        McpServer.stdio("t", "x").spec(), "c"
    )
    assert listing.error is not None and "pip install 'onward[mcp]'" in listing.error
