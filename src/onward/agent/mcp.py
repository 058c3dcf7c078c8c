"""MCP tools inside the workflow: listed once per run, then run like any other tool.

At the first decision of a run the goal's MCP servers are listed by one activity (per
task queue); the result is recorded in history, so a replay sees the same tools and
a new run (or a new conversation) sees the server's changes. The listed tools are
merged into the goal's `tools` as ordinary `ToolSpec`s: the model sees them exactly
like Python tools, and `ToolRunner` applies the same allow-list, schema validation and
approval before a call reaches `execute_mcp_call`.

The policy decisions (which tools, which approval, which retries) are made here, on
recorded data, never by the server: a server can only mark a tool read-only, which
makes it `auto` unless the goal's `approval` says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.exceptions import TimeoutError as TemporalTimeout

from onward.agent.activity_contracts import ToolInvocation, ToolOutcome
from onward.agent.contracts import ConversationState, Status
from onward.agent.messages import NoticeLevel
from onward.agent.retry import tool_retry_policy
from onward.agent.specs import ApprovalPolicy, GoalSpec, McpServerSpec, RetrySpec, ToolSpec

ACTIVITY_MCP_LIST = "onward.mcp.list_tools"
ACTIVITY_MCP_CALL = "onward.mcp.call_tool"
ORIGIN_PREFIX = "mcp:"
# What every model provider accepts as a function name.
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LIST_MARGIN_S = 15.0


class McpToolInfo(BaseModel):
    """One tool as the server listed it (its annotations are hints, not promises)."""

    name: str
    title: str | None = None
    description: str | None = None
    input_schema: dict[str, Any]
    read_only: bool | None = None
    destructive: bool | None = None
    idempotent: bool | None = None


class McpServerListing(BaseModel):
    server: str
    tools: list[McpToolInfo] = Field(default_factory=list[McpToolInfo])
    skipped: list[str] = Field(default_factory=list[str])
    """Tools left out by the activity, with why (e.g. an input schema that is not one)."""
    error: str | None = None
    """Why the server could not be listed; its tools are unavailable this time."""


class McpListRequest(BaseModel):
    conversation_id: str
    servers: list[McpServerSpec]


class McpListResult(BaseModel):
    servers: list[McpServerListing]


class McpCallRequest(BaseModel):
    conversation_id: str
    call_id: str
    server: McpServerSpec
    tool: str
    """The tool's name on the server (without the goal's prefix)."""
    args: dict[str, Any]


# ------------------------------------------------------------------ policy (pure)


def tool_allowed(server: McpServerSpec, name: str) -> bool:
    """Whether the goal's allow-list for `server` lets the model see tool `name`."""
    if server.tools is None:
        return True
    return any(name == pattern or fnmatchcase(name, pattern) for pattern in server.tools)


def approval_for(server: McpServerSpec, tool: McpToolInfo) -> ApprovalPolicy:
    """Exact name, then the first matching pattern, else auto only if read-only."""
    if tool.name in server.approval:
        return server.approval[tool.name]
    for pattern, policy in server.approval.items():
        if fnmatchcase(tool.name, pattern):
            return policy
    return "auto" if tool.read_only is True else "confirm"


def retry_for(server: McpServerSpec, tool: McpToolInfo) -> RetrySpec:
    """The server's retries for tools that are safe to repeat; one attempt otherwise.

    MCP has no idempotency key, so a retried call is at-least-once: harmless for a
    read-only or idempotent tool, a possible duplicate for any other.
    """
    if tool.read_only is True or tool.idempotent is True:
        return server.retry
    return server.retry.model_copy(update={"max_attempts": 1})


def tool_specs(
    server: McpServerSpec, listing: McpServerListing, taken: set[str]
) -> tuple[list[ToolSpec], list[str]]:
    """The goal-visible tools of one listed server, and why others were left out."""
    specs: list[ToolSpec] = []
    problems = [f"`{server.name}`: {why}" for why in listing.skipped]
    for info in listing.tools:
        if not tool_allowed(server, info.name):
            continue
        name = server.prefix + info.name
        if not _TOOL_NAME.match(name):
            problems.append(f"`{name}` of `{server.name}`: not a name models accept")
            continue
        if name in taken:
            problems.append(
                f"`{name}` of `{server.name}`: the name is already taken; give the server "
                "a `prefix`"
            )
            continue
        taken.add(name)
        specs.append(
            ToolSpec(
                name=name,
                description=info.description or info.title or f"`{info.name}` ({server.name})",
                parameters=info.input_schema,
                approval=approval_for(server, info),
                timeout_s=server.timeout_s,
                retry=retry_for(server, info),
                task_queue=server.task_queue,
                origin=ORIGIN_PREFIX + server.name,
                read_only=info.read_only,
            )
        )
    return specs, problems


def merge_tools(
    goal: GoalSpec, listings: dict[str, McpServerListing]
) -> tuple[list[ToolSpec], list[str]]:
    """`goal.tools` with MCP tools replaced by those of `listings` (by server name)."""
    tools = [t for t in goal.tools if not t.origin.startswith(ORIGIN_PREFIX)]
    taken = {t.name for t in tools}
    problems: list[str] = []
    for server in goal.mcp_servers:
        listing = listings.get(server.name)
        if listing is None or listing.error is not None:
            continue
        specs, skipped = tool_specs(server, listing, taken)
        tools += specs
        problems += skipped
    return tools, problems


# ------------------------------------------------------------- workflow side


Notify = Callable[[str, NoticeLevel], None]
SetStatus = Callable[[Status, str | None], None]


class McpCatalog:
    """Lists the goal's MCP servers once per run and keeps their tools in the goal."""

    def __init__(self, state: ConversationState, notify: Notify, set_status: SetStatus) -> None:
        self._s = state
        self._notify = notify
        self._set_status = set_status
        # Keyed by the server's whole spec: a handoff to a goal with another server of
        # the same name lists that one too. Instance state, so every run lists afresh.
        self._listed: dict[str, McpServerListing] = {}
        self._failed_in_turn: dict[str, int] = {}

    @staticmethod
    def _key(server: McpServerSpec) -> str:
        return server.model_dump_json()

    async def ensure_listed(self) -> None:
        """List the servers not yet listed in this run and merge their tools.

        A server that cannot be listed is reported to the user; the conversation goes
        on without its tools, and the first decision of the next turn tries again.
        """
        s = self._s
        goal = s.goal
        if not goal.mcp_servers:
            return
        missing = [
            m
            for m in goal.mcp_servers
            if self._key(m) not in self._listed
            and self._failed_in_turn.get(self._key(m)) != s.turns
        ]
        by_queue: dict[str | None, list[McpServerSpec]] = {}
        for server in missing:
            by_queue.setdefault(server.task_queue, []).append(server)
        fresh: list[McpServerListing] = []
        if missing:
            names = ", ".join(f"`{m.name}`" for m in missing)
            self._set_status("running_tools", f"listing the tools of MCP servers {names}")
        for queue, servers in by_queue.items():
            fresh += await self._list(queue, servers)
        for server, listing in zip(missing, _in_order(missing, fresh), strict=True):
            if listing.error is None:
                self._listed[self._key(server)] = listing
            else:
                self._failed_in_turn[self._key(server)] = s.turns
                self._notify(
                    f"Tools of MCP server `{server.name}` are unavailable: {listing.error}. "
                    "The conversation goes on without them; they are tried again with "
                    "your next message.",
                    "error",
                )
        current = {
            m.name: self._listed[self._key(m)]
            for m in goal.mcp_servers
            if self._key(m) in self._listed
        }
        tools, problems = merge_tools(goal, current)
        if missing and problems:
            self._notify("Some MCP tools were left out: " + "; ".join(problems), "warning")
        if tools != goal.tools:
            s.goal = goal.model_copy(update={"tools": tools})

    async def _list(
        self, queue: str | None, servers: list[McpServerSpec]
    ) -> list[McpServerListing]:
        longest = max(m.list_timeout_s for m in servers)
        try:
            result = await workflow.execute_activity(
                ACTIVITY_MCP_LIST,
                McpListRequest(conversation_id=self._s.conversation_id, servers=servers),
                result_type=McpListResult,
                task_queue=queue,
                start_to_close_timeout=timedelta(seconds=longest + _LIST_MARGIN_S),
                heartbeat_timeout=timedelta(seconds=min(m.heartbeat_s for m in servers)),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as exc:
            reason = f"listing failed ({_reason(exc)})"
            return [McpServerListing(server=m.name, error=reason) for m in servers]
        return result.servers


def _in_order(
    servers: list[McpServerSpec], listings: list[McpServerListing]
) -> list[McpServerListing]:
    by_name = {listing.server: listing for listing in listings}
    return [
        by_name.get(m.name) or McpServerListing(server=m.name, error="not listed") for m in servers
    ]


# ------------------------------------------------------------------- calling


async def execute_mcp_call(
    goal: GoalSpec, spec: ToolSpec, invocation: ToolInvocation
) -> ToolOutcome:
    """Run one MCP tool call as its own activity; every failure is a tool error."""
    server = goal.mcp_server(spec.origin.removeprefix(ORIGIN_PREFIX))
    if server is None:
        return ToolOutcome(ok=False, error=f"the MCP server of `{spec.name}` is not in this goal")
    request = McpCallRequest(
        conversation_id=invocation.conversation_id,
        call_id=invocation.call_id,
        server=server,
        tool=spec.name.removeprefix(server.prefix),
        args=invocation.args,
    )
    try:
        return await workflow.execute_activity(
            ACTIVITY_MCP_CALL,
            request,
            result_type=ToolOutcome,
            task_queue=server.task_queue,
            # Connecting (a subprocess starting) has its own budget on top of the call's.
            start_to_close_timeout=timedelta(seconds=spec.timeout_s + server.list_timeout_s),
            heartbeat_timeout=timedelta(seconds=server.heartbeat_s),
            retry_policy=tool_retry_policy(spec.retry),
        )
    except ActivityError as exc:
        return ToolOutcome(ok=False, error=_call_failure(exc, spec, server))


def _innermost(exc: BaseException) -> BaseException:
    cause = exc
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    return cause


def _reason(exc: BaseException) -> str:
    cause = _innermost(exc)
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause) or type(cause).__name__


def _call_failure(exc: ActivityError, spec: ToolSpec, server: McpServerSpec) -> str:
    if isinstance(_innermost(exc), TemporalTimeout):
        return (
            f"`{spec.name}` on MCP server `{server.name}` did not report back in time "
            "(the worker running it was lost, or the server hung). It may or may not "
            "have run on the server: check before calling it again."
        )
    return _reason(exc)
