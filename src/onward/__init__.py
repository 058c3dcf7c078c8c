"""onward: durable AI agents on Temporal.

Define tools with `@tool` and goals with `Goal`, and give the goals to `Onward`: it
builds the workers, the client and the API that run them durably.

Names are resolved lazily: the workflow sandbox imports this package afresh, and an
eager import here would give the sandbox its own copies of the decision classes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onward.agent.decisions import AskUser, CallTools, Decision, Finish, Refuse, ToolCall
    from onward.agent.specs import RetrySpec
    from onward.app import Onward
    from onward.exceptions import (
        InputRejected,
        OnwardError,
        OnwardRuntimeError,
        ToolRefused,
        UserError,
    )
    from onward.goals.base import Goal
    from onward.goals.catalog import GoalCatalog
    from onward.tools import ToolContext, current_tool_context, tool

_EXPORTS = {
    "AskUser": "onward.agent.decisions",
    "CallTools": "onward.agent.decisions",
    "Decision": "onward.agent.decisions",
    "Finish": "onward.agent.decisions",
    "Refuse": "onward.agent.decisions",
    "ToolCall": "onward.agent.decisions",
    "RetrySpec": "onward.agent.specs",
    "InputRejected": "onward.exceptions",
    "OnwardError": "onward.exceptions",
    "OnwardRuntimeError": "onward.exceptions",
    "ToolRefused": "onward.exceptions",
    "UserError": "onward.exceptions",
    "Goal": "onward.goals.base",
    "GoalCatalog": "onward.goals.catalog",
    "Onward": "onward.app",
    "ToolContext": "onward.tools",
    "current_tool_context": "onward.tools",
    "tool": "onward.tools",
}

__all__ = [
    "AskUser",
    "CallTools",
    "Decision",
    "Finish",
    "Goal",
    "GoalCatalog",
    "InputRejected",
    "Onward",
    "OnwardError",
    "OnwardRuntimeError",
    "Refuse",
    "RetrySpec",
    "ToolCall",
    "ToolContext",
    "ToolRefused",
    "UserError",
    "current_tool_context",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'onward' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
