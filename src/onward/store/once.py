"""`insert_once`: the write of an idempotent tool, for any SQLite table.

A tool activity may run more than once for one call: the worker dies after the write,
a timeout fires late, the server retries. A tool that records a side effect under its
call's key (`ToolContext.idempotency_key`, conversation id + call id) with
`insert_once` writes on the first attempt only, and every later attempt gets back
exactly the row the first one wrote, so the tool answers the same each time.

The table needs a UNIQUE index (or primary key) on the key columns: that is what makes
a second insert a no-op, even when two attempts race in different processes.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence

from onward.exceptions import UserError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def insert_once(
    conn: sqlite3.Connection,
    table: str,
    key_columns: Sequence[str],
    values: Mapping[str, object],
) -> sqlite3.Row:
    """Insert `values` into `table` unless a row with the same key exists; return the row.

    Run it inside the caller's transaction: the insert and the read-back then see the
    same state, and a caller's check-then-write steps around it stay atomic.

    Args:
        conn: An open connection.
        table: The table, with a UNIQUE index on exactly `key_columns`.
        key_columns: The columns that identify one side effect, e.g.
            `("idempotency_key",)` or `("conversation_id", "call_id")`.
        values: Every column to write, the key columns included, as SQLite values.

    Returns:
        The stored row (a `sqlite3.Row`, whatever the connection's `row_factory`): the
        one just written, or the one an earlier attempt wrote (then `values` are
        ignored, even where they differ).

    Raises:
        UserError: a name is not a plain SQL identifier, no key column is given, or a
            key column's value is missing or None.
        sqlite3.OperationalError: the table has no UNIQUE index on `key_columns` (SQLite:
            "ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint").
    """
    names = [table, *key_columns, *values]
    bad = [n for n in names if not _IDENTIFIER.fullmatch(n)]
    if bad:
        # Names are spliced into the SQL (values never are): only plain identifiers.
        raise UserError(f"`insert_once` takes plain SQL identifiers, not {bad[0]!r}")
    # A NULL never equals another NULL: such a key would write again on every retry.
    missing = [c for c in key_columns if values.get(c) is None]
    if not key_columns or missing:
        raise UserError(
            f"`insert_once` into {table!r} needs key columns with values; missing: {missing}"
        )
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    keys = ", ".join(key_columns)
    conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT({keys}) DO NOTHING",
        list(values.values()),
    )
    where = " AND ".join(f"{c} = ?" for c in key_columns)
    read = conn.cursor()
    read.row_factory = sqlite3.Row
    row: sqlite3.Row = read.execute(
        f"SELECT * FROM {table} WHERE {where}", [values[c] for c in key_columns]
    ).fetchone()
    return row
