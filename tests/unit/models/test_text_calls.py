"""Tool calls written as text: every known format is read, other text is left alone."""

from __future__ import annotations

import pytest

from onward.agent.text_calls import (
    find_text_tool_calls,
    looks_like_tool_call,
    might_open_tool_call,
    parse_text_tool_calls,
    unwrap_json_reply,
)

TOOLS = ["find_events", "search_flights"]
EVENTS = {"city": "San Francisco", "month": "March"}


@pytest.mark.parametrize(
    "text",
    [
        'functions.find_events:{"city": "San Francisco", "month": "March"}',
        'functions.find_events: {"city": "San Francisco", "month": "March"}',
        'functions.find_events({"city": "San Francisco", "month": "March"})',
        '<tool_call>\n{"name": "find_events", "arguments": {"city": "San Francisco", '
        '"month": "March"}}\n</tool_call>',
        # A template that stops before the closing tag.
        '<tool_call>{"name": "find_events", "arguments": {"city": "San Francisco", '
        '"month": "March"}}',
        '{"name": "find_events", "arguments": {"city": "San Francisco", "month": "March"}}',
        '{"name": "find_events", "parameters": {"city": "San Francisco", "month": "March"}}',
        # Arguments as a JSON string, as on OpenAI's wire.
        '{"name": "find_events", "arguments": "{\\"city\\": \\"San Francisco\\", '
        '\\"month\\": \\"March\\"}"}',
        '```json\n{"name": "find_events", "arguments": {"city": "San Francisco", '
        '"month": "March"}}\n```',
        # OpenAI's own tool-call object written out.
        '{"type": "function", "function": {"name": "find_events", "arguments": '
        '{"city": "San Francisco", "month": "March"}}}',
        # Another letter case or a `functions.` prefix inside the JSON.
        '{"name": "functions.find_events", "arguments": {"city": "San Francisco", '
        '"month": "March"}}',
        '{"name": "Find_Events", "arguments": {"city": "San Francisco", "month": "March"}}',
    ],
)
def test_each_format_is_one_call(text: str) -> None:
    assert parse_text_tool_calls(text, TOOLS) == [("find_events", EVENTS)]
    assert looks_like_tool_call(text)


def test_several_calls_in_a_row_and_in_a_list() -> None:
    flights = {"origin": "Austin", "destination": "San Francisco"}
    row = (
        '<tool_call>{"name": "find_events", "arguments": {"city": "San Francisco", '
        '"month": "March"}}</tool_call>\n<tool_call>{"name": "search_flights", "arguments": '
        '{"origin": "Austin", "destination": "San Francisco"}}</tool_call>'
    )
    expected = [("find_events", EVENTS), ("search_flights", flights)]
    assert parse_text_tool_calls(row, TOOLS) == expected
    listed = (
        '[{"name": "find_events", "arguments": {"city": "San Francisco", "month": "March"}},'
        ' {"name": "search_flights", "parameters": {"origin": "Austin", '
        '"destination": "San Francisco"}}]'
    )
    assert parse_text_tool_calls(listed, TOOLS) == expected
    fenced = (
        '```\n{"name": "find_events", "arguments": {"city": "San Francisco", "month": '
        '"March"}}\n```\n```json\n{"name": "search_flights", "arguments": {"origin": '
        '"Austin", "destination": "San Francisco"}}\n```'
    )
    assert parse_text_tool_calls(fenced, TOOLS) == expected
    functions = (
        'functions.find_events:{"city": "San Francisco", "month": "March"}\n'
        'functions.search_flights:{"origin": "Austin", "destination": "San Francisco"}'
    )
    assert parse_text_tool_calls(functions, TOOLS) == expected


def test_prose_around_calls_is_kept_apart() -> None:
    text = (
        'Let me look that up.\n```json\n{"name": "find_events", "arguments": '
        '{"city": "San Francisco", "month": "March"}}\n```'
    )
    found = find_text_tool_calls(text, TOOLS)
    assert found is not None
    assert found.calls == [("find_events", EVENTS)] and found.prose == "Let me look that up."
    assert found.unknown == []


def test_unknown_names_are_returned_and_listed() -> None:
    text = 'functions.book_hotel:{"city": "Paris"}'
    assert parse_text_tool_calls(text, TOOLS) == [("book_hotel", {"city": "Paris"})]
    found = find_text_tool_calls(text, TOOLS)
    assert found is not None and found.unknown == ["book_hotel"]
    assert looks_like_tool_call(text)


@pytest.mark.parametrize(
    "text",
    [
        "I found three events in San Francisco in March: Bay Kite Festival, ...",
        "Which city would you like to fly from?",
        'The event is called {"name": "Bay Kite Festival"} in the listing.',
        '{"city": "San Francisco", "month": "March"}',
        "Use functions to compute it: f(x) = 2x.",
        "",
    ],
)
def test_plain_text_is_not_a_call(text: str) -> None:
    assert parse_text_tool_calls(text, TOOLS) is None
    assert not looks_like_tool_call(text)


@pytest.mark.parametrize(
    "text",
    [
        'functions.find_events:{"city": "San Fran',
        '<tool_call>{"name": "find_events", "arguments": {"city": </tool_call>',
        '{"name": "find_events", "arguments": {"city": "San Francisco"',
        '{"name": "find_events", "arguments": "not json"}',
        "<|python_tag|>find_events.call(city='Paris')",
        '[TOOL_CALLS] [{"name": "find_events"',
    ],
)
def test_broken_call_syntax_is_not_parsed_but_recognised(text: str) -> None:
    assert parse_text_tool_calls(text, TOOLS) is None
    assert looks_like_tool_call(text)


def test_a_call_nested_in_other_json_is_found() -> None:
    text = '{"tool_calls": [{"name": "find_events", "arguments": {"city": "Paris"}}]}'
    assert parse_text_tool_calls(text, TOOLS) == [("find_events", {"city": "Paris"})]


@pytest.mark.parametrize(
    ("prefix", "held"),
    [
        ("", True),
        ("  ", True),
        ("func", True),
        ("functions.find", True),
        ("<tool", True),
        ("<tool_call>{", True),
        ("{", True),
        ("```", True),
        ("I found", False),
        ("Which", False),
        ("<b>", False),
    ],
)
def test_stream_prefix_that_may_open_a_call(prefix: str, held: bool) -> None:
    assert might_open_tool_call(prefix) is held


def test_an_offered_tool_with_its_arguments_inline() -> None:
    text = '{"name": "finish", "answer": "It is sunny in Paris."}'
    assert parse_text_tool_calls(text, [*TOOLS, "finish"]) == [
        ("finish", {"answer": "It is sunny in Paris."})
    ]
    # Not an offered tool: just JSON the model wrote, not a call.
    assert parse_text_tool_calls('{"name": "Bay Kite Festival", "city": "SF"}', TOOLS) is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"response": "It is sunny in Paris."}', "It is sunny in Paris."),
        ('```json\n{"answer": "It is sunny."}\n```', "It is sunny."),
        ('{"text": "  Hi!  "}', "Hi!"),
        ('{"response": "a", "extra": 1}', None),
        ('{"city": "Paris"}', None),
        ("It is sunny.", None),
        ('{"response": ""}', None),
    ],
)
def test_a_reply_wrapped_in_json_is_unwrapped(text: str, words: str | None) -> None:
    assert unwrap_json_reply(text) == words
