"""The LangGraph graph behind `research-graph`, imported on its first turn.

LangGraph takes most of a second to import; loading it with the goal would add that
to every worker start (and so to recovery after a crash).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, Literal, TypedDict

from langgraph.graph import START, StateGraph  # pyright: ignore[reportMissingTypeStubs]
from langgraph.graph.state import CompiledStateGraph  # pyright: ignore[reportMissingTypeStubs]
from langgraph.runtime import Runtime
from langgraph.types import Command
from langsmith import run_helpers as langsmith_helpers

from onward.agent.decisions import CallTools, Decision, Finish, ToolCall
from onward.agent.graphs import TurnDriver
from onward.examples.research import search_documents
from onward.examples.research_graph import (
    GRAPH_NAME,
    LAZY_IMPORTS,
    MAX_RECHECKS,
    last_question,
    recheck_note,
    retrieved_sources,
    uncited,
)

END: Literal["__end__"] = "__end__"
"""LangGraph's `END`, typed as the literal its routes are checked against."""

for _module in LAZY_IMPORTS:
    import_module(_module)


class TurnState(TypedDict):
    question: str
    decision: Decision | None
    steps: int
    """Model decisions this turn (bounded by the conversation's max_steps_per_turn)."""
    rechecks: int


@dataclass(frozen=True)
class TurnContext:
    driver: TurnDriver


async def retrieve(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    driver = runtime.context.driver
    # Derived from the turn number, so a replay issues the same call id (idempotency key).
    call = ToolCall(
        call_id=f"retrieve-{driver.conversation.turns}",
        tool=search_documents.name,
        args={"query": state["question"]},
    )
    await driver.run_tools([call])
    return {}


async def agent(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    driver = runtime.context.driver
    s = driver.conversation
    if s.ended:
        return {"decision": None}
    if state["steps"] >= s.options.max_steps_per_turn:
        driver.reply(
            f"I stopped after {state['steps']} steps without an answer; send a message to continue."
        )
        return {"decision": None}
    return {"decision": await driver.next_decision(), "steps": state["steps"] + 1}


async def route(state: TurnState) -> Literal["tools", "check", "act", "__end__"]:
    # Async like every node: LangGraph runs sync callables in a thread pool, which a
    # workflow cannot use.
    decision = state["decision"]
    if decision is None:
        return END
    if isinstance(decision, CallTools):
        return "tools"
    if isinstance(decision, Finish):
        return "check"
    return "act"


async def tools(state: TurnState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    decision = state["decision"]
    assert isinstance(decision, CallTools)
    await runtime.context.driver.run_tools(decision.calls, decision.text)
    return {}


async def check(
    state: TurnState, runtime: Runtime[TurnContext]
) -> Command[Literal["act", "agent"]]:
    decision = state["decision"]
    assert isinstance(decision, Finish)
    driver = runtime.context.driver
    sources = retrieved_sources(driver.conversation.messages)
    if not uncited(decision.answer, sources) or state["rechecks"] >= MAX_RECHECKS:
        return Command(goto="act")
    # The model reads this notice in the transcript when it is asked again.
    driver.notice(recheck_note(sources))
    return Command(goto="agent", update={"rechecks": state["rechecks"] + 1})


async def act(
    state: TurnState, runtime: Runtime[TurnContext]
) -> Command[Literal["agent", "__end__"]]:
    decision = state["decision"]
    assert decision is not None
    again = await runtime.context.driver.act(decision)
    return Command(goto="agent" if again else END)


def build_graph() -> CompiledStateGraph[TurnState, TurnContext, TurnState, TurnState]:
    """The compiled graph (no checkpointer: Temporal history is the durable state)."""
    graph = StateGraph(TurnState, context_schema=TurnContext)
    graph.add_node("retrieve", retrieve)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_node("check", check)
    graph.add_node("act", act)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "agent")
    graph.add_conditional_edges("agent", route)
    graph.add_edge("tools", "agent")
    return graph.compile(name=GRAPH_NAME)


async def run(driver: TurnDriver) -> None:
    s = driver.conversation
    start: TurnState = {
        "question": last_question(s.messages),
        "decision": None,
        "steps": 0,
        "rechecks": 0,
    }
    # Each decision takes at most three supersteps (agent, check, act); LangGraph's
    # own limit must never be what stops a turn.
    limit = 3 * (s.options.max_steps_per_turn + MAX_RECHECKS) + 5
    # No LangSmith tracing even when its environment asks for it: that is network I/O
    # from workflow code, repeated on every replay. Temporal history is the trace.
    with langsmith_helpers.tracing_context(enabled=False):
        await COMPILED.ainvoke(
            start, {"recursion_limit": limit}, context=TurnContext(driver=driver)
        )


COMPILED = build_graph()
