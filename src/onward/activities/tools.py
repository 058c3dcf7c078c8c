"""The tool activity: runs any registered tool by name with its idempotency key."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_jsonable_python
from temporalio import activity
from temporalio.exceptions import ApplicationError

from onward.agent.activity_contracts import ACTIVITY_TOOL, ToolInvocation, ToolOutcome
from onward.exceptions import ERR_TOOL_FAILED, ERR_UNKNOWN_TOOL, ToolRefused, UnknownToolError
from onward.observability import METRIC_TOOL_CALLS
from onward.tools.context import ToolContext, reset_tool_context, set_tool_context
from onward.tools.decorator import Tool, ToolArgumentsError
from onward.tools.registry import get_tool


def _compensation_args(t: Tool, inv: ToolInvocation) -> dict[str, Any]:
    """Feed a compensation tool from the undone call's args and result, by name."""
    assert inv.compensating is not None
    pool: dict[str, Any] = dict(inv.compensating.args)
    result = inv.compensating.result
    if isinstance(result, dict):
        pool.update(result)  # pyright: ignore[reportUnknownArgumentType]
    else:
        pool["result"] = result
    return {k: v for k, v in pool.items() if k in t.args_model.model_fields}


@activity.defn(name=ACTIVITY_TOOL)
async def run_tool(inv: ToolInvocation) -> ToolOutcome:
    """Run one tool call. Bad arguments come back as an outcome, not a retry."""
    try:
        t = get_tool(inv.tool)
    except UnknownToolError as exc:
        raise ApplicationError(str(exc), type=ERR_UNKNOWN_TOOL, non_retryable=True) from exc
    args = _compensation_args(t, inv) if inv.compensating else inv.args
    info = activity.info()
    ctx = ToolContext(
        conversation_id=inv.conversation_id, call_id=inv.call_id, attempt=info.attempt
    )
    token = set_tool_context(ctx)
    calls = activity.metric_meter().create_counter(METRIC_TOOL_CALLS, "Tool call attempts")
    try:
        content = await t.invoke(args, ctx)
    except ToolArgumentsError as exc:
        calls.add(1, {"tool": t.name, "outcome": "invalid_args"})
        return ToolOutcome(ok=False, error=f"invalid arguments: {exc}")
    except ToolRefused as exc:
        calls.add(1, {"tool": t.name, "outcome": "refused"})
        return ToolOutcome(ok=False, error=f"refused: {exc}")
    except Exception as exc:
        calls.add(1, {"tool": t.name, "outcome": "error"})
        # Retried per the tool's policy; the last message reaches the model.
        raise ApplicationError(f"{type(exc).__name__}: {exc}", type=ERR_TOOL_FAILED) from exc
    finally:
        reset_tool_context(token)
    calls.add(1, {"tool": t.name, "outcome": "ok"})
    # Results cross into history as plain JSON, whatever type the tool returned.
    return ToolOutcome(ok=True, content=to_jsonable_python(content))
