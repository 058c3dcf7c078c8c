"""Reasoning graphs: a goal's decision logic written as a LangGraph graph.

The graph runs inside the conversation workflow (deterministic code); its nodes act
through a `TurnDriver`, so every model call and tool call is still an onward activity
with its policy, approvals, budgets and history.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from temporalio import workflow

from onward.agent.contracts import ConversationState
from onward.agent.decisions import Decision, ToolCall
from onward.agent.messages import NoticeLevel


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

    def notice(self, text: str, level: NoticeLevel = "info") -> None:
        """Add a system notice to the transcript (the model reads it next call)."""
        ...

    def finish(self, answer: str) -> None:
        """Give the final answer and end the conversation."""
        ...


GraphTurn = Callable[[TurnDriver], Awaitable[None]]
"""Runs one turn of a conversation through a graph."""

_GRAPHS: dict[str, tuple[GraphTurn, tuple[str, ...]]] = {}
_HOST_MODULES = sys.modules
"""The worker's modules: this module is imported outside any workflow sandbox."""


def register_graph(name: str, turn: GraphTurn, *, packages: Sequence[str] = ()) -> None:
    """Make a reasoning graph available to goals that name it in `graph=`.

    A graph's turn runs inside the workflow, so it must be deterministic; a graph
    defined outside onward turns on Temporal's workflow sandbox for the worker
    (`ONWARD_WORKFLOW_SANDBOX=auto`), which flags many mistakes (file access, ...).

    Args:
        packages: Top-level packages the graph's library runs on (`langgraph`, ...).
            At each turn, their modules the worker has imported are passed through
            the workflow sandbox: the library imports some of them inside functions,
            and the sandbox would load those afresh in the workflow and refuse their
            file access. Import such modules when the graph is defined.
    """
    _GRAPHS[name] = (turn, tuple(packages))


def foreign_graphs() -> list[str]:
    """Registered graphs whose turn function comes from outside onward: user code that
    runs inside the workflow, which onward's replay tests do not cover."""
    return sorted(
        name for name, (turn, _) in _GRAPHS.items() if not turn.__module__.startswith("onward.")
    )


def _pass_through(packages: tuple[str, ...]) -> None:
    prefixes = tuple(f"{p}." for p in packages)
    names = [n for n in list(_HOST_MODULES) if n in packages or n.startswith(prefixes)]
    # Synchronous on purpose: the pass-through flag is per thread, and a workflow may
    # resume on another thread after an await.
    with workflow.unsafe.imports_passed_through():
        for n in names:
            if n not in sys.modules:  # the sandbox's modules, here
                __import__(n)


async def run_graph_turn(name: str, driver: TurnDriver) -> None:
    entry = _GRAPHS.get(name)
    if entry is None:
        driver.reply(
            f"This goal's reasoning graph `{name}` is not available on this worker "
            "(is `onward[langgraph]` installed and the goal module loaded?)."
        )
        return
    turn, packages = entry
    if packages and workflow.in_workflow():
        _pass_through(packages)
    await turn(driver)
