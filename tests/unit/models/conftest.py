"""Fixtures for the model-layer tests: a fake OpenAI-compatible server and small goals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from onward.agent.specs import GoalSpec, ToolSpec
from onward.models._quirks import forget_all
from onward.testing import FakeOpenAIServer


@pytest.fixture(autouse=True)
def _fresh_server_lessons() -> Iterator[None]:
    """Each test meets its servers for the first time (lessons are per process)."""
    forget_all()
    yield
    forget_all()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def adder_goal() -> GoalSpec:
    """A one-tool goal for provider tests."""
    return GoalSpec(
        name="calculator",
        description="Adds numbers.",
        instructions="Add the numbers the user gives you.",
        tools=[
            ToolSpec(
                name="add",
                description="Add two integers.",
                parameters={
                    "type": "object",
                    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                    "required": ["a", "b"],
                },
            )
        ],
    )


@pytest.fixture
def concert_goal() -> GoalSpec:
    """Three planned tools (the last needs approval) plus a compensation."""
    return GoalSpec(
        name="concerts",
        description="Find concerts, reserve seats and invoice the tickets.",
        instructions="Find a concert the user likes, reserve seats, then invoice them.",
        starter_prompt="Which city and month are you interested in?",
        tools=[
            ToolSpec(
                name="find_concerts",
                description="Find concerts in a city during a month.",
                parameters={
                    "type": "object",
                    "properties": {
                        "city": {
                            "type": "string",
                            "title": "City",
                            "description": "City to look in",
                            "examples": ["Lisbon", "Paris", "York", "New York"],
                        },
                        "month": {"$ref": "#/$defs/Month"},
                        "genre": {"type": "string", "default": "any"},
                    },
                    "required": ["city", "month"],
                    "$defs": {"Month": {"enum": ["March", "April", "May"], "type": "string"}},
                },
            ),
            ToolSpec(
                name="reserve_seats",
                description="Reserve seats for a concert.",
                parameters={
                    "type": "object",
                    "properties": {
                        "concert_id": {"type": "string"},
                        "seats": {"type": "integer", "minimum": 1, "maximum": 8},
                        "date": {"type": "string", "format": "date"},
                    },
                    "required": ["concert_id", "seats", "date"],
                },
            ),
            ToolSpec(
                name="create_invoice",
                description="Create an invoice for the reserved seats.",
                approval="confirm",
                compensation="void_invoice",
                parameters={
                    "type": "object",
                    "properties": {
                        "customer_email": {"type": "string", "description": "Who pays."},
                        "amount_usd": {"type": "number"},
                    },
                    "required": ["customer_email", "amount_usd"],
                },
            ),
            ToolSpec(
                name="void_invoice",
                description="Void an invoice.",
                parameters={
                    "type": "object",
                    "properties": {"invoice_id": {"type": "string"}},
                    "required": ["invoice_id"],
                },
            ),
        ],
    )
