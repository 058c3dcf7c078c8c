"""`@tool` schemas and options, and the goal catalog."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from onward import Goal, ToolContext, UserError, tool
from onward.agent.approvals import args_hash
from onward.exceptions import ToolArgumentsError, UnknownGoalError, UnknownToolError
from onward.goals.catalog import GoalCatalog


@tool(approval="confirm", timeout_s=5)
async def book(city: str, nights: int = 1, kind: Literal["hotel", "hostel"] = "hotel") -> str:
    """Book a room."""
    return f"{kind} in {city} for {nights}"


def test_schema_comes_from_the_signature() -> None:
    spec = book.spec()
    assert spec.name == "book" and spec.description == "Book a room."
    assert spec.approval == "confirm" and spec.timeout_s == 5
    props = spec.parameters["properties"]
    assert props["city"]["type"] == "string"
    assert props["nights"]["default"] == 1
    assert props["kind"]["enum"] == ["hotel", "hostel"]
    assert spec.parameters["required"] == ["city"]
    assert spec.parameters["additionalProperties"] is False


async def test_invoke_validates_and_runs_sync_and_async() -> None:
    assert await book.invoke({"city": "Oslo", "nights": "2"}) == "hotel in Oslo for 2"
    with pytest.raises(ToolArgumentsError, match="nights"):
        await book.invoke({"city": "Oslo", "nights": "many"})
    with pytest.raises(ToolArgumentsError, match="pets: Extra inputs"):
        await book.invoke({"city": "Oslo", "pets": 2})

    @tool
    def whoami(ctx: ToolContext) -> str:
        """Say the idempotency key."""
        return ctx.idempotency_key

    assert "ctx" not in whoami.spec().parameters.get("properties", {})
    ctx = ToolContext(conversation_id="c", call_id="k", attempt=1)
    assert await whoami.invoke({}, ctx) == "c:k"


def test_developer_mistakes_are_clear() -> None:
    with pytest.raises(UserError, match="docstring"):

        @tool
        def nodoc(x: int) -> int:
            return x

    with pytest.raises(UserError, match="type annotation"):

        @tool  # pyright: ignore[reportUnknownArgumentType]
        def untyped(x) -> int:  # type: ignore[no-untyped-def]  # pyright: ignore[reportMissingParameterType, reportUnknownParameterType]
            """Untyped."""
            return 1

    with pytest.raises(UserError, match="compensated by `undo`"):
        Goal(
            name="broken",
            description="d",
            instructions="i",
            tools=[dataclasses.replace(book, compensation="undo")],
        )


def test_a_catalog_finds_goals_and_their_tools_by_name() -> None:
    g = Goal(name="unit-goal", description="d", instructions="i", tools=[book])
    catalog = GoalCatalog([g])
    assert catalog.get("unit-goal") is g
    assert catalog.tool("book") is book
    assert [t.name for t in catalog.spec("unit-goal").tools] == ["book"]
    # Nothing registers itself: another catalog does not see this goal.
    with pytest.raises(UnknownGoalError, match="unit-goal"):
        GoalCatalog().get("unit-goal")
    with pytest.raises(UnknownToolError, match="book"):
        GoalCatalog().tool("book")


def test_a_catalog_refuses_two_goals_or_tools_with_one_name() -> None:
    @tool(name="book")
    def other_book(flight: str) -> str:
        """Another booking tool under the same name."""
        return flight

    g = Goal(name="unit-goal", description="d", instructions="i", tools=[book])
    with pytest.raises(UserError, match="two different goals"):
        GoalCatalog([g, Goal(name="unit-goal", description="other", instructions="i")])
    with pytest.raises(UserError, match="two tools are named `book`"):
        GoalCatalog([g, Goal(name="other", description="d", instructions="i", tools=[other_book])])


def test_a_goal_named_by_string_resolves_in_its_catalog() -> None:
    helper = Goal(name="unit-helper", description="h", instructions="i", listed=False)
    lead = Goal(name="unit-lead", description="l", instructions="i", agents=["unit-helper"])
    with pytest.raises(UserError, match="named by string"):
        lead.spec()
    catalog = GoalCatalog([lead, helper])
    assert [a.name for a in catalog.spec("unit-lead").agents] == ["unit-helper"]
    assert [g.name for g in catalog.listed()] == ["unit-lead"]
    with pytest.raises(UnknownGoalError, match="only used by other goals"):
        catalog.startable("unit-helper")


def test_args_hash_ignores_key_order() -> None:
    assert args_hash({"a": 1, "b": [1, 2]}) == args_hash({"b": [1, 2], "a": 1})
    assert args_hash({"a": 1}) != args_hash({"a": 2})
