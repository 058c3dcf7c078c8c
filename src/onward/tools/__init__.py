"""Tools: typed Python functions the agent may call, each run as an activity."""

from onward.tools.context import ToolContext, current_tool_context
from onward.tools.decorator import Tool, tool

__all__ = ["Tool", "ToolContext", "current_tool_context", "tool"]
