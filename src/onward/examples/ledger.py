"""The ledger: every side effect of the bundled goals, recorded once per idempotency key.

A tool activity may run more than once for the same call (a worker dies after the
write, a timeout fires late, the server retries). Each write therefore goes through
`onward.store.once.insert_once`, keyed by the idempotency key: the second attempt
writes nothing and returns exactly what the first one recorded.

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

import threading
from pathlib import Path
from typing import Any

from onward.config import Settings
from onward.examples.ledger_core import as_record, now
from onward.examples.ledger_orders import OrderBook
from onward.examples.ledger_records import (
    TABLES,
    Charge,
    Email,
    Invoice,
    Record,
    Refund,
    Release,
    Report,
    Reservation,
    Shipment,
    Ticket,
)
from onward.exceptions import ChargeRefused, LedgerError, OutOfStock, RecordNotFound, WrongAmount

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


class Ledger(OrderBook):
    """Typed access to one ledger file. Safe to share between threads.

    Use `Ledger.open(path)` or `ledger_for(settings)`; each method is one short
    transaction on its own connection.
    """

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
            return as_record(Invoice, row)

    def invoice(self, invoice_id: str) -> Invoice | None:
        """The invoice with this id, or None."""
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM invoices WHERE id = ?", (invoice_id,)).fetchone()
        return None if row is None else as_record(Invoice, row)

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
                (now(), email_id),
            )
            row = conn.execute("SELECT * FROM outbox WHERE id = ?", (email_id,)).fetchone()
            if row is None:
                raise RecordNotFound(f"no email {email_id!r} in the outbox")
            return as_record(Email, row)

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
