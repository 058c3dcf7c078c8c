"""The ledger writes each side effect once per idempotency key and reads it back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from onward.config import Settings
from onward.store.ledger import (
    TABLES,
    Charge,
    Ledger,
    LedgerError,
    OutOfStock,
    RecordNotFound,
    ledger_for,
    ledger_tables,
)

WRITES: dict[str, Callable[[Ledger, str], Any]] = {
    "invoices": lambda lg, k: lg.record_invoice(
        k,
        customer_email="a@example.com",
        customer_name="Ana",
        description="Trip",
        amount_cents=12345,
        provider="local",
    ),
    "reports": lambda lg, k: lg.record_report(
        k, title="T", body="B [doc-001]", sources=["doc-001"]
    ),
    "tickets": lambda lg, k: lg.record_ticket(k, question="Help?", category="faq"),
    "outbox": lambda lg, k: lg.record_email(k, recipient="a@example.com", subject="S", body="B"),
    "reservations": lambda lg, k: lg.record_reservation(
        k, sku="MUG-1", quantity=2, unit_price_cents=1800, stock=10
    ),
    "charges": lambda lg, k: lg.record_charge(k, amount_cents=3600, card_last4="4242"),
    "shipments": lambda lg, k: lg.record_shipment(k, sku="MUG-1", quantity=2, address="1 Elm St"),
}


@pytest.mark.parametrize("table", sorted(WRITES))
def test_same_key_twice_writes_one_row_and_returns_the_same_record(
    tmp_path: Path, table: str
) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    first = WRITES[table](ledger, "conv-1:c1")
    second = WRITES[table](ledger, "conv-1:c1")
    assert second == first
    assert len(ledger.rows(table)) == 1
    third = WRITES[table](ledger, "conv-1:c2")
    assert third.id != first.id
    assert len(ledger.rows(table)) == 2


def test_concurrent_attempts_of_one_call_write_once(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")

    def attempt(_: int) -> Charge:
        return ledger.record_charge("k", amount_cents=1, card_last4="4242")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(16)))
    assert len({r.id for r in results}) == 1
    assert len(ledger.rows("charges")) == 1


def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "ledger.sqlite"
    Ledger.open(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_release_is_once_per_reservation_whatever_the_key(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    held = ledger.record_reservation("r", sku="MUG-1", quantity=3, unit_price_cents=1800, stock=3)
    first = ledger.release_reservation("undo-1", held.id)
    again = ledger.release_reservation("undo-2", held.id)
    assert again == first
    [row] = ledger.rows("reservations")
    assert row["status"] == "released"
    assert row["released_at"] == first.created_at
    assert len(ledger.rows("releases")) == 1
    # Released units are available again.
    ledger.record_reservation("r2", sku="MUG-1", quantity=3, unit_price_cents=1800, stock=3)


def test_refund_is_once_per_charge_and_copies_the_amount(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    charge = ledger.record_charge("c", amount_cents=7500, card_last4="4242")
    refund = ledger.refund_charge("undo-c", charge.id)
    assert refund.amount_cents == 7500
    assert ledger.refund_charge("undo-c-again", charge.id) == refund
    assert [r["status"] for r in ledger.rows("charges")] == ["refunded"]
    assert len(ledger.rows("refunds")) == 1


def test_undo_of_unknown_record_raises(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    with pytest.raises(RecordNotFound, match="no charge 'ch_missing'"):
        ledger.refund_charge("k", "ch_missing")
    with pytest.raises(RecordNotFound, match="no reservation"):
        ledger.release_reservation("k", "res_missing")
    assert ledger.rows("refunds") == []


def test_stock_is_checked_for_new_reservations_only(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    first = ledger.record_reservation("a", sku="LAMP-2", quantity=2, unit_price_cents=1, stock=3)
    with pytest.raises(OutOfStock, match="only 1 of 'LAMP-2' left; asked for 2"):
        ledger.record_reservation("b", sku="LAMP-2", quantity=2, unit_price_cents=1, stock=3)
    # A retry of the reservation that succeeded is not a new demand on stock.
    assert (
        ledger.record_reservation("a", sku="LAMP-2", quantity=2, unit_price_cents=1, stock=0)
        == first
    )


def test_payment_link_is_attached_once(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    invoice = WRITES["invoices"](ledger, "k")
    assert (invoice.status, invoice.pay_url) == ("pending", None)
    linked = ledger.attach_payment_link(invoice.id, "in_1", "https://pay/1")
    assert (linked.status, linked.pay_url, linked.provider_ref) == ("open", "https://pay/1", "in_1")
    assert ledger.attach_payment_link(invoice.id, "in_2", "https://pay/2") == linked


def test_dump_lists_every_table_with_decoded_json(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    ledger = ledger_for(settings)
    assert ledger_for(settings) is ledger
    assert ledger.path == (tmp_path / "ledger.sqlite").resolve()
    for table, write in WRITES.items():
        write(ledger, f"k-{table}")
    dump = ledger_tables(settings)
    assert list(dump) == list(TABLES)
    assert {t for t, rows in dump.items() if rows} == set(WRITES)
    assert dump["reports"][0]["sources"] == ["doc-001"]
    assert dump["invoices"][0]["amount_cents"] == 12345
    with pytest.raises(LedgerError, match="unknown ledger table 'nope'"):
        ledger.rows("nope")
