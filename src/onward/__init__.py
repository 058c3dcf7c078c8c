"""onward: durable AI agents on Temporal.

Define tools with `@tool` and goals with `Goal`; the rest (workflow, activities,
API) runs them durably.
"""

from onward.agent.decisions import AskUser, CallTools, Decision, Finish, ToolCall
from onward.agent.specs import RetrySpec
from onward.exceptions import InputRejected, OnwardError, OnwardRuntimeError, UserError
from onward.goals.base import Goal
from onward.tools import ToolContext, current_tool_context, tool

__all__ = [
    "AskUser",
    "CallTools",
    "Decision",
    "Finish",
    "Goal",
    "InputRejected",
    "OnwardError",
    "OnwardRuntimeError",
    "RetrySpec",
    "ToolCall",
    "ToolContext",
    "UserError",
    "current_tool_context",
    "tool",
]
