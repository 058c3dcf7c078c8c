"""Small goals used by the workflow tests (registered once, on import)."""

from __future__ import annotations

from onward.agent.decisions import CallTools, ToolCall
from onward.goals.base import Goal
from onward.tools import ToolContext, tool


def call(cid: str, tool_name: str, **args: object) -> CallTools:
    """A decision to run one tool."""
    return CallTools(calls=[ToolCall(call_id=cid, tool=tool_name, args=args)])


CALLS: list[tuple[str, str]] = []
"""(tool, idempotency key) of every tool execution, to assert nothing runs twice."""


@tool
def add(a: int, b: int, ctx: ToolContext) -> int:
    """Add two integers."""
    CALLS.append(("add", ctx.idempotency_key))
    return a + b


@tool
def multiply(a: int, b: int, ctx: ToolContext) -> int:
    """Multiply two integers."""
    CALLS.append(("multiply", ctx.idempotency_key))
    return a * b


@tool
async def describe(value: int, ctx: ToolContext) -> dict[str, object]:
    """Describe a number."""
    CALLS.append(("describe", ctx.idempotency_key))
    return {"value": value, "even": value % 2 == 0}


@tool(approval="confirm")
def transfer(amount: int, to: str, ctx: ToolContext) -> str:
    """Transfer money (needs approval)."""
    CALLS.append(("transfer", ctx.idempotency_key))
    return f"sent {amount} to {to}"


@tool(approval="deny")
def delete_everything(ctx: ToolContext) -> str:
    """Never allowed."""
    CALLS.append(("delete_everything", ctx.idempotency_key))
    return "gone"


MATH = Goal(
    name="test-math",
    description="Arithmetic help.",
    instructions="Use the tools to compute.",
    tools=[add, multiply, describe, transfer, delete_everything],
    end_on_finish=True,
)

OPEN_MATH = Goal(
    name="test-math-open",
    description="Arithmetic help that stays open for follow-ups.",
    instructions="Use the tools to compute.",
    tools=[add, multiply, describe, transfer],
)
