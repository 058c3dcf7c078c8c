"""Goals: bundled examples and the registry that finds goals by name."""

from onward.goals.base import Goal
from onward.goals.registry import get_goal, load_goals, register_goal

__all__ = ["Goal", "get_goal", "load_goals", "register_goal"]
