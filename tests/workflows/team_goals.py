"""Small multi-agent goals for the workflow tests (registered once, on import)."""

from __future__ import annotations

from onward.goals.base import Goal
from onward.tools import ToolContext, tool
from tests.workflows import toolbox


@tool
def find_trip(city: str, ctx: ToolContext) -> dict[str, str]:
    """Find a trip to a city."""
    toolbox.CALLS.append(("find_trip", ctx.idempotency_key))
    return {"city": city, "flight": f"FL-{city[:3].upper()}"}


VACATION = Goal(
    name="test-vacation",
    description="Plans one vacation.",
    instructions="Find a trip and describe it.",
    tools=[find_trip],
    end_on_finish=True,
)
REVIEWER = Goal(
    name="test-reviewer",
    description="Reviews trip plans.",
    instructions="Approve complete plans.",
    end_on_finish=True,
)
PLANNER = Goal(
    name="test-planner",
    description="Plans several vacations at once.",
    instructions="Split the request into one step per vacation.",
    agents=["test-vacation", "test-math"],
    reviewer="test-reviewer",
    max_review_rounds=2,
    end_on_finish=True,
)
HASTY = Goal(
    name="test-hasty-planner",
    description="Plans with a deadline.",
    instructions="Delegate.",
    agents=["test-vacation"],
    plan_deadline_s=2,
    end_on_finish=True,
)
ROUTER = Goal(
    name="test-router",
    description="Routes to the right agent.",
    instructions="Hand off.",
    agents=["test-math", "test-vacation"],
    handoff=True,
    end_on_finish=True,
)
DIRECTOR = Goal(
    name="test-director",
    description="Delegates to a planner (agents two levels deep).",
    instructions="Delegate.",
    agents=["test-planner"],
    end_on_finish=True,
)
