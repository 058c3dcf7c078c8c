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
from importlib.util import find_spec
from types import ModuleType
from typing import Any, cast

from temporalio import workflow

from onward.agent.graphs import TurnDriver, register_graph
from onward.agent.messages import Message, ToolResultMessage, UserMessage
from onward.examples.research import search_documents, store_report
from onward.goals.base import Goal

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
"""Modules LangChain imports inside functions when a graph runs: imported with the graph,
passed through the sandbox, so none is first imported inside a workflow."""

GRAPH_NAME = "research-graph"
MAX_RECHECKS = 1
"""How many times an answer without a citation is sent back before it is given as is."""
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


# ---------------------------------------------------------------- the turn


def load_flow() -> ModuleType:
    """The graph module, imported on first use and passed through the workflow sandbox
    (a synchronous import, so the sandbox's per-thread flag is not held across awaits)."""
    with workflow.unsafe.imports_passed_through():
        from onward.examples import _research_graph_flow

    return _research_graph_flow


async def run_turn(driver: TurnDriver) -> None:
    await load_flow().run(driver)


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
    register_graph(GRAPH_NAME, run_turn, packages=PACKAGES)
    RESEARCH_GRAPH = Goal(
        name=GRAPH_NAME,
        description="Answer a question from the document collection with checked citations.",
        instructions=INSTRUCTIONS,
        tools=[search_documents, store_report],
        starter_prompt="Ask me about the library; I search it first and cite what I find.",
        graph=GRAPH_NAME,
    )
