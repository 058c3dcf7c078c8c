"""Research goal whose reasoning is a LangGraph graph (extra `onward[langgraph]`).

Each user turn runs this graph inside the conversation workflow:

    retrieve -> agent -(tool calls)-> tools -> agent
                      -(finish)----> check -(cites a retrieved doc)-> act -> end
                                           -(cites none, once)-----> agent
                      -(ask, ...)--> act -> end

Unlike the default loop, it searches the collection with the user's message before
the model is first asked, and it sends back (once) an answer that cites none of the
documents the conversation's searches returned. Nodes do no I/O: model calls, tool
calls and messages all go through the `TurnDriver`, so each is an onward activity or
a transcript event in Temporal history. The graph is compiled without a checkpointer:
that history is already its durable state, and a replay re-runs the graph against it.

Without LangGraph installed the module imports cleanly and registers nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast

from onward.agent.decisions import CallTools, Decision, Finish, ToolCall
from onward.agent.graphs import TurnDriver, register_graph
from onward.agent.messages import Message, ToolResultMessage, UserMessage
from onward.goals.base import Goal
from onward.goals.research import search_documents, store_report

HAVE_LANGGRAPH = find_spec("langgraph") is not None
PACKAGES = ("langgraph", "langchain_core", "langsmith")
"""What LangGraph runs on; passed through the workflow sandbox (see `register_graph`)."""
LAZY_IMPORTS = (
    "langchain_core.tracers.context",
    "langchain_core.tracers.langchain",
    "langchain_core.tracers.stdout",
    "langsmith._internal._context",
    "langsmith.run_helpers",
)
"""Modules LangChain imports inside functions when a graph runs: imported with the goal,
outside any workflow, so that each turn can pass them through the sandbox."""

if TYPE_CHECKING or HAVE_LANGGRAPH:
    from langgraph.graph import START, StateGraph  # pyright: ignore[reportMissingTypeStubs]
    from langgraph.graph.state import (  # pyright: ignore[reportMissingTypeStubs]
        CompiledStateGraph,
    )
    from langgraph.runtime import Runtime
    from langgraph.types import Command
    from langsmith import run_helpers as langsmith_helpers

GRAPH_NAME = "research-graph"
MAX_RECHECKS = 1
"""How many times an answer without a citation is sent back before it is given as is."""
END: Literal["__end__"] = "__end__"
"""LangGraph's `END`, typed as the literal its routes are checked against."""
_CITATION = re.compile(r"\[(doc-\d+)\]")


# ------------------------------------------------------------- pure logic


def last_question(messages: Sequence[Message]) -> str:
    """The newest user message: the question this turn answers."""
    return next((m.text for m in reversed(messages) if isinstance(m, UserMessage)), "")


def retrieved_sources(messages: Sequence[Message]) -> list[str]:
    """Document ids that successful `search_documents` results returned, in order."""
    found: list[str] = []
    for m in messages:
        if isinstance(m, ToolResultMessage) and m.tool == search_documents.name and m.ok:
            content: object = m.content
            ids = (
                cast(dict[str, object], content).get("sources")
                if isinstance(content, dict)
                else None
            )
            if isinstance(ids, list):
                found += [i for i in cast(list[Any], ids) if isinstance(i, str)]
    return list(dict.fromkeys(found))


def cited_sources(answer: str, sources: Sequence[str]) -> list[str]:
    """The retrieved documents that `answer` cites as [doc-id]."""
    return [i for i in dict.fromkeys(_CITATION.findall(answer)) if i in sources]


def uncited(answer: str, sources: Sequence[str]) -> bool:
    """Whether the answer ignores every retrieved document (none retrieved: never)."""
    return bool(sources) and not cited_sources(answer, sources)


def recheck_note(sources: Sequence[str]) -> str:
    return (
        "Checking my draft before I send it: it cites none of the documents I found "
        f"({', '.join(sources[:5])}). I'll revise it to cite them as [doc-id]."
    )


# ------------------------------------------------------------------ graph


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


async def run_turn(driver: TurnDriver) -> None:
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
        await _COMPILED.ainvoke(
            start, {"recursion_limit": limit}, context=TurnContext(driver=driver)
        )


INSTRUCTIONS = (
    "You answer questions from a fixed document collection.\n"
    "The user's question has already been searched for you: read the `search_documents` "
    "results in the conversation. Search again with other keywords only if they do not "
    "cover the question.\n"
    "Answer in a few sentences using only facts from the hits, citing each one inline "
    "as [doc-id], e.g. [doc-004]. Say plainly when the collection does not cover "
    "something. If the user asks for a stored report, call `store_report` with the "
    "answer and the ids you cited, then finish."
)

if HAVE_LANGGRAPH:
    for _module in LAZY_IMPORTS:
        import_module(_module)
    _COMPILED = build_graph()
    register_graph(GRAPH_NAME, run_turn, packages=PACKAGES)
    RESEARCH_GRAPH = Goal(
        name=GRAPH_NAME,
        description="Answer a question from the document collection with checked citations.",
        instructions=INSTRUCTIONS,
        tools=[search_documents, store_report],
        starter_prompt="Ask me about the library; I search it first and cite what I find.",
        graph=GRAPH_NAME,
    )
