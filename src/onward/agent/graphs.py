"""Reasoning graphs: a goal's decision logic written as a LangGraph graph.

The graph runs inside the conversation workflow (deterministic code); its nodes act
through a `TurnDriver`, so every model call and tool call is still an onward activity
with its policy, approvals, budgets and history.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from onward.agent.contracts import ConversationState
from onward.agent.decisions import Decision, ToolCall


class TurnDriver(Protocol):
    """What a reasoning graph may do during one user turn."""

    @property
    def conversation(self) -> ConversationState:
        """The transcript and state so far (read it; do not mutate it)."""
        ...

    async def next_decision(self) -> Decision | None:
        """One validated model decision (an `onward.decide` activity). None when the
        budget stopped the turn or the model failed for good (the user was told)."""
        ...

    async def act(self, decision: Decision) -> bool:
        """Carry a decision out as the default loop would; True to decide again."""
        ...

    async def run_tools(self, calls: list[ToolCall], text: str | None = None) -> None:
        """Run tool calls (policy, approvals, `onward.tool` activities); results are
        appended to the transcript."""
        ...

    def reply(self, text: str) -> None:
        """Show the user a message; the turn then waits for their reply."""
        ...

    def finish(self, answer: str) -> None:
        """Give the final answer and end the conversation."""
        ...


GraphTurn = Callable[[TurnDriver], Awaitable[None]]
"""Runs one turn of a conversation through a graph."""

_GRAPHS: dict[str, GraphTurn] = {}


def register_graph(name: str, turn: GraphTurn) -> None:
    """Make a reasoning graph available to goals that name it in `graph=`."""
    _GRAPHS[name] = turn


async def run_graph_turn(name: str, driver: TurnDriver) -> None:
    turn = _GRAPHS.get(name)
    if turn is None:
        driver.reply(
            f"This goal's reasoning graph `{name}` is not available on this worker "
            "(is `onward[langgraph]` installed and the goal module loaded?)."
        )
        return
    await turn(driver)
