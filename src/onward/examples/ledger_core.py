"""The ledger's machinery: one SQLite file, short transactions, writes once per key.

See `onward.examples.ledger` for what is recorded and why.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Generator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from onward.examples.ledger_keys import KEY_FILENAME, keyed_id, load_or_create_key
from onward.examples.ledger_records import (
    JSON_COLUMNS,
    TABLE_OF,
    TABLES,
    UNIQUE_INDEXES,
    Record,
    added_columns_sql,
    create_table_sql,
)
from onward.exceptions import LedgerError
from onward.store.once import insert_once

R = TypeVar("R", bound=Record)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def owner_of(idempotency_key: str) -> str | None:
    # Tool keys are `<conversation id>:<call id>`; call ids never contain a colon.
    return idempotency_key.rpartition(":")[0] or None


def decode(row: sqlite3.Row) -> dict[str, Any]:
    return {k: json.loads(row[k]) if k in JSON_COLUMNS else row[k] for k in row.keys()}  # noqa: SIM118


def as_record(cls: type[R], row: sqlite3.Row | None) -> R:
    if row is None:
        # Only reachable if the row vanished between the write and its read-back.
        raise LedgerError(f"the {cls.__name__} ledger row disappeared after writing it")
    return cls(**decode(row))


OWNED = (
    "(conversation_id = :owner OR (conversation_id IS NULL "
    "AND substr(idempotency_key, 1, length(:owner) + 1) = :owner || ':'))"
)
"""SQL: the row belongs to conversation `:owner` (older rows: by their key's prefix)."""


class LedgerCore:
    """Typed access to one ledger file. Safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: bytes | None = None
        self._key_lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> Self:
        """Open (creating if needed) the ledger at `path` and make sure its tables exist
        (adding the columns a file from an older release lacks)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, timeout=30)) as conn:
            # WAL persists in the file: readers (the CLI) never block the writers.
            conn.execute("PRAGMA journal_mode=WAL")
            for record_type, (table, _) in TABLE_OF.items():
                conn.execute(create_table_sql(record_type))
                existing = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                for statement in added_columns_sql(record_type, existing):
                    conn.execute(statement)
            for table, column in UNIQUE_INDEXES.items():
                conn.execute(
                    f"CREATE UNIQUE INDEX IF NOT EXISTS {table}_{column} ON {table}({column})"
                )
            conn.commit()
        return cls(path)

    @property
    def key_path(self) -> Path:
        """Where the key behind record ids is kept (`ledger.key` beside the file)."""
        return self.path.with_name(KEY_FILENAME)

    def record_id(self, prefix: str, idempotency_key: str) -> str:
        """The id a record written under `idempotency_key` gets (same on every retry)."""
        with self._key_lock:
            if self._key is None:
                self._key = load_or_create_key(self.key_path)
            key = self._key
        return keyed_id(key, prefix, idempotency_key)

    @contextmanager
    def _tx(self) -> Generator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            # IMMEDIATE takes the write lock up front, so check-then-write steps
            # (stock, undo of a record) cannot interleave with another writer.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @staticmethod
    def _insert_once(conn: sqlite3.Connection, table: str, values: dict[str, Any]) -> Any:
        encoded = {k: json.dumps(v) if k in JSON_COLUMNS else v for k, v in values.items()}
        return insert_once(conn, table, ("idempotency_key",), encoded)

    @staticmethod
    def _existing(conn: sqlite3.Connection, cls: type[Any], idempotency_key: str) -> Any:
        table = TABLE_OF[cls][0]
        return conn.execute(
            f"SELECT * FROM {table} WHERE idempotency_key = ?", (idempotency_key,)
        ).fetchone()

    def _new(
        self,
        record_type: type[Any],
        idempotency_key: str,
        conversation_id: str | None,
        **values: Any,
    ) -> dict[str, Any]:
        return {
            "id": self.record_id(TABLE_OF[record_type][1], idempotency_key),
            "idempotency_key": idempotency_key,
            "created_at": now(),
            "conversation_id": conversation_id or owner_of(idempotency_key),
            **values,
        }

    def _write_once(
        self, cls: type[R], idempotency_key: str, conversation_id: str | None, **values: Any
    ) -> R:
        row = self._new(cls, idempotency_key, conversation_id, **values)
        with self._tx() as conn:
            return as_record(cls, self._insert_once(conn, TABLE_OF[cls][0], row))

    # ------------------------------------------------------------------- reads

    def rows(self, table: str) -> list[dict[str, Any]]:
        """All rows of `table`, oldest first, as plain dicts (JSON columns decoded).

        Raises:
            LedgerError: `table` is not a ledger table.
        """
        if table not in TABLES:
            raise LedgerError(f"unknown ledger table {table!r}; known: {', '.join(TABLES)}")
        with self._tx() as conn:
            found = conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        return [decode(r) for r in found]

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every table's rows, keyed by table name (for `onward ledger`)."""
        return {table: self.rows(table) for table in TABLES}
