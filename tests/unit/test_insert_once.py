"""`insert_once`: a retried tool's write lands once, and the retry sees the first row."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from onward.exceptions import UserError
from onward.store.once import insert_once


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")  # plain tuples: `insert_once` still gives a Row
    conn.execute(
        "CREATE TABLE bookings (conversation_id TEXT NOT NULL, call_id TEXT NOT NULL, "
        "seat TEXT NOT NULL, UNIQUE (conversation_id, call_id))"
    )
    yield conn
    conn.close()


KEY = ("conversation_id", "call_id")


def count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM bookings").fetchone()[0]


def test_a_second_insert_with_the_same_key_returns_the_first_row_and_writes_nothing(
    conn: sqlite3.Connection,
) -> None:
    first = insert_once(
        conn, "bookings", KEY, {"conversation_id": "c1", "call_id": "k1", "seat": "4A"}
    )
    again = insert_once(
        conn, "bookings", KEY, {"conversation_id": "c1", "call_id": "k1", "seat": "9F"}
    )
    assert dict(first) == dict(again) == {"conversation_id": "c1", "call_id": "k1", "seat": "4A"}
    assert count(conn) == 1


def test_a_different_key_writes(conn: sqlite3.Connection) -> None:
    insert_once(conn, "bookings", KEY, {"conversation_id": "c1", "call_id": "k1", "seat": "4A"})
    other_call = insert_once(
        conn, "bookings", KEY, {"conversation_id": "c1", "call_id": "k2", "seat": "9F"}
    )
    other_conversation = insert_once(
        conn, "bookings", KEY, {"conversation_id": "c2", "call_id": "k1", "seat": "1C"}
    )
    assert (other_call["seat"], other_conversation["seat"]) == ("9F", "1C")
    assert count(conn) == 3


def test_a_table_without_a_unique_key_is_refused_by_sqlite(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE loose (call_id TEXT, seat TEXT)")
    with pytest.raises(sqlite3.OperationalError, match="ON CONFLICT clause does not match"):
        insert_once(conn, "loose", ("call_id",), {"call_id": "k1", "seat": "4A"})


@pytest.mark.parametrize(
    ("table", "key", "values", "reason"),
    [
        ("bookings; DROP TABLE x", KEY, {"conversation_id": "c", "call_id": "k"}, "identifiers"),
        ("bookings", (), {"conversation_id": "c", "call_id": "k"}, "key columns"),
        ("bookings", KEY, {"conversation_id": "c", "call_id": None}, "missing: \\['call_id'\\]"),
        ("bookings", KEY, {"conversation_id": "c"}, "missing: \\['call_id'\\]"),
    ],
)
def test_bad_arguments_are_refused_before_writing(
    conn: sqlite3.Connection,
    table: str,
    key: tuple[str, ...],
    values: dict[str, object],
    reason: str,
) -> None:
    with pytest.raises(UserError, match=reason):
        insert_once(conn, table, key, values)
    assert count(conn) == 0
