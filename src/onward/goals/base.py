"""`Goal`: instructions plus the tools the agent may use to reach them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from onward.agent.specs import ExampleTurn, GoalSpec
from onward.exceptions import UserError
from onward.tools.decorator import Tool
from onward.tools.mcp import McpServer


@dataclass
class Goal:
    """What an agent is for. Give it to `Onward(goals=[...])`, or create it at module level
    in a module an `onward.goals` entry point (or `Settings.goal_modules`) names.

    Args:
        name: Unique name used by the API, CLI and `ONWARD_*` settings.
        description: One line shown in the goal picker.
        instructions: The system prompt: what to do and how.
        tools: The only tools this goal's agent may call.
        starter_prompt: First message the agent shows.
        examples: Example turns, shown to the model as guidance.
        saga: When a tool call fails, undo the earlier calls that have a
            compensation, newest first, and tell the user what was undone.
        agents: Goals (or names of goals in the same catalog) this agent may delegate
            plan steps to; each step runs as a child conversation.
        handoff: Make this a router: it hands the conversation to one of `agents`.
        reviewer: A goal whose agent reviews the answer after a plan ran.
        max_review_rounds: Reviews before the last answer is given as it is.
        plan_deadline_s: Cancel plan steps still running after this many seconds.
        max_plan_steps: The most steps one plan may have.
        graph: Name of a LangGraph reasoning graph (`onward[langgraph]`) that
            replaces the default decide-and-act loop.
        end_on_finish: End the conversation once the goal is finished (the tutorial's
            style). By default a finished goal answers and the conversation stays
            open for follow-ups until the user ends it or it idles out.
        guardrail: Let the model refuse messages outside the goal, judged within
            the decision itself (no extra model call). False turns it off.
        listed: False for a goal only other goals use (a reviewer, a sub-agent): it
            resolves by name but is not offered for new conversations.
        mcp: MCP servers whose tools this goal's agent may also use
            (`onward.tools.mcp.McpServer`); listed once per conversation run.
    """

    name: str
    description: str
    instructions: str
    tools: Sequence[Tool] = ()
    starter_prompt: str = ""
    examples: Sequence[ExampleTurn] = ()
    saga: bool = False
    agents: Sequence[str | Goal] = ()
    handoff: bool = False
    reviewer: str | Goal | None = None
    max_review_rounds: int = 3
    plan_deadline_s: float | None = None
    max_plan_steps: int = 8
    graph: str | None = None
    end_on_finish: bool = False
    guardrail: bool = True
    listed: bool = True
    mcp: Sequence[McpServer] = ()

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
        servers = [m.name for m in self.mcp]
        if len(set(servers)) != len(servers):
            raise UserError(f"goal `{self.name}` lists an MCP server name twice: {servers}")
        if self.handoff and not self.agents:
            raise UserError(f"goal `{self.name}` hands off but lists no agents")

    def identity(self) -> tuple[object, ...]:
        """What makes two goal definitions the same, without resolving other goals."""
        names = tuple(a if isinstance(a, str) else a.name for a in self.agents)
        reviewer = self.reviewer if isinstance(self.reviewer, str | None) else self.reviewer.name
        return (
            self.name,
            self.description,
            self.instructions,
            tuple(t.spec() for t in self.tools),
            names,
            reviewer,
            self.graph,
            self.end_on_finish,
            self.guardrail,
            tuple(m.spec().model_dump_json() for m in self.mcp),
        )

    def spec(
        self, resolve: Callable[[str], Goal] | None = None, _path: tuple[str, ...] = ()
    ) -> GoalSpec:
        """The serializable goal, with the goals it delegates to resolved.

        Args:
            resolve: Finds a goal named by string in `agents` or `reviewer`
                (`GoalCatalog.get`); needed only when there are such names.

        A goal already on the delegation path is left out of its descendants' agents,
        so routers that can reach each other never nest without end.
        """
        path = (*_path, self.name)
        agents = [_resolve(a, resolve) for a in self.agents]
        reviewer = _resolve(self.reviewer, resolve) if self.reviewer is not None else None
        return GoalSpec(
            name=self.name,
            description=self.description,
            instructions=self.instructions,
            tools=[t.spec() for t in self.tools],
            starter_prompt=self.starter_prompt,
            examples=list(self.examples),
            saga=self.saga,
            agents=[a.spec(resolve, path) for a in agents if a.name not in path],
            handoff=self.handoff,
            reviewer=reviewer.spec(resolve, path) if reviewer is not None else None,
            max_review_rounds=self.max_review_rounds,
            plan_deadline_s=self.plan_deadline_s,
            max_plan_steps=self.max_plan_steps,
            graph=self.graph,
            end_on_finish=self.end_on_finish,
            guardrail=self.guardrail,
            mcp_servers=[m.spec() for m in self.mcp],
        )


def _resolve(goal: str | Goal, resolve: Callable[[str], Goal] | None) -> Goal:
    if isinstance(goal, Goal):
        return goal
    if resolve is None:
        raise UserError(
            f"goal `{goal}` is named by string: resolve it through the goal catalog "
            "(`GoalCatalog.spec`), or pass the `Goal` object itself"
        )
    return resolve(goal)
