"""`Goal`: instructions plus the tools the agent may use to reach them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from onward.agent.specs import ExampleTurn, GoalSpec
from onward.exceptions import UserError
from onward.tools.decorator import Tool


@dataclass
class Goal:
    """What an agent is for. Create one at module level; it registers itself.

    Args:
        name: Unique name used by the API, CLI and `ONWARD_*` settings.
        description: One line shown in the goal picker.
        instructions: The system prompt: what to do and how.
        tools: The only tools this goal's agent may call.
        starter_prompt: First message the agent shows.
        examples: Example turns, shown to the model as guidance.
        saga: When a tool call fails, undo the earlier calls that have a
            compensation, newest first, and tell the user what was undone.
    """

    name: str
    description: str
    instructions: str
    tools: Sequence[Tool] = ()
    starter_prompt: str = ""
    examples: Sequence[ExampleTurn] = ()
    saga: bool = False
    register: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise UserError(f"goal `{self.name}` lists a tool twice: {names}")
        known = set(names)
        for t in self.tools:
            if t.compensation and t.compensation not in known:
                raise UserError(
                    f"goal `{self.name}`: tool `{t.name}` is compensated by "
                    f"`{t.compensation}`, which the goal does not list"
                )
        if self.register:
            from onward.goals.registry import register_goal

            register_goal(self)

    def spec(self) -> GoalSpec:
        return GoalSpec(
            name=self.name,
            description=self.description,
            instructions=self.instructions,
            tools=[t.spec() for t in self.tools],
            starter_prompt=self.starter_prompt,
            examples=list(self.examples),
            saga=self.saga,
        )
