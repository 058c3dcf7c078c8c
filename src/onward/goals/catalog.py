"""`GoalCatalog`: the goals one deployment runs, and through them the tools, by name.

A catalog is a plain object built from the goals it is given: nothing registers itself
at import, so two catalogs in one process (two apps, two tests) never see each
other's goals. `GoalCatalog.discover` builds the catalog `onward up` runs: the goals
of every `onward.goals` entry point (the bundled examples' and any installed
package's) and of the modules named in `Settings.goal_modules`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from types import ModuleType
from typing import cast

from onward.agent.specs import GoalSpec
from onward.exceptions import UnknownGoalError, UnknownToolError, UserError
from onward.goals.base import Goal
from onward.tools.decorator import Tool

ENTRY_POINT_GROUP = "onward.goals"
"""An entry point in this group names a module (its module-level goals, or its
`GOALS` list) or a goal object. A module may also name API routes its goals need in
`API_ROUTERS` (`"package.module:router"` strings, imported by the API only) and
commands of the `onward` CLI in `CLI_COMMANDS` (`"package.module:attribute"` strings
naming a typer command function or a named `typer.Typer`, imported by the CLI only)."""


class GoalCatalog:
    """Goals by name, with every goal they delegate to and every tool they list.

    Args:
        goals: The goals to run. Goals they name as objects (`agents`, `reviewer`)
            join the catalog too; goals they name by string must be given as well.
        api_routers: FastAPI routers the goals need (a pay page), as
            `"package.module:attribute"`; the API includes them, workers never load them.
        cli_commands: `onward` commands the goals come with (their ledger), as
            `"package.module:attribute"`; only the CLI imports them.

    Raises:
        UserError: two different goals, or two different tools, share a name.
    """

    def __init__(
        self,
        goals: Iterable[Goal] = (),
        api_routers: Iterable[str] = (),
        cli_commands: Iterable[str] = (),
    ) -> None:
        self._goals: dict[str, Goal] = {}
        self._tools: dict[str, Tool] = {}
        self.api_routers: tuple[str, ...] = tuple(dict.fromkeys(api_routers))
        self.cli_commands: tuple[str, ...] = tuple(dict.fromkeys(cli_commands))
        for goal in goals:
            self._add(goal)

    @classmethod
    def discover(cls, modules: Sequence[str] = (), *, extra: Iterable[Goal] = ()) -> GoalCatalog:
        """The goals of the `onward.goals` entry points and of `modules`, plus `extra`.

        Raises:
            UserError: a module in `modules` does not exist, or names collide.
        """
        found: list[Goal] = []
        routers: list[str] = []
        commands: list[str] = []
        loaded = [ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)]
        for item in [*loaded, *(_import(name) for name in modules)]:
            found += _goals_of(item)
            if isinstance(item, ModuleType):
                routers += getattr(item, "API_ROUTERS", ())
                commands += getattr(item, "CLI_COMMANDS", ())
        return cls([*found, *extra], routers, commands)

    def _add(self, goal: Goal) -> None:
        existing = self._goals.get(goal.name)
        if existing is not None:
            if existing is not goal and existing.identity() != goal.identity():
                raise UserError(f"two different goals are named `{goal.name}`")
            return
        self._goals[goal.name] = goal
        for t in goal.tools:
            self._add_tool(t)
        for other in (*goal.agents, goal.reviewer):
            if isinstance(other, Goal):
                self._add(other)

    def _add_tool(self, t: Tool) -> None:
        existing = self._tools.get(t.name)
        if existing is not None and existing.function is not t.function:
            same_source = (
                existing.function.__module__ == t.function.__module__
                and existing.function.__qualname__ == t.function.__qualname__
            )
            if not same_source:
                raise UserError(
                    f"two tools are named `{t.name}` ({existing.function.__module__} and "
                    f"{t.function.__module__}); pass `name=` to one of them"
                )
        self._tools[t.name] = t

    def with_goals(self, goals: Iterable[Goal]) -> GoalCatalog:
        """A new catalog with this one's goals (routers, commands) and `goals`."""
        return GoalCatalog([*self._goals.values(), *goals], self.api_routers, self.cli_commands)

    @property
    def goals(self) -> dict[str, Goal]:
        return dict(self._goals)

    @property
    def tools(self) -> dict[str, Tool]:
        return dict(self._tools)

    def listed(self) -> list[Goal]:
        """The goals conversations may be started with, by name."""
        return [self._goals[n] for n in sorted(self._goals) if self._goals[n].listed]

    def get(self, name: str) -> Goal:
        """The goal named `name`.

        Raises:
            UnknownGoalError: no goal in this catalog has that name.
        """
        try:
            return self._goals[name]
        except KeyError:
            raise UnknownGoalError(
                f"no goal named `{name}`; available: {', '.join(sorted(self._goals)) or 'none'}"
            ) from None

    def startable(self, name: str) -> Goal:
        """The goal `name` if a conversation may be started with it.

        Raises:
            UnknownGoalError: no such goal, or one only other goals' agents use.
        """
        found = self.get(name)
        if not found.listed:
            raise UnknownGoalError(f"goal `{name}` is only used by other goals' agents")
        return found

    def spec(self, name: str) -> GoalSpec:
        """The serializable goal `name`, goals it names by string resolved here."""
        return self.get(name).spec(self.get)

    def tool(self, name: str) -> Tool:
        """The tool named `name`, listed by one of the catalog's goals.

        Raises:
            UnknownToolError: no goal in this catalog lists such a tool.
        """
        try:
            return self._tools[name]
        except KeyError:
            raise UnknownToolError(
                f"no tool named `{name}` is listed by a goal; known: {sorted(self._tools)}"
            ) from None


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise UserError(f"goal module `{module}` was not found ({exc})") from exc
        raise


def _goals_of(loaded: object) -> list[Goal]:
    """The goals an entry point or module offers: a goal, a list of goals, or a module's
    `GOALS` (when it has one) or else its module-level goals."""
    if isinstance(loaded, Goal):
        return [loaded]
    if isinstance(loaded, ModuleType):
        offered = getattr(loaded, "GOALS", None)
        if offered is None:
            return [v for v in vars(loaded).values() if isinstance(v, Goal)]
        loaded = offered
    if isinstance(loaded, list | tuple):
        items = cast(Sequence[object], loaded)
        goals = [g for g in items if isinstance(g, Goal)]
        if len(goals) == len(items):
            return goals
    raise UserError(f"an `{ENTRY_POINT_GROUP}` entry offers {loaded!r}, not goals")
