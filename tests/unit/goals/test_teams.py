"""The bundled multi-agent goals: specs resolve by name, and the offline model drives
them (a planner over travel with a reviewer, a router over four agents)."""

from __future__ import annotations

import pytest

from onward.agent.decisions import Handoff, RunPlan
from onward.agent.messages import UserMessage
from onward.agent.plans import decision_problem
from onward.agent.specs import GoalSpec
from onward.goals.catalog import GoalCatalog
from onward.models.offline import check_topic, plan_next


def spec(name: str) -> GoalSpec:
    return GoalCatalog.discover().spec(name)


def test_trip_planner_delegates_to_travel_and_is_reviewed() -> None:
    planner = spec("trip-planner")
    assert [a.name for a in planner.agents] == ["travel"]
    assert not planner.handoff and not planner.tools
    # The travel agent comes with its tools, so a step can do real work.
    assert [t.name for t in planner.agents[0].tools] == [
        "find_events",
        "search_flights",
        "create_invoice",
    ]
    assert planner.reviewer is not None
    assert planner.reviewer.name == "trip-reviewer"
    assert planner.reviewer.tools == [] and not planner.reviewer.agents
    assert "flight" in planner.reviewer.instructions
    assert "different" in planner.reviewer.description
    assert planner.plan_deadline_s == 3600
    assert planner.max_plan_steps >= 3


def test_the_reviewer_is_registered_so_it_resolves_by_name() -> None:
    assert GoalCatalog.discover().spec("trip-reviewer").name == "trip-reviewer"


def test_concierge_routes_to_four_agents() -> None:
    concierge = spec("concierge")
    assert concierge.handoff and not concierge.tools
    assert [a.name for a in concierge.agents] == ["travel", "research", "support", "purchase"]
    assert all(a.tools for a in concierge.agents)


def test_offline_trip_planner_plans_three_travel_steps() -> None:
    planner = spec("trip-planner")
    text = "Plan me three vacations next year"
    assert check_topic(planner, [], text).allowed
    decision = plan_next(planner, [UserMessage(text=text)])
    assert isinstance(decision, RunPlan)
    assert [s.goal for s in decision.steps] == ["travel"] * 3
    assert decision_problem(planner, decision, review=False) is None


@pytest.mark.parametrize(
    ("text", "agent"),
    [
        ("Find me events in Chicago in May", "travel"),
        ("How do sagas keep transactions consistent?", "research"),
        ("I need to reset my password", "support"),
        ("I'd like to buy a brass desk lamp", "purchase"),
    ],
)
def test_offline_concierge_hands_off_to_the_matching_agent(text: str, agent: str) -> None:
    concierge = spec("concierge")
    assert check_topic(concierge, [], text).allowed
    decision = plan_next(concierge, [UserMessage(text=text)])
    assert isinstance(decision, Handoff) and decision.goal == agent
    assert decision_problem(concierge, decision, review=False) is None


def test_a_reviewer_is_not_offered_for_new_conversations() -> None:
    from onward.goals.catalog import GoalCatalog

    goals = GoalCatalog.discover().goals
    assert goals["trip-reviewer"].listed is False
    assert goals["trip-planner"].listed is True
