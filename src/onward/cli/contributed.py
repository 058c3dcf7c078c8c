"""Commands goal modules contribute to `onward` (`CLI_COMMANDS`), as they do routes.

A goal package may come with commands of its own (the bundled examples' `onward
ledger` and `onward chaos`): its goal module names them in `CLI_COMMANDS`, and only the
CLI imports them, so workers and the API never load a command's dependencies.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

import typer
from pydantic import ValidationError

from onward.config import get_settings
from onward.exceptions import UserError
from onward.goals.catalog import GoalCatalog


def discovered_commands() -> tuple[str, ...]:
    """The `CLI_COMMANDS` of every goal module `onward up` would run.

    Raises:
        UserError: a configured goal module does not exist, or goals collide.
    """
    try:
        modules = get_settings().goal_modules
    except ValidationError:
        # `onward`'s callback reports the configuration error, in one clear line.
        return ()
    return GoalCatalog.discover(modules).cli_commands


def register_contributed(app: typer.Typer, refs: Iterable[str]) -> None:
    """Add each `"package.module:attribute"` of `refs` to `app`: a named `typer.Typer`
    as a command group, a function as a command (named as typer names it).

    Raises:
        UserError: a reference names nothing, or something that is not a command.
    """
    for ref in refs:
        found = _resolve(ref)
        if isinstance(found, typer.Typer):
            if not isinstance(found.info.name, str):
                raise UserError(f"`{ref}` (a goal module's CLI_COMMANDS) is a Typer without a name")
            app.add_typer(found)
        else:
            app.command()(found)


def _resolve(ref: str) -> typer.Typer | Callable[..., object]:
    module, _, attribute = ref.partition(":")
    try:
        found: object = getattr(importlib.import_module(module), attribute)
    except (ModuleNotFoundError, AttributeError) as exc:
        raise UserError(f"`{ref}` (a goal module's CLI_COMMANDS) was not found ({exc})") from exc
    if isinstance(found, typer.Typer) or (callable(found) and not isinstance(found, type)):
        return found
    raise UserError(
        f"`{ref}` (a goal module's CLI_COMMANDS) is {found!r}, not a command or a typer.Typer"
    )
