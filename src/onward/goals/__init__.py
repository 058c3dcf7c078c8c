"""Goals: the `Goal` definition and the catalog that finds goals (and tools) by name."""

from onward.goals.base import Goal
from onward.goals.catalog import GoalCatalog

__all__ = ["Goal", "GoalCatalog"]
