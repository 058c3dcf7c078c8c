"""The ledger: every side effect of the bundled goals, recorded once per idempotency key.

A tool activity may run more than once for the same call (a worker dies after the
write, a timeout fires late, the server retries). Each write therefore goes through
`INSERT ... ON CONFLICT(idempotency_key) DO NOTHING` and then reads the row back: the
second attempt writes nothing and returns exactly what the first one recorded.

The ledger is one SQLite file, `<data_dir>/ledger.sqlite`, in WAL mode so the CLI can
read it while workers write. Every operation opens its own short-lived connection, so
tools running in threads (`asyncio.to_thread`) never share one.

Record ids are an HMAC of the idempotency key with a key kept next to the ledger
(`ledger_keys`): a retry computes the same id, nobody else can. Every record names the
conversation that wrote it, and an undo (`releases`, `refunds`) only touches records of
its own conversation; undo records are also unique per undone record, so two
compensations of one reservation under different keys still release it once. A
charge's amount is its reservation's, read in the same transaction, never a caller's.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Generator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from onward.config import Settings
from onward.store.ledger_keys import KEY_FILENAME, keyed_id, load_or_create_key
from onward.store.ledger_records import (
    JSON_COLUMNS,
    RECORD_FIELDS,
    TABLE_OF,
    TABLES,
    UNDOES,
    UNIQUE_INDEXES,
    Charge,
    ChargeRefused,
    Email,
    Invoice,
    LedgerError,
    OutOfStock,
    Record,
    RecordNotFound,
    Refund,
    Release,
    Report,
    Reservation,
    Shipment,
    Ticket,
    WrongAmount,
    added_columns_sql,
    create_table_sql,
)

__all__ = [
    "LEDGER_FILENAME",
    "TABLES",
    "Charge",
    "ChargeRefused",
    "Email",
    "Invoice",
    "Ledger",
    "LedgerError",
    "OutOfStock",
    "Record",
    "RecordNotFound",
    "Refund",
    "Release",
    "Report",
    "Reservation",
    "Shipment",
    "Ticket",
    "WrongAmount",
    "ledger_for",
    "ledger_path",
    "ledger_tables",
]

LEDGER_FILENAME = "ledger.sqlite"

_R = TypeVar("_R", bound=Record)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _owner(idempotency_key: str) -> str | None:
    # Tool keys are `<conversation id>:<call id>`; call ids never contain a colon.
    return idempotency_key.rpartition(":")[0] or None


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    return {k: json.loads(row[k]) if k in JSON_COLUMNS else row[k] for k in row.keys()}  # noqa: SIM118


def _as(cls: type[_R], row: sqlite3.Row | None) -> _R:
    if row is None:
        # Only reachable if the row vanished between the write and its read-back.
        raise LedgerError(f"the {cls.__name__} ledger row disappeared after writing it")
    return cls(**_decode(row))


_OWNED = (
    "(conversation_id = :owner OR (conversation_id IS NULL "
    "AND substr(idempotency_key, 1, length(:owner) + 1) = :owner || ':'))"
)
"""SQL: the row belongs to conversation `:owner` (older rows: by their key's prefix)."""


class Ledger:
    """Typed access to one ledger file. Safe to share between threads.

    Use `Ledger.open(path)` or `ledger_for(settings)`; each method is one short
    transaction on its own connection.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: bytes | None = None
        self._key_lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> Ledger:
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
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        conn.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
            "ON CONFLICT(idempotency_key) DO NOTHING",
            [json.dumps(v) if k in JSON_COLUMNS else v for k, v in values.items()],
        )
        return conn.execute(
            f"SELECT * FROM {table} WHERE idempotency_key = ?", (values["idempotency_key"],)
        ).fetchone()

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
            "created_at": _now(),
            "conversation_id": conversation_id or _owner(idempotency_key),
            **values,
        }

    def _write_once(
        self, cls: type[_R], idempotency_key: str, conversation_id: str | None, **values: Any
    ) -> _R:
        row = self._new(cls, idempotency_key, conversation_id, **values)
        with self._tx() as conn:
            return _as(cls, self._insert_once(conn, TABLE_OF[cls][0], row))

    # ------------------------------------------------------------------ writes

    def record_invoice(
        self,
        idempotency_key: str,
        *,
        customer_email: str,
        customer_name: str,
        description: str,
        amount_cents: int,
        provider: str,
        currency: str = "usd",
        conversation_id: str | None = None,
    ) -> Invoice:
        """Record an invoice once, `pending` until `attach_payment_link` gives it a link."""
        return self._write_once(
            Invoice,
            idempotency_key,
            conversation_id,
            customer_email=customer_email,
            customer_name=customer_name,
            description=description,
            amount_cents=amount_cents,
            currency=currency,
            status="pending",
            provider=provider,
            provider_ref=None,
            pay_url=None,
        )

    def attach_payment_link(self, invoice_id: str, provider_ref: str, pay_url: str) -> Invoice:
        """Store the provider's invoice id and hosted pay link (the first writer wins)."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE invoices SET provider_ref = ?, pay_url = ?, status = 'open' "
                "WHERE id = ? AND provider_ref IS NULL",
                (provider_ref, pay_url, invoice_id),
            )
            row = conn.execute("SELECT * FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
            if row is None:
                raise RecordNotFound(f"no invoice {invoice_id!r} in the ledger")
            return _as(Invoice, row)

    def invoice(self, invoice_id: str) -> Invoice | None:
        """The invoice with this id, or None."""
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
        return None if row is None else _as(Invoice, row)

    def record_report(
        self,
        idempotency_key: str,
        *,
        title: str,
        body: str,
        sources: list[str],
        conversation_id: str | None = None,
    ) -> Report:
        """Record a research report once."""
        return self._write_once(
            Report, idempotency_key, conversation_id, title=title, body=body, sources=sources
        )

    def record_ticket(
        self,
        idempotency_key: str,
        *,
        question: str,
        category: str,
        conversation_id: str | None = None,
    ) -> Ticket:
        """Open a support ticket once."""
        return self._write_once(
            Ticket,
            idempotency_key,
            conversation_id,
            question=question,
            category=category,
            status="open",
        )

    def record_email(
        self,
        idempotency_key: str,
        *,
        recipient: str,
        subject: str,
        body: str,
        conversation_id: str | None = None,
    ) -> Email:
        """Put an email in the outbox once (status `queued`)."""
        return self._write_once(
            Email,
            idempotency_key,
            conversation_id,
            recipient=recipient,
            subject=subject,
            body=body,
            status="queued",
            sent_at=None,
        )

    def mark_email_sent(self, email_id: str) -> Email:
        """Mark an outbox email as handed to the mail server."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ? WHERE id = ? AND status = 'queued'",
                (_now(), email_id),
            )
            row = conn.execute("SELECT * FROM outbox WHERE id = ?", (email_id,)).fetchone()
            if row is None:
                raise RecordNotFound(f"no email {email_id!r} in the outbox")
            return _as(Email, row)

    def record_reservation(
        self,
        idempotency_key: str,
        *,
        sku: str,
        quantity: int,
        unit_price_cents: int,
        stock: int,
        conversation_id: str | None = None,
    ) -> Reservation:
        """Hold `quantity` units of `sku` once, if `stock` minus the current holds allows.

        Raises:
            OutOfStock: not enough units left (checked only for a new key, so a retry
                of a reservation that succeeded returns it).
        """
        values = self._new(
            Reservation,
            idempotency_key,
            conversation_id,
            sku=sku,
            quantity=quantity,
            unit_price_cents=unit_price_cents,
            status="held",
            released_at=None,
        )
        with self._tx() as conn:
            existing = self._existing(conn, Reservation, idempotency_key)
            if existing is not None:
                return _as(Reservation, existing)
            held: int = conn.execute(
                "SELECT COALESCE(SUM(quantity), 0) FROM reservations "
                "WHERE sku = ? AND status = 'held'",
                (sku,),
            ).fetchone()[0]
            if held + quantity > stock:
                raise OutOfStock(f"only {stock - held} of {sku!r} left; asked for {quantity}")
            return _as(Reservation, self._insert_once(conn, "reservations", values))

    def release_reservation(
        self, idempotency_key: str, reservation_id: str, *, conversation_id: str
    ) -> Release:
        """Release a hold of `conversation_id` once; releasing it again returns the
        first release.

        Raises:
            RecordNotFound: no such reservation in that conversation.
        """
        return self._undo_once(Release, idempotency_key, reservation_id, conversation_id)

    def record_charge(
        self,
        idempotency_key: str,
        *,
        reservation_id: str,
        card_last4: str,
        conversation_id: str,
        expected_amount_cents: int | None = None,
        currency: str = "usd",
    ) -> Charge:
        """Capture the amount of a held reservation of `conversation_id`, once per key
        and once per reservation (a second charge of it returns the first).

        Args:
            expected_amount_cents: What the caller believes it charges; refused unless
                it is the reservation's amount.

        Raises:
            RecordNotFound: no such reservation in that conversation.
            ChargeRefused: the reservation was released.
            WrongAmount: `expected_amount_cents` is not the reservation's amount.
        """
        values = self._new(
            Charge,
            idempotency_key,
            conversation_id,
            currency=currency,
            card_last4=card_last4,
            status="captured",
            refunded_at=None,
            reservation_id=reservation_id,
        )
        with self._tx() as conn:
            existing = self._existing(conn, Charge, idempotency_key)
            if existing is not None:
                return _as(Charge, existing)
            reservation = conn.execute(
                f"SELECT * FROM reservations WHERE id = :id AND {_OWNED}",
                {"id": reservation_id, "owner": conversation_id},
            ).fetchone()
            if reservation is None:
                raise RecordNotFound(f"no reservation {reservation_id!r} in this conversation")
            earlier = conn.execute(
                "SELECT * FROM charges WHERE reservation_id = ?", (reservation_id,)
            ).fetchone()
            if earlier is not None:
                return _as(Charge, earlier)
            if reservation["status"] != "held":
                raise ChargeRefused(f"reservation {reservation_id!r} was released")
            amount = int(reservation["unit_price_cents"]) * int(reservation["quantity"])
            if expected_amount_cents is not None and expected_amount_cents != amount:
                raise WrongAmount(
                    f"the reservation's amount is {amount / 100:.2f}, "
                    f"not {expected_amount_cents / 100:.2f}"
                )
            return _as(
                Charge, self._insert_once(conn, "charges", {**values, "amount_cents": amount})
            )

    def refund_charge(
        self, idempotency_key: str, charge_id: str, *, conversation_id: str
    ) -> Refund:
        """Refund a charge of `conversation_id` in full, once per charge whatever the key.

        Raises:
            RecordNotFound: no such charge in that conversation.
        """
        return self._undo_once(Refund, idempotency_key, charge_id, conversation_id)

    def _undo_once(
        self, undo: type[_R], idempotency_key: str, target_id: str, conversation_id: str
    ) -> _R:
        table, ref, done, stamp = UNDOES[undo]
        with self._tx() as conn:
            # Another conversation's record is "not found": an undo never learns more.
            target = conn.execute(
                f"SELECT * FROM {table} WHERE id = :id AND {_OWNED}",
                {"id": target_id, "owner": conversation_id},
            ).fetchone()
            if target is None:
                raise RecordNotFound(
                    f"no {ref.removesuffix('_id')} {target_id!r} in this conversation"
                )
            # Copy what the undo shares with its target (a refund's amount).
            shared = {
                f.name: target[f.name]
                for f in dataclasses.fields(undo)
                if f.name in target.keys()  # noqa: SIM118
                and f.name not in RECORD_FIELDS
            }
            values = self._new(undo, idempotency_key, conversation_id, **{ref: target_id}, **shared)
            undo_table = TABLE_OF[undo][0]
            # No conflict target: a second undo of the same record under another key
            # must be a no-op too (the `ref` column is unique), not a second refund.
            conn.execute(
                f"INSERT INTO {undo_table} ({', '.join(values)}) "
                f"VALUES ({', '.join(':' + k for k in values)}) ON CONFLICT DO NOTHING",
                values,
            )
            conn.execute(
                f"UPDATE {table} SET status = ?, {stamp} = ? WHERE id = ? AND {stamp} IS NULL",
                (done, values["created_at"], target_id),
            )
            row = conn.execute(f"SELECT * FROM {undo_table} WHERE {ref} = ?", (target_id,))
            return _as(undo, row.fetchone())

    def record_shipment(
        self,
        idempotency_key: str,
        *,
        sku: str,
        quantity: int,
        address: str,
        conversation_id: str | None = None,
    ) -> Shipment:
        """Create a shipment once; its tracking number derives from the key."""
        digest = self.record_id("track", idempotency_key).removeprefix("track_")
        return self._write_once(
            Shipment,
            idempotency_key,
            conversation_id,
            sku=sku,
            quantity=quantity,
            address=address,
            tracking_number=f"1ZON{int(digest[:12], 16):015d}",
            status="label_created",
        )

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
        return [_decode(r) for r in found]

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every table's rows, keyed by table name (for `onward ledger`)."""
        return {table: self.rows(table) for table in TABLES}


_open: dict[Path, Ledger] = {}
_open_lock = threading.Lock()


def ledger_path(settings: Settings) -> Path:
    """Where the ledger of `settings` lives: `<data_dir>/ledger.sqlite`."""
    return settings.data_dir / LEDGER_FILENAME


def ledger_for(settings: Settings) -> Ledger:
    """The ledger in `settings.data_dir`, opened once per path and process.

    Tools call `ledger_for(get_settings())`, so `ONWARD_DATA_DIR` decides where side
    effects are recorded; tests set it and call `get_settings.cache_clear()`.
    """
    path = ledger_path(settings).resolve()
    with _open_lock:
        ledger = _open.get(path)
        # Re-create the tables if the file was deleted under a running process.
        if ledger is None or not path.exists():
            ledger = _open[path] = Ledger.open(path)
        return ledger


def ledger_tables(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """All ledger rows by table, for the `onward ledger` CLI command."""
    return ledger_for(settings).dump()
