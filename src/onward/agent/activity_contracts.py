"""Names and input/output shapes of the activities the workflow calls.

The workflow refers to activities by these names only, so it never imports the
modules that do I/O (`onward.activities`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from onward.agent.contracts import TranscriptRef
from onward.agent.decisions import Decision, GuardrailVerdict
from onward.agent.messages import Message, Usage
from onward.agent.specs import GoalSpec

ACTIVITY_DECIDE = "onward.decide"
ACTIVITY_GUARDRAIL = "onward.guardrail"
ACTIVITY_TOOL = "onward.tool"


class Compensating(BaseModel):
    """The call being undone: its args and result feed the compensation tool."""

    call_id: str
    tool: str
    args: dict[str, Any]
    result: Any = None
    result_ref: str | None = None
    """The result in the transcript store, when it was not kept inline."""


class ToolInvocation(BaseModel):
    conversation_id: str
    call_id: str
    tool: str
    args: dict[str, Any]
    compensating: Compensating | None = None


class ToolOutcome(BaseModel):
    ok: bool
    content: Any = None
    """The result, inline when small; None for a large one (see `content_ref`)."""
    error: str | None = None
    content_ref: str | None = None
    """The result in the transcript store: later activities get this, never the result."""


class DecideRequest(BaseModel):
    """Input of the decide activity: references plus what is new, so history grows with
    what a turn adds, not with the length of the conversation.

    The activity stores `messages` after `transcript`, resolves tool results held by
    reference and the goal by `goal_ref`, and hands the model the whole transcript.
    (Requests recorded before the transcript store carry the whole transcript in
    `messages` and the goal inline; they decode into this shape unchanged.)
    """

    conversation_id: str
    goal: GoalSpec | None = None
    """Sent inline with the first request of a run that uses it; later ones by ref."""
    goal_ref: str | None = None
    transcript: TranscriptRef | None = None
    """The stored prefix; `messages` come after it."""
    messages: list[Message] = Field(default_factory=list[Message])
    extra: list[Message] = Field(default_factory=list[Message])
    """Shown to the model after the transcript for this call only, never stored (a
    reviewer's draft)."""
    repair_hint: str | None = None
    review: bool = False
    check_topic: bool = False
    max_attempts: int = 10
    model: str | None = None
    """The conversation's own model id, when it has one (`ConversationOptions.model`)."""


class DecideResult(BaseModel):
    """A model call's outcome. `malformed` explains an unusable output (re-ask)."""

    decision: Decision | None = None
    malformed: str | None = None
    usage: Usage
    model_name: str
    transcript: TranscriptRef | None = None
    """The stored transcript after the request's messages were appended."""


class GuardrailRequest(BaseModel):
    """Input of the guardrail activity, which only runs for conversations recorded
    before the guardrail moved into the decision."""

    conversation_id: str
    goal: GoalSpec
    messages: list[Message]
    """The transcript before the message being checked."""
    text: str


class GuardrailResponse(BaseModel):
    verdict: GuardrailVerdict
    usage: Usage = Field(default_factory=Usage)
