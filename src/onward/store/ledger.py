"""The ledger: every side effect of the bundled goals, recorded once per idempotency key.

A tool activity may run more than once for the same call (a worker dies after the
write, a timeout fires late, the server retries). Each write therefore goes through
`INSERT ... ON CONFLICT(idempotency_key) DO NOTHING` and then reads the row back: the
second attempt writes nothing and returns exactly what the first one recorded.

The ledger is one SQLite file, `<data_dir>/ledger.sqlite`, in WAL mode so the CLI can
read it while workers write. Every operation opens its own short-lived connection, so
tools running in threads (`asyncio.to_thread`) never share one.

Record ids are derived from the idempotency key (`inv_<sha256 prefix>`), so a retry
computes the same id before it even reaches the database. Undo records (`releases`,
`refunds`) are also unique per undone record, so two compensations of one reservation
under different keys still release it once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
from collections.abc import Generator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from onward.config import Settings
from onward.exceptions import OnwardRuntimeError

LEDGER_FILENAME = "ledger.sqlite"


class LedgerError(OnwardRuntimeError):
    """A ledger operation could not be completed."""


class RecordNotFound(LedgerError):
    """The record an update or undo refers to does not exist."""


class OutOfStock(LedgerError):
    """A reservation asked for more units than are still available."""


# The table schema is generated from these dataclasses, so the two cannot drift apart.


@dataclass(frozen=True)
class Record:
    """Fields every ledger record has. `id` derives from `idempotency_key`."""

    id: str
    idempotency_key: str
    created_at: str


@dataclass(frozen=True)
class Invoice(Record):
    """An invoice with its pay link (travel goal)."""

    customer_email: str
    customer_name: str
    description: str
    amount_cents: int
    currency: str
    status: str
    """`pending` until a pay link exists, then `open`."""
    provider: str
    """`local` (pay link served by onward) or `stripe`."""
    provider_ref: str | None
    pay_url: str | None


@dataclass(frozen=True)
class Report(Record):
    """A stored research report and the document ids it cites."""

    title: str
    body: str
    sources: list[str]


@dataclass(frozen=True)
class Ticket(Record):
    """A support ticket for a human agent."""

    question: str
    category: str
    status: str


@dataclass(frozen=True)
class Email(Record):
    """An outbox email."""

    recipient: str
    subject: str
    body: str
    status: str
    """`queued` (outbox only) or `sent` (handed to the SMTP server)."""
    sent_at: str | None


@dataclass(frozen=True)
class Reservation(Record):
    """Units of a SKU held for an order."""

    sku: str
    quantity: int
    unit_price_cents: int
    status: str
    """`held` or `released`."""
    released_at: str | None


@dataclass(frozen=True)
class Release(Record):
    """The undo of a reservation."""

    reservation_id: str


@dataclass(frozen=True)
class Charge(Record):
    """A captured card payment."""

    amount_cents: int
    currency: str
    card_last4: str
    status: str
    """`captured` or `refunded`."""
    refunded_at: str | None


@dataclass(frozen=True)
class Refund(Record):
    """The undo of a charge (always in full)."""

    charge_id: str
    amount_cents: int


@dataclass(frozen=True)
class Shipment(Record):
    """A shipment with its tracking number."""

    sku: str
    quantity: int
    address: str
    tracking_number: str
    status: str


# record type -> (table, id prefix), in the order `dump()` lists them.
_TABLES: dict[type[Any], tuple[str, str]] = {
    Invoice: ("invoices", "inv"),
    Report: ("reports", "rep"),
    Ticket: ("tickets", "tkt"),
    Email: ("outbox", "msg"),
    Reservation: ("reservations", "res"),
    Release: ("releases", "rel"),
    Charge: ("charges", "ch"),
    Refund: ("refunds", "re"),
    Shipment: ("shipments", "shp"),
}
TABLES = tuple(table for table, _ in _TABLES.values())
"""Every ledger table, in the order `dump()` lists them."""

# undo type -> (undone table, column naming the undone record, its new status, stamp)
_UNDOES: dict[type[Any], tuple[str, str, str, str]] = {
    Release: ("reservations", "reservation_id", "released", "released_at"),
    Refund: ("charges", "charge_id", "refunded", "refunded_at"),
}
_UNIQUE = {_TABLES[undo][0]: {ref} for undo, (_, ref, _, _) in _UNDOES.items()}
_RECORD_FIELDS = frozenset(f.name for f in dataclasses.fields(Record))
_SQL_TYPES = {
    "str": "TEXT NOT NULL",
    "int": "INTEGER NOT NULL",
    "str | None": "TEXT",
    "list[str]": "TEXT NOT NULL",  # JSON
}
_JSON_COLUMNS = frozenset({"sources"})

_R = TypeVar("_R", bound=Record)


def _ddl(cls: type[Any], table: str) -> str:
    columns: list[str] = []
    for f in dataclasses.fields(cls):
        constraint = ""
        if f.name == "id":
            constraint = " PRIMARY KEY"
        elif f.name == "idempotency_key" or f.name in _UNIQUE.get(table, ()):
            constraint = " UNIQUE"
        columns.append(f"{f.name} {_SQL_TYPES[str(f.type)]}{constraint}")
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)})"


def record_id(prefix: str, idempotency_key: str) -> str:
    """A record id that is the same for every attempt of one tool call."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
    return f"{prefix}_{digest[:16]}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    return {k: json.loads(row[k]) if k in _JSON_COLUMNS else row[k] for k in row.keys()}  # noqa: SIM118


def _as(cls: type[_R], row: sqlite3.Row | None) -> _R:
    if row is None:
        # Only reachable if the row vanished between the write and its read-back.
        raise LedgerError(f"the {cls.__name__} ledger row disappeared after writing it")
    return cls(**_decode(row))


class Ledger:
    """Typed access to one ledger file. Safe to share between threads.

    Use `Ledger.open(path)` or `ledger_for(settings)`; each method is one short
    transaction on its own connection.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Ledger:
        """Open (creating if needed) the ledger at `path` and make sure its tables exist."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, timeout=30)) as conn:
            # WAL persists in the file: readers (the CLI) never block the writers.
            conn.execute("PRAGMA journal_mode=WAL")
            for record_type, (table, _) in _TABLES.items():
                conn.execute(_ddl(record_type, table))
            conn.commit()
        return cls(path)

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
            [json.dumps(v) if k in _JSON_COLUMNS else v for k, v in values.items()],
        )
        return conn.execute(
            f"SELECT * FROM {table} WHERE idempotency_key = ?", (values["idempotency_key"],)
        ).fetchone()

    @staticmethod
    def _new(record_type: type[Any], idempotency_key: str, **values: Any) -> dict[str, Any]:
        return {
            "id": record_id(_TABLES[record_type][1], idempotency_key),
            "idempotency_key": idempotency_key,
            "created_at": _now(),
            **values,
        }

    def _write_once(self, cls: type[_R], idempotency_key: str, **values: Any) -> _R:
        with self._tx() as conn:
            row = self._insert_once(
                conn, _TABLES[cls][0], self._new(cls, idempotency_key, **values)
            )
            return _as(cls, row)

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
    ) -> Invoice:
        """Record an invoice once, `pending` until `attach_payment_link` gives it a link."""
        return self._write_once(
            Invoice,
            idempotency_key,
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

    def record_report(
        self, idempotency_key: str, *, title: str, body: str, sources: list[str]
    ) -> Report:
        """Record a research report once."""
        return self._write_once(Report, idempotency_key, title=title, body=body, sources=sources)

    def record_ticket(self, idempotency_key: str, *, question: str, category: str) -> Ticket:
        """Open a support ticket once."""
        return self._write_once(
            Ticket, idempotency_key, question=question, category=category, status="open"
        )

    def record_email(
        self, idempotency_key: str, *, recipient: str, subject: str, body: str
    ) -> Email:
        """Put an email in the outbox once (status `queued`)."""
        return self._write_once(
            Email,
            idempotency_key,
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
        self, idempotency_key: str, *, sku: str, quantity: int, unit_price_cents: int, stock: int
    ) -> Reservation:
        """Hold `quantity` units of `sku` once, if `stock` minus the current holds allows.

        Raises:
            OutOfStock: not enough units left (checked only for a new key, so a retry
                of a reservation that succeeded returns it).
        """
        with self._tx() as conn:
            table = _TABLES[Reservation][0]
            existing = conn.execute(
                f"SELECT * FROM {table} WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if existing is not None:
                return _as(Reservation, existing)
            held: int = conn.execute(
                "SELECT COALESCE(SUM(quantity), 0) FROM reservations "
                "WHERE sku = ? AND status = 'held'",
                (sku,),
            ).fetchone()[0]
            if held + quantity > stock:
                raise OutOfStock(f"only {stock - held} of {sku!r} left; asked for {quantity}")
            values = self._new(
                Reservation,
                idempotency_key,
                sku=sku,
                quantity=quantity,
                unit_price_cents=unit_price_cents,
                status="held",
                released_at=None,
            )
            return _as(Reservation, self._insert_once(conn, table, values))

    def release_reservation(self, idempotency_key: str, reservation_id: str) -> Release:
        """Release a hold once; releasing it again returns the first release.

        Raises:
            RecordNotFound: no such reservation.
        """
        return self._undo_once(Release, idempotency_key, reservation_id)

    def record_charge(
        self, idempotency_key: str, *, amount_cents: int, card_last4: str, currency: str = "usd"
    ) -> Charge:
        """Capture a charge once."""
        return self._write_once(
            Charge,
            idempotency_key,
            amount_cents=amount_cents,
            currency=currency,
            card_last4=card_last4,
            status="captured",
            refunded_at=None,
        )

    def refund_charge(self, idempotency_key: str, charge_id: str) -> Refund:
        """Refund a charge in full, once per charge whatever the key.

        Raises:
            RecordNotFound: no such charge.
        """
        return self._undo_once(Refund, idempotency_key, charge_id)

    def _undo_once(self, undo: type[_R], idempotency_key: str, target_id: str) -> _R:
        table, ref, done, stamp = _UNDOES[undo]
        with self._tx() as conn:
            target = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (target_id,)).fetchone()
            if target is None:
                raise RecordNotFound(f"no {ref.removesuffix('_id')} {target_id!r} in the ledger")
            # Copy what the undo shares with its target (a refund's amount).
            shared = {
                f.name: target[f.name]
                for f in dataclasses.fields(undo)
                if f.name in target.keys() and f.name not in _RECORD_FIELDS  # noqa: SIM118
            }
            values = self._new(undo, idempotency_key, **{ref: target_id}, **shared)
            undo_table = _TABLES[undo][0]
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
        self, idempotency_key: str, *, sku: str, quantity: int, address: str
    ) -> Shipment:
        """Create a shipment once; its tracking number derives from the key."""
        digest = hashlib.sha256(f"track:{idempotency_key}".encode()).hexdigest()
        return self._write_once(
            Shipment,
            idempotency_key,
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
