"""The benchmark goal: one short tool, and a model script that calls it N times.

Importable by a worker subprocess (`ONWARD_GOAL_MODULES=bench.goal`), so the same goal
drives in-process and out-of-process runs. Two goals differ only in how the tool runs:
`bench` as a normal activity (the default for tools), `bench-local` as a local one.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise

from onward.agent.decisions import CallTools, Finish, ToolCall
from onward.agent.messages import ToolResultMessage
from onward.goals.base import Goal
from onward.models.base import ModelRequest
from onward.testing.scripted import Step
from onward.tools import tool

GOAL = "bench"
GOAL_LOCAL = "bench-local"
TOOL = "bench_echo"
TOOL_LOCAL = "bench_echo_local"


async def _echo(n: int) -> int:
    """Return n + 1."""
    # Async on purpose: a sync tool runs in a thread, which would be measured too.
    return n + 1


bench_echo = tool(name=TOOL)(_echo)
bench_echo_local = tool(name=TOOL_LOCAL, local=True)(_echo)

BENCH = Goal(
    name=GOAL,
    description="Benchmark: call a short tool a fixed number of times.",
    instructions="Call the tool until you have enough results, then finish.",
    tools=[bench_echo],
    # A benchmark conversation is over once it finishes (the harness awaits its end).
    end_on_finish=True,
)
BENCH_LOCAL = Goal(
    name=GOAL_LOCAL,
    description="Benchmark with the tool as a local activity.",
    instructions="Call the tool until you have enough results, then finish.",
    tools=[bench_echo_local],
    end_on_finish=True,
)


def tool_results(request: ModelRequest) -> int:
    return sum(isinstance(m, ToolResultMessage) for m in request.messages)


@dataclass
class StepScript:
    """A `ScriptedModel` script: call the goal's tool until `steps` results exist, then
    finish. Every call is timestamped per conversation, so per-step times come from
    the gaps between consecutive decisions (each gap holds one decision + one tool)."""

    steps: int
    calls: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list[float]))
    finished: dict[str, float] = field(default_factory=dict[str, float])

    def __call__(self, request: ModelRequest) -> Step:
        now = time.perf_counter()
        cid = request.conversation_id
        self.calls[cid].append(now)
        done = tool_results(request)
        if done >= self.steps:
            self.finished[cid] = now
            return Finish(answer=f"{done} steps")
        name = request.goal.tools[0].name
        return CallTools(calls=[ToolCall(call_id=f"s{done}", tool=name, args={"n": done})])

    def step_seconds(self) -> list[float]:
        """Every gap between consecutive decisions of the same conversation."""
        return [b - a for times in self.calls.values() for a, b in pairwise(times)]

    def steps_done(self) -> int:
        return sum(max(0, len(times) - 1) for times in self.calls.values())
