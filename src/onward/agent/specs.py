"""Serializable descriptions of goals and tools, as recorded in workflow history.

A conversation records the `GoalSpec` it started with, so replay and continue-as-new
never depend on whatever code is deployed later.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

ApprovalPolicy = Literal["auto", "confirm", "deny"]


class RetrySpec(BaseModel):
    max_attempts: int = Field(default=3, ge=0)
    initial_interval_s: float = Field(default=1.0, gt=0)
    backoff: float = Field(default=2.0, ge=1)
    max_interval_s: float = Field(default=30.0, gt=0)


class ToolSpec(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    """JSON schema of the arguments object."""
    approval: ApprovalPolicy = "auto"
    timeout_s: float = 30.0
    retry: RetrySpec = Field(default_factory=RetrySpec)
    compensation: str | None = None
    """Name of the tool that undoes this one; it receives this call's args and result."""
    task_queue: str | None = None
    local: bool = False
    """Run as a local activity: lower latency for short tools; needs no other queue."""
    follow_ups: list[str] = Field(default_factory=list[str])
    """Tools that usually come next with this one's result (e.g. `find_events` ->
    `search_flights`): a hint every model reads, never a rule the workflow enforces."""
    origin: str = "python"
    """Where the tool comes from: `python` (`@tool`) or `mcp:<server>` (listed from an
    MCP server of the goal at the start of the run)."""
    read_only: bool | None = None
    """The tool says it changes nothing (MCP `readOnlyHint`); None = not known."""
    model_visible: bool = True
    """False for a tool only the workflow runs (a saga's compensation): it is never
    offered to a model, and a model's call to it is refused like a tool outside the goal."""


# ----------------------------------------------------------------- MCP servers
# Only what is safe to record: commands, URLs and the *names* of secrets; the values
# are looked up in settings by the activity that connects.


class SecretRef(BaseModel):
    """A value taken from `ONWARD_MCP_SECRETS[secret]` by the activity at run time."""

    secret: str
    template: str = "{}"
    """How the value is written, e.g. `Bearer {}` for an Authorization header."""


SecretOrText = str | SecretRef


class McpStdio(BaseModel):
    kind: Literal["stdio"] = "stdio"
    command: str
    args: list[str] = Field(default_factory=list[str])
    env: dict[str, SecretOrText] = Field(default_factory=dict[str, SecretOrText])
    cwd: str | None = None


class McpHttp(BaseModel):
    kind: Literal["http"] = "http"
    url: str
    headers: dict[str, SecretOrText] = Field(default_factory=dict[str, SecretOrText])


class McpServerSpec(BaseModel):
    name: str
    transport: Annotated[McpStdio | McpHttp, Field(discriminator="kind")]
    tools: list[str] | None = None
    """Allow-list of tool names or `fnmatch` patterns; None = every tool listed."""
    approval: dict[str, ApprovalPolicy] = Field(default_factory=dict[str, ApprovalPolicy])
    """Tool name or pattern -> policy; exact names win, then the first matching pattern,
    else `auto` for read-only tools and `confirm` for the rest."""
    prefix: str = ""
    stateful: bool = False
    timeout_s: float = 60.0
    heartbeat_s: float = 10.0
    list_timeout_s: float = 30.0
    retry: RetrySpec = Field(default_factory=RetrySpec)
    """For tools that say they are read-only or idempotent; others get one attempt."""
    task_queue: str | None = None


class ExampleTurn(BaseModel):
    user: str
    assistant: str


class GoalSpec(BaseModel):
    name: str
    description: str
    instructions: str
    tools: list[ToolSpec]
    starter_prompt: str = ""
    examples: list[ExampleTurn] = Field(default_factory=list[ExampleTurn])
    saga: bool = False
    """When a tool call fails, undo earlier calls that have a compensation, newest first."""
    agents: list[GoalSpec] = Field(default_factory=list["GoalSpec"])
    """Goals this agent may delegate plan steps to (or hand off to, when `handoff`)."""
    handoff: bool = False
    """A router: it hands the whole conversation to one of `agents` instead of planning."""
    reviewer: GoalSpec | None = None
    """Reviews the answer after a plan ran; a rejection sends its feedback back to this
    agent, which plans again (completed steps are not re-run)."""
    max_review_rounds: int = Field(default=3, ge=1)
    plan_deadline_s: float | None = Field(default=None, gt=0)
    """Steps still running this long after a plan started are cancelled and reported."""
    max_plan_steps: int = Field(default=8, ge=1)
    graph: str | None = None
    """Name of a registered LangGraph reasoning graph that replaces the default loop."""
    end_on_finish: bool = False
    """End the conversation when the goal is finished. By default a finished goal
    answers the turn and the conversation stays open for follow-ups."""
    guardrail: bool = True
    """Let the model refuse a new user message that is outside the goal (a `Refuse`
    decision, judged in the same call as the decision, never a separate one)."""
    mcp_servers: list[McpServerSpec] = Field(default_factory=list[McpServerSpec])
    """MCP servers whose tools join `tools` once listed, at the start of each run."""

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)

    def agent(self, name: str) -> GoalSpec | None:
        return next((a for a in self.agents if a.name == name), None)

    def mcp_server(self, name: str) -> McpServerSpec | None:
        return next((m for m in self.mcp_servers if m.name == name), None)
