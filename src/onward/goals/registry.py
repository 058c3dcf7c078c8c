"""Goals by name: the bundled ones, modules named in settings, and entry points.

A user adds a goal by writing one module that creates a `Goal`, then naming that
module in `ONWARD_GOAL_MODULES` or in an `onward.goals` entry point. Nothing else
needs editing.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from onward.exceptions import UnknownGoalError, UserError

if TYPE_CHECKING:
    from onward.goals.base import Goal

BUNDLED_MODULES = (
    "onward.goals.travel",
    "onward.goals.research",
    "onward.goals.support",
    "onward.goals.purchase",
    "onward.goals.teams",
    "onward.goals.research_graph",
)
ENTRY_POINT_GROUP = "onward.goals"

_GOALS: dict[str, Goal] = {}
_loaded = False


def register_goal(goal: Goal) -> None:
    existing = _GOALS.get(goal.name)
    if existing is not None and existing is not goal and existing.identity() != goal.identity():
        raise UserError(f"two different goals are named `{goal.name}`")
    _GOALS[goal.name] = goal


def _import(module: str) -> None:
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise UserError(f"goal module `{module}` was not found ({exc})") from exc
        raise


def load_goals(extra_modules: list[str] | None = None) -> dict[str, Goal]:
    """Import bundled goals, `extra_modules` and entry points; return all goals."""
    global _loaded
    if not _loaded:
        for module in BUNDLED_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                # A bundled goal that is not written yet is simply absent.
                if exc.name != module:
                    raise
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            ep.load()
        _loaded = True
    for module in extra_modules or []:
        _import(module)
    return dict(_GOALS)


def get_goal(name: str) -> Goal:
    try:
        return _GOALS[name]
    except KeyError:
        raise UnknownGoalError(
            f"no goal named `{name}`; available: {', '.join(sorted(_GOALS)) or 'none'}"
        ) from None
