"""`@tool` schemas and options, and the goal registry."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from onward import Goal, ToolContext, UserError, tool
from onward.agent.approvals import args_hash
from onward.exceptions import ToolArgumentsError
from onward.goals.registry import get_goal


@tool(register=False, approval="confirm", timeout_s=5)
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

    @tool(register=False)
    def whoami(ctx: ToolContext) -> str:
        """Say the idempotency key."""
        return ctx.idempotency_key

    assert "ctx" not in whoami.spec().parameters.get("properties", {})
    ctx = ToolContext(conversation_id="c", call_id="k", attempt=1)
    assert await whoami.invoke({}, ctx) == "c:k"


def test_developer_mistakes_are_clear() -> None:
    with pytest.raises(UserError, match="docstring"):

        @tool(register=False)
        def nodoc(x: int) -> int:
            return x

    with pytest.raises(UserError, match="type annotation"):

        @tool(register=False)
        def untyped(x) -> int:  # type: ignore[no-untyped-def]  # pyright: ignore[reportMissingParameterType, reportUnknownParameterType]
            """Untyped."""
            return 1

    with pytest.raises(UserError, match="compensated by `undo`"):
        Goal(
            name="broken",
            description="d",
            instructions="i",
            tools=[dataclasses.replace(book, compensation="undo")],
            register=False,
        )


def test_goal_registers_by_name() -> None:
    g = Goal(name="unit-goal", description="d", instructions="i", tools=[book])
    assert get_goal("unit-goal") is g
    assert [t.name for t in g.spec().tools] == ["book"]


def test_args_hash_ignores_key_order() -> None:
    assert args_hash({"a": 1, "b": [1, 2]}) == args_hash({"b": [1, 2], "a": 1})
    assert args_hash({"a": 1}) != args_hash({"a": 2})
