"""The MCP activities: list a goal's servers' tools, and call one tool.

Both read secrets from this worker's settings (`ONWARD_MCP_SECRETS`) when they
connect; the workflow only ever passes their names.

A call is sent at most once per activity attempt. What happens to a call whose
connection broke after it was sent is the tool's retry policy's business (set by the
workflow: retries only for read-only or idempotent tools), because an MCP server
has no idempotency key to ask whether it already ran. Failures before anything was
sent (the server would not start, the URL refused the connection) are retried here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import jsonschema
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.plugin import SimplePlugin

from onward.agent.activity_contracts import ToolOutcome
from onward.agent.mcp import (
    ACTIVITY_MCP_CALL,
    ACTIVITY_MCP_LIST,
    McpCallRequest,
    McpListRequest,
    McpListResult,
    McpServerListing,
    McpToolInfo,
)
from onward.agent.specs import McpServerSpec
from onward.config import Settings
from onward.exceptions import (
    ERR_MCP_CALL_LOST,
    ERR_MCP_CONFIG,
    ERR_MCP_UNAVAILABLE,
    McpCallLost,
    McpConfigError,
    McpUnavailable,
)
from onward.observability import METRIC_TOOL_CALLS
from onward.store.transcripts import TranscriptStore

if TYPE_CHECKING:
    # The `mcp` SDK is the optional `onward[mcp]` extra: imported when first used, so
    # a worker without it still runs every other goal.
    from mcp import Client
    from mcp.types import Tool

    from onward.activities.mcp_sessions import SessionPool

IDEMPOTENCY_META = "onward/idempotency-key"
"""Sent with every call: a server that reads it can tell a retry from a new call."""
CONNECT_ATTEMPTS = 3
_MAX_PAGES = 50
MISSING_SDK = (
    "this worker cannot talk to MCP servers: the `mcp` package is not installed "
    "(pip install 'onward[mcp]')"
)


@asynccontextmanager
async def heartbeating(every_s: float) -> AsyncGenerator[None]:
    """Heartbeat while the block runs, so a dead worker's call is noticed quickly."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every_s)  # the heartbeat's pace, not a wait for a state

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def tool_info(tool: Tool) -> McpToolInfo | str:
    """The recorded description of one listed tool, or why it cannot be offered."""
    schema = tool.input_schema
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"`{tool.name}` has an invalid input schema ({exc.message})"
    if schema.get("type", "object") != "object":
        return f"`{tool.name}` takes {schema.get('type')!r} arguments, not an object"
    outside = _outside_refs(schema)
    if outside:
        # The workflow validates arguments and must never fetch anything to do so.
        return f"`{tool.name}`'s input schema refers outside itself ({outside[0]})"
    hints = tool.annotations
    return McpToolInfo(
        name=tool.name,
        title=tool.title or (hints.title if hints else None),
        description=tool.description,
        input_schema=schema,
        read_only=hints.read_only_hint if hints else None,
        destructive=hints.destructive_hint if hints else None,
        idempotent=hints.idempotent_hint if hints else None,
    )


def _outside_refs(node: object) -> list[str]:
    """`$ref`s that do not point inside the schema itself (`#…`)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in cast(dict[str, object], node).items():
            if key in ("$ref", "$dynamicRef") and not (
                isinstance(value, str) and value.startswith("#")
            ):
                found.append(str(value))
            else:
                found += _outside_refs(value)
    elif isinstance(node, list):
        for value in cast(list[object], node):
            found += _outside_refs(value)
    return found


async def _all_tools(client: Client) -> list[Tool]:
    tools: list[Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


class McpActivities:
    """The MCP activities of one worker, sharing its pool of stateful sessions."""

    def __init__(self, settings: Settings, store: TranscriptStore) -> None:
        """`store` keeps results and attachments, like the tool activity's do."""
        self.settings = settings
        self.store = store
        self._pool: SessionPool | None = None

    async def pool(self) -> SessionPool:
        """This worker's sessions; McpConfigError when the `mcp` SDK is missing.

        The SDK is imported on first use, in a thread: it takes seconds on a busy
        machine, and an import on the event loop would stall every activity's
        heartbeats (and a worker without MCP goals never pays for it).
        """
        if self._pool is None:
            try:
                sessions = await asyncio.to_thread(
                    importlib.import_module, "onward.activities.mcp_sessions"
                )
            except ImportError as exc:
                raise McpConfigError(MISSING_SDK) from exc
            if self._pool is None:
                self._pool = cast("SessionPool", sessions.SessionPool(self.settings))
        return self._pool

    def all(self) -> list[Callable[..., Any]]:
        return [self.list_tools, self.call_tool]

    @asynccontextmanager
    async def running(self) -> AsyncGenerator[None]:
        """For the worker's lifetime: pooled sessions are closed when it stops."""
        try:
            yield
        finally:
            if self._pool is not None:
                await self._pool.aclose()

    def plugin(self) -> SimplePlugin:
        """A worker plugin: registers the activities and closes pooled sessions at exit."""
        return SimplePlugin("onward.mcp", activities=self.all(), run_context=self.running)

    # -------------------------------------------------------------- listing

    @activity.defn(name=ACTIVITY_MCP_LIST)
    async def list_tools(self, request: McpListRequest) -> McpListResult:
        """List every server of the request at once; a failing server is a listing
        with `error`, so the others' tools are still offered."""
        every = min(s.heartbeat_s for s in request.servers) / 3 if request.servers else 1.0
        async with heartbeating(every):
            listings = await asyncio.gather(
                *(self.list_server(s, request.conversation_id) for s in request.servers)
            )
        return McpListResult(servers=list(listings))

    async def list_server(self, server: McpServerSpec, conversation_id: str) -> McpServerListing:
        """One server's tools as recorded in history (also used by `onward tool list`)."""
        try:
            async with asyncio.timeout(server.list_timeout_s):
                pool = await self.pool()
                async with pool.client(server, conversation_id) as client:
                    tools = await _all_tools(client)
        except (McpConfigError, McpUnavailable) as exc:
            return McpServerListing(server=server.name, error=str(exc))
        except Exception as exc:
            from onward.activities.mcp_sessions import describe

            return McpServerListing(
                server=server.name, error=f"MCP server `{server.name}`: {describe(exc)}"
            )
        infos: list[McpToolInfo] = []
        skipped: list[str] = []
        for tool in tools:
            info = tool_info(tool)
            if isinstance(info, str):
                skipped.append(info)
            else:
                infos.append(info)
        return McpServerListing(server=server.name, tools=infos, skipped=skipped)

    # -------------------------------------------------------------- calling

    @activity.defn(name=ACTIVITY_MCP_CALL)
    async def call_tool(self, request: McpCallRequest) -> ToolOutcome:
        """Send one call; a JSON-RPC error or an `isError` result is a tool error."""
        server = request.server
        calls = activity.metric_meter().create_counter(METRIC_TOOL_CALLS, "Tool call attempts")
        labels = {"tool": f"{server.prefix}{request.tool}"}
        async with heartbeating(server.heartbeat_s / 3):
            try:
                outcome = await self._call(request)
            except McpConfigError as exc:
                calls.add(1, {**labels, "outcome": "error"})
                raise ApplicationError(str(exc), type=ERR_MCP_CONFIG, non_retryable=True) from exc
            except McpUnavailable as exc:
                calls.add(1, {**labels, "outcome": "unavailable"})
                raise ApplicationError(str(exc), type=ERR_MCP_UNAVAILABLE) from exc
            except McpCallLost as exc:
                calls.add(1, {**labels, "outcome": "lost"})
                raise ApplicationError(str(exc), type=ERR_MCP_CALL_LOST) from exc
        calls.add(1, {**labels, "outcome": "ok" if outcome.ok else "error"})
        return outcome

    async def _call(self, request: McpCallRequest) -> ToolOutcome:
        server = request.server
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                pool = await self.pool()
                async with pool.client(server, request.conversation_id) as client:
                    # From here on the server may have seen the call.
                    return await self._send(client, request)
            except McpUnavailable:
                if attempt == CONNECT_ATTEMPTS:
                    raise
                await asyncio.sleep(0.5 * attempt)  # nothing was sent: back off, reconnect
        raise AssertionError("unreachable")

    async def _send(self, client: Client, request: McpCallRequest) -> ToolOutcome:
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT
        from pydantic import ValidationError

        from onward.activities.mcp_results import to_outcome
        from onward.activities.transcripts import inline, store_result

        server = request.server
        key = f"{request.conversation_id}:{request.call_id}"
        try:
            result = await client.call_tool(
                request.tool, request.args, meta={IDEMPOTENCY_META: key}
            )
        except MCPError as exc:
            if exc.code in (CONNECTION_CLOSED, REQUEST_TIMEOUT):
                raise self._lost(request, exc) from exc
            return ToolOutcome(ok=False, error=f"MCP server `{server.name}`: {exc.message}")
        except ValidationError as exc:
            # It ran and answered, in a shape the protocol does not allow.
            return ToolOutcome(
                ok=False,
                error=f"MCP server `{server.name}` answered with an invalid result: "
                f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}",
            )
        except Exception as exc:
            raise self._lost(request, exc) from exc
        cid = request.conversation_id

        async def put(data: bytes) -> str:
            return await self.store.put_blob(cid, data)

        outcome = await to_outcome(result, put)
        if not outcome.ok or outcome.content is None:
            return outcome
        # Like every tool result: kept in the store, inline in history only when small.
        ref = await store_result(self.store, cid, outcome.content)
        content = outcome.content if inline(outcome.content) else None
        return ToolOutcome(ok=True, content=content, content_ref=ref)

    @staticmethod
    def _lost(request: McpCallRequest, exc: BaseException) -> McpCallLost:
        from onward.activities.mcp_sessions import describe

        return McpCallLost(
            f"the connection to MCP server `{request.server.name}` broke while "
            f"`{request.tool}` was running ({describe(exc)}); it may or may not have run"
        )
