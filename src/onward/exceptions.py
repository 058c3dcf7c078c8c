"""Every error onward raises, in one place.

Three families, as a caller needs to tell them apart:

- `UserError`: a developer mistake (bad tool signature, unknown goal, wrong config).
  Fix the code or the configuration; retrying does not help.
- `OnwardRuntimeError`: something failed while running (model provider, tool, server).
- Input refusals (`InputRejected` and subclasses): a request that the conversation
  turns down with a reason, e.g. a stale approval. The conversation itself is fine.

The `ApplicationError` type strings used across the activity/workflow boundary are
defined once here, so both sides agree on them.
"""

from __future__ import annotations


class OnwardError(Exception):
    """Base class of every onward exception."""


class UserError(OnwardError):
    """A developer mistake: the message says what to change."""


class UnknownGoalError(UserError):
    """No goal is registered under the requested name."""


class UnknownToolError(UserError):
    """No tool is registered under the requested name."""


class OnwardRuntimeError(OnwardError):
    """A failure while running; may be transient."""


class ToolArgumentsError(OnwardError, ValueError):
    """A tool call's arguments did not validate against the tool's signature (or a tool
    found them unusable): never retried, the reason goes back to the model."""


class ToolRefused(OnwardRuntimeError):
    """Raise from a tool to refuse a call with a reason (card declined, sold out): the
    model sees the reason as the tool's result and carries on; it is not retried."""


class ServerStartError(OnwardRuntimeError):
    """The embedded Temporal server did not come up."""


class McpConfigError(UserError):
    """An MCP server is configured in a way that cannot work: a secret it names is not
    set, its command is not installed, a credential is written as a literal."""


class McpUnavailable(OnwardRuntimeError):
    """An MCP server could not be reached or started; nothing was sent to it."""


class McpCallLost(OnwardRuntimeError):
    """The connection to an MCP server broke after a call was sent: the call may or
    may not have run there (MCP has no idempotency key to ask)."""


class InputRejected(OnwardError):
    """A conversation input was refused; `reason` is shown to the caller, and `details`
    (e.g. `{"decision": "approve"}` for an approval decided otherwise already) with it."""

    def __init__(self, reason: str, details: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details or {}


class ConversationNotFound(OnwardError):
    """No conversation with that id exists (or it was erased)."""


class ConversationBusy(OnwardRuntimeError):
    """Temporal refused more requests for a conversation for now (e.g. its limit of
    in-flight updates); retrying shortly helps."""


class TranscriptMissing(OnwardRuntimeError):
    """A referenced transcript segment or blob is not in the store (erased, or another
    data dir)."""


class ApiError(OnwardError):
    """An error an API route raises to answer with HTTP `status`, a stable `code` and a
    reason (mapped to the error body in `onward.api.errors`)."""

    def __init__(
        self, status: int, code: str, reason: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.headers = headers


class ChaosFailure(OnwardRuntimeError):
    """`onward chaos`: the API answered what a correct API never answers to its requests."""


class LedgerError(OnwardRuntimeError):
    """A ledger operation (the example goals' records) could not be completed."""


class RecordNotFound(LedgerError):
    """The record an update or undo refers to does not exist (for this conversation)."""


class OutOfStock(LedgerError):
    """A reservation asked for more units than are still available."""


class ChargeRefused(LedgerError):
    """A charge was asked for a reservation that cannot be charged (it was released)."""


class WrongAmount(LedgerError):
    """A charge named an amount that is not its reservation's."""


class ShipmentFailed(OnwardRuntimeError):
    """The carrier refused the shipment (the purchase example's saga step)."""


# ApplicationError `type` strings shared by activities and workflows.
INPUT_REJECTED = "InputRejected"
"""A workflow update validator refused the input; the client raises `InputRejected`."""
ERR_MODEL_PERMANENT = "ModelPermanentError"
"""Auth, bad request, not found, content filter: retrying cannot help."""
ERR_MODEL_RATE_LIMITED = "ModelRateLimited"
"""429: retried after the provider's Retry-After."""
ERR_MODEL_TRANSIENT = "ModelTransientError"
"""5xx, connection reset, timeout: retried with backoff."""
ERR_TOOL_FAILED = "ToolFailed"
"""The tool raised: retried per its policy; the last error goes back to the model."""
ERR_TOOL_INVALID_ARGS = "ToolInvalidArguments"
"""Arguments failed the tool's own validation: never retried."""
ERR_MCP_CONFIG = "McpConfigError"
"""An MCP server's configuration cannot work (missing secret or command): not retried."""
ERR_MCP_UNAVAILABLE = "McpUnavailable"
"""An MCP server could not be reached; the call was not sent, so a retry is safe."""
ERR_MCP_CALL_LOST = "McpCallLost"
"""The connection broke after the call was sent; retried only per the tool's policy."""
ERR_TRANSCRIPT = "TranscriptUnavailable"
"""A request's transcript or goal spec is not in the store (erased, another data dir)."""
ERR_UNKNOWN_GOAL = "UnknownGoal"
ERR_UNKNOWN_TOOL = "UnknownTool"

NON_RETRYABLE_TYPES = [
    ERR_MODEL_PERMANENT,
    ERR_TRANSCRIPT,
    ERR_TOOL_INVALID_ARGS,
    ERR_UNKNOWN_GOAL,
    ERR_UNKNOWN_TOOL,
]


class ModelError(OnwardRuntimeError):
    """A model provider call failed. Subclasses say whether to retry."""


class ModelRateLimited(ModelError):
    """429: try again after `retry_after_s` (from the provider's Retry-After)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelTransientError(ModelError):
    """5xx, connection error or timeout: retry with backoff. `status` is the HTTP status
    when there was one (a 500 that repeats identically is given up on early)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ModelPermanentError(ModelError):
    """400/401/403/404 or a content-filter refusal: retrying cannot help."""


class MalformedModelOutput(ModelError):
    """The model's output is not a valid decision; the caller may re-ask.

    `usage` carries the tokens the failed call still cost.
    """

    def __init__(self, message: str, usage: object | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class EvalSetError(UserError):
    """An eval-set file or case cannot be used: the message says what is wrong with it."""


ERR_EVAL_CASE = "EvalCaseUnusable"
"""A recorded case cannot be replayed (unreadable, no user message): never retried."""


class StreamLagged(OnwardRuntimeError):
    """A stream subscriber fell so far behind that the items it needs next were
    dropped; it should reconnect from its last offset."""


class ChatError(OnwardError):
    """Something the terminal chat's user must fix or know; printed without a traceback."""
