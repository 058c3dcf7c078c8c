"""Tools: typed Python functions the agent may call, each run as an activity."""

from onward.tools.context import ToolContext, current_tool_context
from onward.tools.decorator import Tool, tool
from onward.tools.registry import all_tools, get_tool, register_tool

__all__ = [
    "Tool",
    "ToolContext",
    "all_tools",
    "current_tool_context",
    "get_tool",
    "register_tool",
    "tool",
]
