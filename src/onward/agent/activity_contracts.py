"""Names and input/output shapes of the activities the workflow calls.

The workflow refers to activities by these names only, so it never imports the
modules that do I/O (`onward.activities`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from onward.agent.decisions import Decision
from onward.agent.messages import Usage

ACTIVITY_DECIDE = "onward.decide"
ACTIVITY_GUARDRAIL = "onward.guardrail"
ACTIVITY_TOOL = "onward.tool"


class Compensating(BaseModel):
    """The call being undone: its args and result feed the compensation tool."""

    call_id: str
    tool: str
    args: dict[str, Any]
    result: Any = None


class ToolInvocation(BaseModel):
    conversation_id: str
    call_id: str
    tool: str
    args: dict[str, Any]
    compensating: Compensating | None = None


class ToolOutcome(BaseModel):
    ok: bool
    content: Any = None
    error: str | None = None


class DecideResult(BaseModel):
    """A model call's outcome. `malformed` explains an unusable output (re-ask)."""

    decision: Decision | None = None
    malformed: str | None = None
    usage: Usage
    model_name: str
