"""The conversation transcript in onward's own schema.

Providers' message formats are converted at the activity boundary
(`onward.models`); the workflow and its history only ever see these types.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter


class UserMessage(BaseModel):
    kind: Literal["user"] = "user"
    text: str
    id: str | None = None
    """The sender's message id (`SendMessage.message_id`), when it had one."""


class AssistantMessage(BaseModel):
    """Text the agent shows the user: a question, an answer, a redirect."""

    kind: Literal["assistant"] = "assistant"
    text: str


class ToolCallMessage(BaseModel):
    """The agent decided to call a tool with these arguments."""

    kind: Literal["tool_call"] = "tool_call"
    call_id: str
    tool: str
    args: dict[str, Any]


class ToolResultMessage(BaseModel):
    """What came back from a tool call, or why it did not run."""

    kind: Literal["tool_result"] = "tool_result"
    call_id: str
    tool: str
    ok: bool
    content: Any = None
    error: str | None = None
    content_ref: str | None = None
    """The result in the transcript store. `content` may be None while this is set (a
    large result, or one sent to an activity by reference); readers resolve it."""


NoticeLevel = Literal["info", "warning", "error"]


class NoticeMessage(BaseModel):
    """A system notice shown to the user (budget reached, model error, undo report)."""

    kind: Literal["notice"] = "notice"
    text: str
    level: NoticeLevel = "info"


Message = Annotated[
    UserMessage | AssistantMessage | ToolCallMessage | ToolResultMessage | NoticeMessage,
    Field(discriminator="kind"),
]
MESSAGES_ADAPTER: TypeAdapter[list[Message]] = TypeAdapter(list[Message])


class Usage(BaseModel):
    """Token usage and cost.

    For one model call an unknown price is `cost_usd=None` with
    `cost_unknown_requests=1` (never zero). Totals add the known costs and count the
    unpriced calls, so a reader can say "at least $x, n calls unpriced".
    """

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = 0.0
    cost_unknown_requests: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def known_cost_usd(self) -> float:
        return self.cost_usd or 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cost_usd=round(self.known_cost_usd + other.known_cost_usd, 8),
            cost_unknown_requests=self.cost_unknown_requests + other.cost_unknown_requests,
        )
