"""The tool activity: runs any registered tool by name with its idempotency key."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_jsonable_python
from temporalio import activity
from temporalio.exceptions import ApplicationError

from onward.activities.transcripts import inline, store_result
from onward.agent.activity_contracts import ACTIVITY_TOOL, ToolInvocation, ToolOutcome
from onward.exceptions import (
    ERR_TOOL_FAILED,
    ERR_UNKNOWN_TOOL,
    ToolArgumentsError,
    ToolRefused,
    UnknownToolError,
)
from onward.goals.catalog import GoalCatalog
from onward.observability import METRIC_TOOL_CALLS
from onward.store.transcripts import RESULT_ADAPTER, TranscriptStore
from onward.tools.context import ToolContext, reset_tool_context, set_tool_context
from onward.tools.decorator import Tool


async def _compensation_args(
    store: TranscriptStore, t: Tool, inv: ToolInvocation
) -> dict[str, Any]:
    """Feed a compensation tool from the undone call's args and result, by name."""
    assert inv.compensating is not None
    pool: dict[str, Any] = dict(inv.compensating.args)
    result = inv.compensating.result
    if result is None and inv.compensating.result_ref:
        data = await store.get_blob(inv.conversation_id, inv.compensating.result_ref)
        result = RESULT_ADAPTER.validate_json(data)
    if isinstance(result, dict):
        pool.update(result)  # pyright: ignore[reportUnknownArgumentType]
    else:
        pool["result"] = result
    return {k: v for k, v in pool.items() if k in t.args_model.model_fields}


class ToolActivities:
    """Holds the transcript store the worker shares with its model activities, and the
    catalog whose goals' tools this worker runs."""

    def __init__(self, store: TranscriptStore, catalog: GoalCatalog) -> None:
        self.store = store
        self.catalog = catalog

    @activity.defn(name=ACTIVITY_TOOL)
    async def run_tool(self, inv: ToolInvocation) -> ToolOutcome:
        """Run one tool call. Bad arguments come back as an outcome, not a retry."""
        return await run_tool(self.store, self.catalog, inv)


async def run_tool(
    store: TranscriptStore, catalog: GoalCatalog, inv: ToolInvocation
) -> ToolOutcome:
    """Run one tool call. Bad arguments come back as an outcome, not a retry."""
    try:
        t = catalog.tool(inv.tool)
    except UnknownToolError as exc:
        raise ApplicationError(str(exc), type=ERR_UNKNOWN_TOOL, non_retryable=True) from exc
    args = await _compensation_args(store, t, inv) if inv.compensating else inv.args
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
    # Results cross into history as plain JSON, whatever type the tool returned; the
    # store keeps each one, so later model calls get it by reference.
    jsonable = to_jsonable_python(content)
    if jsonable is None:
        return ToolOutcome(ok=True)
    ref = await store_result(store, inv.conversation_id, jsonable)
    return ToolOutcome(ok=True, content=jsonable if inline(jsonable) else None, content_ref=ref)
