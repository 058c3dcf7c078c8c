"""The same decide -> tool steps without onward, for scale.

- `asyncio`: a plain in-process loop, no durability at all: the floor any agent
  framework pays in Python.
- `langgraph`: a LangGraph `StateGraph` (decide node -> tool node -> decide …) with its
  SQLite checkpointer on a real file: durable per step, in one process, no server.

Both take the same decisions (`next_call`) and run the same tool function as the
benchmark goal; per-step time is the gap between consecutive decisions, as for onward.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from itertools import pairwise
from pathlib import Path
from typing import Any, TypedDict

from bench.goal import bench_echo
from bench.stats import summary_ms

Msg = dict[str, Any]


def next_call(results: int, steps: int) -> Msg:
    """The scripted decision: call the tool until `steps` results exist, then finish."""
    if results >= steps:
        return {"role": "assistant", "finish": f"{results} steps"}
    return {"role": "assistant", "tool": bench_echo.name, "call_id": f"s{results}", "n": results}


async def run_tool(call: Msg) -> Msg:
    value = await bench_echo.invoke({"n": call["n"]})
    return {"role": "tool", "call_id": call["call_id"], "content": value}


async def asyncio_conversation(steps: int, stamps: list[float]) -> list[Msg]:
    """One conversation as a plain loop; appends a timestamp per decision."""
    messages: list[Msg] = [{"role": "user", "content": "go"}]
    results = 0
    while True:
        stamps.append(time.perf_counter())
        decision = next_call(results, steps)
        messages.append(decision)
        if "finish" in decision:
            return messages
        messages.append(await run_tool(decision))
        results += 1


def _gaps(per_conversation: list[list[float]]) -> list[float]:
    return [b - a for times in per_conversation for a, b in pairwise(times)]


async def _timed(
    conversations: int, steps: int, one: Callable[[int, list[float]], Awaitable[None]]
) -> dict[str, Any]:
    stamps: list[list[float]] = []
    began = time.perf_counter()
    for i in range(conversations):
        stamps.append([])
        await one(i, stamps[-1])
    wall = time.perf_counter() - began
    out: dict[str, Any] = summary_ms(_gaps(stamps))
    out["conversations"] = conversations
    out["steps_per_conversation"] = steps
    out["steps_per_s"] = round(conversations * steps / wall, 1)
    return out


async def bench_asyncio(conversations: int, steps: int) -> dict[str, Any]:
    async def one(_: int, stamps: list[float]) -> None:
        await asyncio_conversation(steps, stamps)

    out = await _timed(conversations, steps, one)
    out["durable"] = False
    return out


class _GraphState(TypedDict):
    thread: str
    messages: list[Msg]
    results: int


async def bench_langgraph(conversations: int, steps: int, db: Path) -> dict[str, Any]:
    """decide <-> tool graph, checkpointed to the SQLite file `db` after every node."""
    # Imported here: the `bench` extra is only needed for this peer.
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    from langgraph.graph import (  # pyright: ignore[reportMissingTypeStubs]
        END,
        START,
        StateGraph,
    )

    stamps_by_thread: dict[str, list[float]] = {}

    async def decide(state: _GraphState) -> dict[str, Any]:
        stamps_by_thread[state["thread"]].append(time.perf_counter())
        return {"messages": [*state["messages"], next_call(state["results"], steps)]}

    async def tool(state: _GraphState) -> dict[str, Any]:
        result = await run_tool(state["messages"][-1])
        return {"messages": [*state["messages"], result], "results": state["results"] + 1}

    def route(state: _GraphState) -> str:
        return END if "finish" in state["messages"][-1] else "tool"

    builder = StateGraph(_GraphState)
    builder.add_node("decide", decide)
    builder.add_node("tool", tool)
    builder.add_edge(START, "decide")
    builder.add_conditional_edges("decide", route, ["tool", END])
    builder.add_edge("tool", "decide")

    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        graph = builder.compile(checkpointer=saver)

        async def one(i: int, stamps: list[float]) -> None:
            thread = f"lg-{i}"
            stamps_by_thread[thread] = stamps
            config: Any = {"configurable": {"thread_id": thread}, "recursion_limit": 2 * steps + 5}
            start: _GraphState = {
                "thread": thread,
                "messages": [{"role": "user", "content": "go"}],
                "results": 0,
            }
            await graph.ainvoke(start, config)

        out = await _timed(conversations, steps, one)
    out["durable"] = True
    out["checkpointer"] = "AsyncSqliteSaver (langgraph-checkpoint-sqlite), file on disk"
    return out
