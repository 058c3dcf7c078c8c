"""The ledger writes each side effect once per idempotency key and reads it back."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from onward.config import Settings
from onward.examples.ledger import TABLES, Charge, Ledger, ledger_for, ledger_tables
from onward.examples.ledger_keys import load_or_create_key, write_key
from onward.exceptions import ChargeRefused, LedgerError, OutOfStock, RecordNotFound, WrongAmount


def charge(ledger: Ledger, key: str, amount_cents: int = 3600) -> Charge:
    """A charge needs a held reservation of the same conversation: make one, charge it."""
    owner = key.rpartition(":")[0] or "conv"
    held = ledger.record_reservation(
        f"{key}-hold",
        sku="MUG-1",
        quantity=1,
        unit_price_cents=amount_cents,
        stock=10_000,
        conversation_id=owner,
    )
    return ledger.record_charge(
        key, reservation_id=held.id, card_last4="4242", conversation_id=owner
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
    "charges": lambda lg, k: charge(lg, k),
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
    held = ledger.record_reservation(
        "conv:r", sku="MUG-1", quantity=1, unit_price_cents=100, stock=5
    )

    def attempt(_: int) -> Charge:
        return ledger.record_charge(
            "conv:k", reservation_id=held.id, card_last4="4242", conversation_id="conv"
        )

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
    held = ledger.record_reservation(
        "conv:r", sku="MUG-1", quantity=3, unit_price_cents=1800, stock=3
    )
    first = ledger.release_reservation("conv:undo-1", held.id, conversation_id="conv")
    again = ledger.release_reservation("conv:undo-2", held.id, conversation_id="conv")
    assert again == first
    [row] = ledger.rows("reservations")
    assert row["status"] == "released"
    assert row["released_at"] == first.created_at
    assert len(ledger.rows("releases")) == 1
    # Released units are available again.
    ledger.record_reservation("r2", sku="MUG-1", quantity=3, unit_price_cents=1800, stock=3)


def test_refund_is_once_per_charge_and_copies_the_amount(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    charged = charge(ledger, "conv:c", amount_cents=7500)
    refund = ledger.refund_charge("conv:undo-c", charged.id, conversation_id="conv")
    assert refund.amount_cents == 7500
    assert ledger.refund_charge("conv:undo-c-again", charged.id, conversation_id="conv") == refund
    assert [r["status"] for r in ledger.rows("charges")] == ["refunded"]
    assert len(ledger.rows("refunds")) == 1


def test_undo_of_unknown_record_raises(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    with pytest.raises(RecordNotFound, match="no charge 'ch_missing'"):
        ledger.refund_charge("c:k", "ch_missing", conversation_id="c")
    with pytest.raises(RecordNotFound, match="no reservation"):
        ledger.release_reservation("c:k", "res_missing", conversation_id="c")
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


# ------------------------------------------------------------------ ownership (#17.4)


def test_an_undo_only_touches_its_own_conversations_records(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    theirs = charge(ledger, "victim:p2", amount_cents=7500)
    held = ledger.rows("reservations")[0]["id"]
    # Another conversation that learned the ids gets "not found", and nothing changes.
    with pytest.raises(RecordNotFound, match="in this conversation"):
        ledger.refund_charge("attacker:undo", theirs.id, conversation_id="attacker")
    with pytest.raises(RecordNotFound, match="in this conversation"):
        ledger.release_reservation("attacker:undo", held, conversation_id="attacker")
    # A conversation whose id is a prefix of the owner's is no owner either.
    with pytest.raises(RecordNotFound):
        ledger.refund_charge("victi:undo", theirs.id, conversation_id="victi")
    assert ledger.rows("refunds") == [] and ledger.rows("releases") == []
    assert [r["status"] for r in ledger.rows("charges")] == ["captured"]
    refund = ledger.refund_charge("victim:undo-p2", theirs.id, conversation_id="victim")
    assert (refund.conversation_id, refund.amount_cents) == ("victim", 7500)


def test_a_charge_is_the_reservations_amount_once(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    held = ledger.record_reservation(
        "conv:p1", sku="MUG-1", quantity=2, unit_price_cents=1800, stock=9
    )
    with pytest.raises(WrongAmount, match=r"amount is 36\.00, not 1\.00"):
        ledger.record_charge(
            "conv:p2",
            reservation_id=held.id,
            card_last4="4242",
            conversation_id="conv",
            expected_amount_cents=100,
        )
    with pytest.raises(RecordNotFound):
        ledger.record_charge(
            "other:p2", reservation_id=held.id, card_last4="4242", conversation_id="other"
        )
    first = ledger.record_charge(
        "conv:p2", reservation_id=held.id, card_last4="4242", conversation_id="conv"
    )
    assert (first.amount_cents, first.reservation_id) == (3600, held.id)
    # A second charge call for the same reservation is the first charge, not another.
    again = ledger.record_charge(
        "conv:p3", reservation_id=held.id, card_last4="4444", conversation_id="conv"
    )
    assert again == first
    assert len(ledger.rows("charges")) == 1
    ledger.release_reservation("conv:undo-p1", held.id, conversation_id="conv")
    other = ledger.record_reservation(
        "conv:p4", sku="MUG-1", quantity=1, unit_price_cents=1800, stock=9
    )
    ledger.release_reservation("conv:undo-p4", other.id, conversation_id="conv")
    with pytest.raises(ChargeRefused, match="was released"):
        ledger.record_charge(
            "conv:p5", reservation_id=other.id, card_last4="4242", conversation_id="conv"
        )


def test_rows_of_an_older_file_get_the_new_columns_and_keep_working(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with sqlite3.connect(path) as conn:
        # The tables as the first release created them (no owner, no reservation).
        conn.execute(
            "CREATE TABLE reservations (id TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE, "
            "created_at TEXT NOT NULL, sku TEXT NOT NULL, quantity INTEGER NOT NULL, "
            "unit_price_cents INTEGER NOT NULL, status TEXT NOT NULL, released_at TEXT)"
        )
        conn.execute(
            "INSERT INTO reservations VALUES ('res_old', 'old-conv:p1', 't', 'MUG-1', 1, 1800, "
            "'held', NULL)"
        )
    ledger = Ledger.open(path)
    [row] = ledger.rows("reservations")
    assert row["conversation_id"] is None
    # Its owner is still known from its key: that conversation may undo it, no other.
    with pytest.raises(RecordNotFound):
        ledger.release_reservation("x:undo", "res_old", conversation_id="x")
    release = ledger.release_reservation("old-conv:undo", "res_old", conversation_id="old-conv")
    assert release.reservation_id == "res_old"


# ----------------------------------------------------------------- record ids (#17.5)


def test_record_ids_are_not_derivable_from_the_key(tmp_path: Path) -> None:
    key = "conv-pay:c1"
    first = WRITES["invoices"](Ledger.open(tmp_path / "a" / "ledger.sqlite"), key)
    other = WRITES["invoices"](Ledger.open(tmp_path / "b" / "ledger.sqlite"), key)
    # What anyone could compute from the conversation and call ids:
    guessable = {f"inv_{hashlib.sha256(key.encode()).hexdigest()[:n]}" for n in (16, 32, 64)}
    assert first.id not in guessable and other.id not in guessable
    # A different data dir has a different key, so the same call gets another id ...
    assert first.id != other.id
    assert re.fullmatch(r"inv_[0-9a-f]{32}", first.id)
    # ... while a retry in the same one finds the same record.
    again = WRITES["invoices"](Ledger.open(tmp_path / "a" / "ledger.sqlite"), key)
    assert again == first
    key_file = tmp_path / "a" / "ledger.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_bytes()) == 32


def test_the_key_is_created_once_when_processes_race(tmp_path: Path) -> None:
    path = tmp_path / "ledger.key"
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(load_or_create_key, [path] * 16))
    assert len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.key"]  # no stray temp files


def test_a_bad_key_file_is_reported_and_a_seeded_key_gives_the_same_ids(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "ledger.key").write_bytes(b"short")
    with pytest.raises(LedgerError, match="does not hold a ledger key"):
        WRITES["tickets"](Ledger.open(tmp_path / "bad" / "ledger.sqlite"), "c:1")
    seed = bytes(range(32))
    for name in ("one", "two"):
        write_key(tmp_path / name / "ledger.key", seed)
    one = WRITES["tickets"](Ledger.open(tmp_path / "one" / "ledger.sqlite"), "c:1")
    two = WRITES["tickets"](Ledger.open(tmp_path / "two" / "ledger.sqlite"), "c:1")
    assert one.id == two.id
