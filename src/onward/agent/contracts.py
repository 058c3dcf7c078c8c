"""Inputs and outputs of the conversation workflow: one model per update and query.

These are the only shapes that cross the client/workflow boundary; the API, the CLI
and tests build them, the workflow validates them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio.contrib.workflow_streams import WorkflowStreamState

from onward.agent.messages import Message, Usage
from onward.agent.specs import GoalSpec

WORKFLOW_NAME = "ConversationWorkflow"
UPDATE_SEND_MESSAGE = "send_message"
UPDATE_DECIDE_APPROVAL = "decide_approval"
UPDATE_END = "end"
UPDATE_RAISE_BUDGET = "raise_budget"
UPDATE_STOP = "stop"
QUERY_STATE = "state"
QUERY_FORK_SOURCE = "fork_source"
"""What a fork of the conversation starts from: its goal spec, options and transcript."""
SIGNAL_SEND_MESSAGE = "message"
"""A user message, delivered by signal: the server keeps it durably even while no worker
runs, so an acknowledged message is never lost. Deduplicated by `message_id`."""
SIGNAL_CHILD_APPROVAL = "child_approval"
"""A child tells its parent an approval opened or closed (so the parent lists it)."""
SIGNAL_APPROVAL_DECISION = "approval_decision"
"""A parent forwards a user's decision on a surfaced approval to the child."""

MessagePolicy = Literal["queue", "interrupt"]
Status = Literal[
    "waiting_for_user",
    "thinking",
    "retrying_model",
    "running_tools",
    "waiting_for_approval",
    "delegating",
    "budget_exhausted",
    "ended",
]
Outcome = Literal["finished", "asked", "budget_exhausted", "cancelled", "failed", "ended"]
"""How a conversation ended: what a parent needs to know about a child's result."""


class TranscriptRef(BaseModel):
    """A transcript prefix in the transcript store: its last segment and its length."""

    conversation_id: str
    """Whose segment it is (a fork's transcript continues from its original's)."""
    id: str
    count: int = Field(ge=0)


class Budget(BaseModel):
    """Per-conversation limits; `None` means unlimited."""

    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)


class RecordedCall(BaseModel):
    """A tool call of a recorded conversation, for replaying it in an eval."""

    tool: str
    args_hash: str
    ok: bool
    error: str | None = None
    content_ref: str | None = None
    """The recorded result in the transcript store (stored for the eval conversation)."""


class EvalScript(BaseModel):
    """Replays a recorded conversation against a candidate: the user's messages are fed
    in order, each once the agent rests; a tool call that matches a recorded one (name
    and arguments) gets the recorded result and runs nothing; any other is not executed
    (the model is told, the eval reports it). Nothing here has a side effect."""

    messages: list[str]
    """The user's messages after the first, in order."""
    recorded: list[RecordedCall] = Field(default_factory=list[RecordedCall])


class ConversationOptions(BaseModel):
    message_policy: MessagePolicy = "queue"
    """`queue`: a message sent mid-turn waits. `interrupt`: it cancels the in-flight
    model call and the agent plans again with it."""
    budget: Budget = Field(default_factory=Budget)
    approval_timeout_s: float = Field(default=24 * 3600, gt=0)
    idle_timeout_s: float = Field(default=7 * 24 * 3600, gt=0)
    turns_before_continue_as_new: int = Field(default=50, ge=1)
    max_steps_per_turn: int = Field(default=12, ge=1)
    max_repairs: int = Field(default=2, ge=0)
    """How often a malformed model decision is sent back for repair within one step."""
    llm_task_queue: str = "onward-llm"
    search_attributes: bool = True
    """Index goal, owner, status and cost for the Temporal Web UI (the attributes must
    be registered on the cluster; the embedded server registers them)."""
    model_timeout_s: float = Field(default=120, gt=0)
    model_heartbeat_s: float = Field(default=15, gt=0)
    model_max_attempts: int = Field(default=10, ge=1)
    autonomous: bool = False
    """A sub-agent working for a parent: no user to ask, so asking, a budget stop or a
    step limit ends it with its partial result instead of waiting."""
    guardrail: bool = True
    """Whether goals that opt into the guardrail judge new messages (`ONWARD_GUARDRAIL`)."""
    model: str | None = None
    """This conversation's model id (`openai:…`, `offline`, …) instead of the worker's
    configured one; keys still come from the worker's settings."""
    eval: EvalScript | None = None
    """Set for a conversation that replays a recording in an eval (see `EvalScript`)."""


class PendingApproval(BaseModel):
    call_id: str
    tool: str
    args: dict[str, Any]
    args_hash: str
    requested_at: datetime
    deadline: datetime
    agent: str | None = None
    """Set when a sub-agent asked: its goal."""
    conversation_id: str | None = None
    """Set when a sub-agent asked: the child conversation the tool call belongs to."""


class ParentLink(BaseModel):
    """Where a child conversation reports to."""

    conversation_id: str
    step_key: str
    """Unique within the parent; prefixes the ids of approvals surfaced there."""


class ChildApproval(BaseModel):
    """Signal from child to parent: `approval` opened (`open`) or closed."""

    step_key: str
    approval: PendingApproval
    open: bool
    decision: str | None = None
    """How it closed: approve, reject, expired."""


class StepResult(BaseModel):
    """What one plan step's child conversation produced."""

    step_id: str
    goal: str
    conversation_id: str
    outcome: Outcome
    answer: str | None = None
    partial: str | None = None
    usage: Usage = Field(default_factory=Usage)
    reused: bool = False
    """True when an identical step finished in an earlier plan and was not run again."""


class ToolCallRecord(BaseModel):
    """A tool call that ran, kept for compensation and the summary (the latest ones)."""

    call_id: str
    tool: str
    args: dict[str, Any]
    ok: bool
    result: Any = None
    compensated: bool = False
    result_ref: str | None = None


class SendMessage(BaseModel):
    text: str = Field(min_length=1)
    message_id: str | None = Field(default=None, min_length=1, max_length=128)
    """Chosen by the sender (derived from an idempotency key, or random): the same id
    sent twice is taken once. Events about the message carry it."""


class ConversationState(BaseModel):
    """Everything a run carries over continue-as-new."""

    conversation_id: str
    owner: str
    goal: GoalSpec
    options: ConversationOptions
    messages: list[Message] = Field(default_factory=list[Message])
    """The recent part of the transcript, from `window_start` on: what this turn added
    and what is not stored yet. The whole transcript is in the transcript store."""
    window_start: int = 0
    transcript: TranscriptRef | None = None
    """The stored prefix of the transcript (None: nothing stored yet)."""
    call_ids: list[str] = Field(default_factory=list[str])
    """Tool call ids used so far (the latest ones), so ids never repeat."""
    inbox: list[SendMessage | str] = Field(default_factory=list[SendMessage | str])
    """Messages waiting for the agent, oldest first (plain strings: recorded by an
    earlier version)."""
    seen_message_ids: list[str] = Field(default_factory=list[str])
    """The latest message ids taken, so a re-sent message is taken once."""
    usage: Usage = Field(default_factory=Usage)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list[ToolCallRecord])
    turns: int = 0
    runs: int = 1
    next_call_seq: int = 0
    model_name: str | None = None
    answer: str | None = None
    ended: bool = False
    end_reason: str | None = None
    stream: WorkflowStreamState | None = None
    """Event stream state carried over continue-as-new."""
    parent: ParentLink | None = None
    outcome: Outcome | None = None
    plans: int = 0
    step_cache: dict[str, StepResult] = Field(default_factory=dict[str, StepResult])
    """Finished plan steps by input hash: a re-plan reuses them instead of re-running."""

    @property
    def message_count(self) -> int:
        """The transcript's length (stored and recent)."""
        return self.window_start + len(self.messages)

    @property
    def stored_count(self) -> int:
        return self.transcript.count if self.transcript is not None else 0


class ForkStart(BaseModel):
    """Where a forked conversation starts: another conversation's transcript up to a
    point, by reference (the stored prefix) plus the few messages after it."""

    source_id: str
    at: int = Field(ge=0)
    """Transcript index the fork was made at: messages `[0, at)` are the fork's."""
    turns: int = Field(ge=0)
    transcript: TranscriptRef | None = None
    messages: list[Message] = Field(default_factory=list[Message])
    """Messages `[transcript.count, at)`, with tool results inline."""
    dropped_approvals: int = 0
    """Approvals that were pending at the fork point (they are not carried over)."""
    call_ids: list[str] = Field(default_factory=list[str])
    """Tool call ids of the prefix, so the fork never reuses one."""


class ForkSource(BaseModel):
    """The `fork_source` query's answer."""

    goal: GoalSpec
    options: ConversationOptions
    owner: str
    turns: int
    transcript: TranscriptRef | None
    window_start: int
    messages: list[Message]
    pending_call_ids: list[str]


class StartConversation(BaseModel):
    """Workflow input. `carried` is set only by continue-as-new, `fork` by a fork."""

    conversation_id: str
    owner: str = "local"
    goal: GoalSpec
    """Resolved by the starter from the goal registry, so history records it."""
    options: ConversationOptions = Field(default_factory=ConversationOptions)
    first_message: str | None = None
    carried: ConversationState | None = None
    parent: ParentLink | None = None
    fork: ForkStart | None = None


class SendMessageResult(BaseModel):
    index: int | None = None
    """Position of the message in the transcript when certain at acceptance (the agent
    was idle and takes it next); None when it waits behind other input."""
    queued: bool
    message_id: str | None = None


class DecideApproval(BaseModel):
    call_id: str
    decision: Literal["approve", "reject"]
    args_hash: str
    feedback: str | None = None


class RaiseBudget(BaseModel):
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)


class EndConversation(BaseModel):
    reason: str = "ended by user"


class StateQuery(BaseModel):
    offset: int = Field(default=0, ge=0)


class ConversationSnapshot(BaseModel):
    conversation_id: str
    owner: str
    goal: str
    status: Status
    status_detail: str | None = None
    pending_approvals: list[PendingApproval]
    usage: Usage
    budget: Budget
    message_count: int
    turns: int
    runs: int
    model_name: str | None
    offset: int
    messages: list[Message]
    """From `messages_offset` on: the workflow holds only recent messages; readers get
    the ones before from the transcript store (`Conversations.snapshot` does)."""
    answer: str | None = None
    messages_offset: int | None = None
    """Transcript index of `messages[0]` (None: `offset`, as recorded before the store)."""
    transcript: TranscriptRef | None = None
    stream_offset: int = -1
    """The offset of the newest item in the event stream when the snapshot was taken
    (-1: none yet, or an older worker answered). Everything at or below it is in the
    snapshot; subscribe with `after=stream_offset` for exactly what came since."""


class ConversationResult(BaseModel):
    conversation_id: str
    answer: str | None
    usage: Usage
    tool_calls: list[ToolCallRecord]
    message_count: int
    end_reason: str
    outcome: Outcome = "ended"
    partial: str | None = None
    """For an unfinished conversation: what it had done so far."""
