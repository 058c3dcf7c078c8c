"""The purchase goal's ledger writes: reservations, charges and their undoing.

A charge is for its reservation's amount, read in the same transaction; an undo only
finds records of its own conversation (another's is "not found").
"""

from __future__ import annotations

import dataclasses

from onward.examples.ledger_core import OWNED, LedgerCore, R, as_record
from onward.examples.ledger_records import (
    RECORD_FIELDS,
    TABLE_OF,
    UNDOES,
    Charge,
    Refund,
    Release,
    Reservation,
)
from onward.exceptions import ChargeRefused, OutOfStock, RecordNotFound, WrongAmount


class OrderBook(LedgerCore):
    """Reservations and charges, and their undoing."""

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
                return as_record(Reservation, existing)
            held: int = conn.execute(
                "SELECT COALESCE(SUM(quantity), 0) FROM reservations "
                "WHERE sku = ? AND status = 'held'",
                (sku,),
            ).fetchone()[0]
            if held + quantity > stock:
                raise OutOfStock(f"only {stock - held} of {sku!r} left; asked for {quantity}")
            return as_record(Reservation, self._insert_once(conn, "reservations", values))

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
                return as_record(Charge, existing)
            reservation = conn.execute(
                f"SELECT * FROM reservations WHERE id = :id AND {OWNED}",
                {"id": reservation_id, "owner": conversation_id},
            ).fetchone()
            if reservation is None:
                raise RecordNotFound(f"no reservation {reservation_id!r} in this conversation")
            earlier = conn.execute(
                "SELECT * FROM charges WHERE reservation_id = ?", (reservation_id,)
            ).fetchone()
            if earlier is not None:
                return as_record(Charge, earlier)
            if reservation["status"] != "held":
                raise ChargeRefused(f"reservation {reservation_id!r} was released")
            amount = int(reservation["unit_price_cents"]) * int(reservation["quantity"])
            if expected_amount_cents is not None and expected_amount_cents != amount:
                raise WrongAmount(
                    f"the reservation's amount is {amount / 100:.2f}, "
                    f"not {expected_amount_cents / 100:.2f}"
                )
            return as_record(
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
        self, undo: type[R], idempotency_key: str, target_id: str, conversation_id: str
    ) -> R:
        table, ref, done, stamp = UNDOES[undo]
        with self._tx() as conn:
            # Another conversation's record is "not found": an undo never learns more.
            target = conn.execute(
                f"SELECT * FROM {table} WHERE id = :id AND {OWNED}",
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
            return as_record(undo, row.fetchone())
