"""The research graph's logic, driven by a fake `TurnDriver` (no Temporal)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from onward.agent.contracts import ConversationOptions, ConversationState
from onward.agent.decisions import AskUser, CallTools, Decision, Finish, ToolCall
from onward.agent.messages import (
    AssistantMessage,
    NoticeLevel,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.examples.research_graph import (
    GRAPH_NAME,
    cited_sources,
    last_question,
    recheck_note,
    retrieved_sources,
    run_turn,
    uncited,
)
from onward.goals.catalog import GoalCatalog

# LangGraph is in the dev extra: without it these tests fail (at import), never skip.
import_module("langgraph")

SOURCES = ["doc-002", "doc-001"]


def result(tool: str, content: object, ok: bool = True) -> ToolResultMessage:
    return ToolResultMessage(call_id="x", tool=tool, ok=ok, content=content)


def test_retrieved_sources_come_from_successful_searches_only() -> None:
    messages = [
        UserMessage(text="q"),
        result("search_documents", {"sources": ["doc-002", "doc-001"]}),
        result("search_documents", {"sources": ["doc-009"]}, ok=False),
        result("store_report", {"sources": ["doc-007"]}),
        result("search_documents", "not a dict"),
        result("search_documents", {"sources": ["doc-001", "doc-004", 5]}),
    ]
    assert retrieved_sources(messages) == ["doc-002", "doc-001", "doc-004"]


def test_an_answer_must_cite_a_retrieved_document() -> None:
    assert cited_sources("A [doc-001], B [doc-099], again [doc-001].", SOURCES) == ["doc-001"]
    assert not uncited("Sagas [doc-002].", SOURCES)
    assert uncited("Sagas, made up [doc-099].", SOURCES)
    assert uncited("No citation at all.", SOURCES)
    assert not uncited("Nothing matched, so nothing to cite.", [])


def test_the_question_is_the_newest_user_message() -> None:
    messages = [UserMessage(text="first"), AssistantMessage(text="?"), UserMessage(text="then")]
    assert last_question(messages) == "then"
    assert last_question([]) == ""


@dataclass
class FakeDriver:
    """Plays back `decisions` and logs what the graph asked for."""

    decisions: list[Decision | None]
    max_steps: int = 12
    log: list[str] = field(default_factory=list[str])
    conversation: ConversationState = field(init=False)

    def __post_init__(self) -> None:
        self.conversation = ConversationState(
            conversation_id="conv-unit",
            owner="local",
            goal=GoalCatalog.discover().spec(GRAPH_NAME),
            options=ConversationOptions(max_steps_per_turn=self.max_steps),
            messages=[UserMessage(text="How do sagas work?")],
            turns=1,
        )

    async def next_decision(self) -> Decision | None:
        self.log.append("decide")
        return self.decisions.pop(0) if self.decisions else None

    async def act(self, decision: Decision) -> bool:
        self.log.append(f"act:{decision.kind}")
        return False

    async def run_tools(self, calls: list[ToolCall], text: str | None = None) -> None:
        for c in calls:
            self.log.append(f"tool:{c.call_id}:{c.tool}")
            self.conversation.messages.append(
                ToolCallMessage(call_id=c.call_id, tool=c.tool, args=c.args)
            )
            content = {"sources": SOURCES} if c.tool == "search_documents" else {}
            self.conversation.messages.append(
                ToolResultMessage(call_id=c.call_id, tool=c.tool, ok=True, content=content)
            )

    def reply(self, text: str) -> None:
        self.log.append(f"reply:{text}")

    def notice(self, text: str, level: NoticeLevel = "info") -> None:
        self.log.append(f"notice:{text}")
        self.conversation.messages.append(AssistantMessage(text=text))

    def finish(self, answer: str) -> None:
        raise AssertionError("the graph finishes through act()")


def search(cid: str) -> CallTools:
    return CallTools(
        calls=[ToolCall(call_id=cid, tool="search_documents", args={"query": "sagas"})]
    )


async def turn(decisions: Sequence[Decision | None], max_steps: int = 12) -> list[str]:
    driver = FakeDriver(list(decisions), max_steps=max_steps)
    await run_turn(driver)
    return driver.log


async def test_retrieval_runs_before_the_model_and_tool_calls_loop_back() -> None:
    log = await turn([search("m1"), Finish(answer="Compensations [doc-002].")])
    assert log == [
        "tool:retrieve-1:search_documents",
        "decide",
        "tool:m1:search_documents",
        "decide",
        "act:finish",
    ]


async def test_an_uncited_answer_is_sent_back_once() -> None:
    log = await turn([Finish(answer="uncited"), Finish(answer="still uncited")])
    assert log[1:] == ["decide", f"notice:{recheck_note(SOURCES)}", "decide", "act:finish"]


async def test_a_question_to_the_user_ends_the_turn_unchecked() -> None:
    log = await turn([AskUser(text="Which saga?")])
    assert log[1:] == ["decide", "act:ask"]


async def test_no_decision_ends_the_turn() -> None:
    assert (await turn([None]))[1:] == ["decide"]


async def test_steps_are_bounded_by_the_conversation_options() -> None:
    log = await turn([search("a"), search("b"), search("c")], max_steps=2)
    assert log[1:] == [
        "decide",
        "tool:a:search_documents",
        "decide",
        "tool:b:search_documents",
        "reply:I stopped after 2 steps without an answer; send a message to continue.",
    ]


def _python(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parents[3],  # the repository, for `tests.` imports
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert not done.stderr, done.stderr
    return done.stdout.strip()


def test_without_langgraph_the_module_imports_and_registers_nothing() -> None:
    out = _python(
        "import sys; sys.modules['langgraph'] = None\n"
        "from onward.examples import research_graph\n"
        "from onward.goals.catalog import GoalCatalog\n"
        "print(research_graph.HAVE_LANGGRAPH, 'research-graph' in GoalCatalog.discover().goals)"
    )
    assert out == "False False"


def test_the_goal_module_does_not_import_langgraph() -> None:
    # LangGraph takes most of a second to import: at worker start that would delay
    # recovery after a crash, so it is imported with the first graph turn.
    out = _python(
        "import sys\n"
        "from onward.examples import research_graph as g\n"
        "print(g.HAVE_LANGGRAPH, sorted({m.split('.')[0] for m in sys.modules} & set(g.PACKAGES)))"
    )
    assert out == "True []"


def test_a_turn_loads_no_module_the_sandbox_could_not_pass_through() -> None:
    # The graph module (with the modules LangChain imports lazily) is loaded passed
    # through the sandbox before the graph runs; one first imported during the run
    # would be loaded inside the sandbox and fail.
    # Tracing asked for by the environment must not make the turn call LangSmith
    # (it would print its connection errors).
    out = _python(
        "import asyncio, sys\n"
        "from onward.examples import research_graph as g\n"
        "from onward.agent.decisions import Finish\n"
        "from tests.unit.goals.test_research_graph import FakeDriver\n"
        "def ours(): return {m for m in sys.modules if m.split('.')[0] in g.PACKAGES}\n"
        "g.load_flow()\n"
        "before = ours()\n"
        "asyncio.run(g.run_turn(FakeDriver([Finish(answer='x'), Finish(answer='y')])))\n"
        "print(sorted(ours() - before))",
        LANGSMITH_TRACING="true",
        LANGSMITH_API_KEY="unused",
        LANGSMITH_ENDPOINT="http://127.0.0.1:9",
    )
    assert out == "[]"
