"""The ledger's record types and the tables they live in.

The table schema is generated from these dataclasses, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Record:
    """Fields every ledger record has. `id` derives from `idempotency_key`."""

    id: str
    idempotency_key: str
    created_at: str
    conversation_id: str | None
    """The conversation whose tool call wrote it: only that conversation may undo it.
    None on rows written before ownership was recorded."""


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
    """A captured card payment for a reservation (its amount is the reservation's)."""

    amount_cents: int
    currency: str
    card_last4: str
    status: str
    """`captured` or `refunded`."""
    refunded_at: str | None
    reservation_id: str | None
    """The reservation paid for (None on rows written before charges named one)."""


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
TABLE_OF: dict[type[Any], tuple[str, str]] = {
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
TABLES = tuple(table for table, _ in TABLE_OF.values())
"""Every ledger table, in the order `dump()` lists them."""

# undo type -> (undone table, column naming the undone record, its new status, stamp)
UNDOES: dict[type[Any], tuple[str, str, str, str]] = {
    Release: ("reservations", "reservation_id", "released", "released_at"),
    Refund: ("charges", "charge_id", "refunded", "refunded_at"),
}
_UNIQUE = {TABLE_OF[undo][0]: {ref} for undo, (_, ref, _, _) in UNDOES.items()}
UNIQUE_INDEXES = {"charges": "reservation_id"}
"""Columns added after the first release: unique through an index, which (unlike a
column constraint) can be added to an existing file. NULLs (old rows) do not clash."""
RECORD_FIELDS = frozenset(f.name for f in dataclasses.fields(Record))
_SQL_TYPES = {
    "str": "TEXT NOT NULL",
    "int": "INTEGER NOT NULL",
    "str | None": "TEXT",
    "list[str]": "TEXT NOT NULL",  # JSON
}
JSON_COLUMNS = frozenset({"sources"})


def create_table_sql(cls: type[Any]) -> str:
    """`CREATE TABLE IF NOT EXISTS` for a record type."""
    table = TABLE_OF[cls][0]
    columns: list[str] = []
    for f in dataclasses.fields(cls):
        constraint = ""
        if f.name == "id":
            constraint = " PRIMARY KEY"
        elif f.name == "idempotency_key" or f.name in _UNIQUE.get(table, ()):
            constraint = " UNIQUE"
        columns.append(f"{f.name} {_SQL_TYPES[str(f.type)]}{constraint}")
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)})"


def added_columns_sql(cls: type[Any], existing: set[str]) -> list[str]:
    """`ALTER TABLE … ADD COLUMN` for fields an older file's table lacks (only nullable
    fields are ever added, so old rows stay valid)."""
    table = TABLE_OF[cls][0]
    return [
        f"ALTER TABLE {table} ADD COLUMN {f.name} {_SQL_TYPES[str(f.type)]}"
        for f in dataclasses.fields(cls)
        if f.name not in existing
    ]
