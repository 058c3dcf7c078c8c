"""Purchase goal: reserve stock, charge the card, ship, as a saga.

Each step is a ledger write keyed by the tool call's idempotency key. Reserving and
charging have compensations (`release_reservation`, `refund_charge`): when a later step
fails, the workflow runs them newest-first and tells the user what was undone. The
compensations find `reservation_id` / `charge_id` by name in the undone call's result.

Shipping always fails for the demo SKU `FRAGILE-1` and for `ONWARD_PURCHASE_FAIL_SKU`,
so the saga can be watched end to end.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from pydantic.config import JsonValue

from onward.agent.specs import ExampleTurn, RetrySpec
from onward.config import get_settings
from onward.exceptions import OnwardRuntimeError
from onward.goals.base import Goal
from onward.store.ledger import OutOfStock, RecordNotFound, ledger_for
from onward.tools import ToolContext, tool
from onward.tools.decorator import ToolArgumentsError

DEMO_FAIL_SKU = "FRAGILE-1"
"""Shipping this SKU always fails (saga demonstration)."""

# sku -> (name, unit price in cents, units in stock)
CATALOG: dict[str, tuple[str, int, int]] = {
    "MUG-1": ("Enamel camp mug", 1800, 40),
    "TEE-M": ("Organic cotton tee, size M", 2400, 25),
    "BOOK-7": ("Field guide to North American birds", 3250, 12),
    "LAMP-2": ("Brass desk lamp", 5900, 8),
    DEMO_FAIL_SKU: ("Hand-blown glass vase (cannot be shipped: demo of the saga)", 7500, 5),
}
_SKU_EXAMPLES: list[JsonValue] = [*CATALOG]
# Stripe-style test tokens; a real integration would get these from the card form.
_TEST_CARDS = {"tok_visa": "4242", "tok_mastercard": "4444", "tok_amex": "8431"}
DECLINED_TOKEN = "tok_chargeDeclined"


class ShipmentFailed(OnwardRuntimeError):
    """The carrier refused the shipment."""


Sku = Annotated[
    str,
    Field(description="Catalog SKU, e.g. `MUG-1`.", json_schema_extra={"examples": _SKU_EXAMPLES}),
]
Quantity = Annotated[int, Field(ge=1, le=100, description="Number of units.")]


@tool(compensation="release_reservation", timeout_s=15)
def reserve_inventory(sku: Sku, quantity: Quantity, ctx: ToolContext) -> dict[str, Any]:
    """Reserve units of a product; returns `reservation_id` and the `amount_usd` to charge."""
    item = CATALOG.get(sku.strip().upper())
    if item is None:
        raise ToolArgumentsError(f"unknown SKU {sku!r}; the catalog has: {', '.join(CATALOG)}")
    name, unit_cents, stock = item
    try:
        reservation = ledger_for(get_settings()).record_reservation(
            ctx.idempotency_key,
            sku=sku.strip().upper(),
            quantity=quantity,
            unit_price_cents=unit_cents,
            stock=stock,
        )
    except OutOfStock as exc:
        # Retrying cannot create stock: report it to the model at once.
        raise ToolArgumentsError(str(exc)) from exc
    return {
        "reservation_id": reservation.id,
        "sku": reservation.sku,
        "product": name,
        "quantity": reservation.quantity,
        "unit_price_usd": reservation.unit_price_cents / 100,
        "amount_usd": reservation.unit_price_cents * reservation.quantity / 100,
        "status": reservation.status,
    }


@tool(compensation="refund_charge", timeout_s=30)
def charge_card(
    amount_usd: Annotated[float, Field(gt=0, le=10_000, description="Amount to charge.")],
    card_token: Annotated[
        str,
        Field(
            pattern=r"^tok_\w+$",
            description="Payment token from the card form, e.g. `tok_visa`; never a card number.",
            json_schema_extra={"examples": [*_TEST_CARDS]},
        ),
    ],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Charge the customer's card; returns `charge_id`."""
    if card_token == DECLINED_TOKEN:
        raise ToolArgumentsError("the card was declined; ask for another card")
    last4 = _TEST_CARDS.get(card_token) or (
        card_token[-4:] if card_token[-4:].isdigit() else "0000"
    )
    charge = ledger_for(get_settings()).record_charge(
        ctx.idempotency_key, amount_cents=round(amount_usd * 100), card_last4=last4
    )
    return {
        "charge_id": charge.id,
        "amount_usd": charge.amount_cents / 100,
        "card_last4": charge.card_last4,
        "status": charge.status,
    }


@tool(timeout_s=30, retry=RetrySpec(max_attempts=2, initial_interval_s=0.1))
def create_shipment(
    sku: Sku,
    quantity: Quantity,
    address: Annotated[str, Field(min_length=5, description="Full delivery address.")],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Ship the reserved units to the address; returns `shipment_id` and tracking number."""
    normalized = sku.strip().upper()
    fail_sku = get_settings().purchase_fail_sku
    if normalized == DEMO_FAIL_SKU or (fail_sku and normalized == fail_sku.strip().upper()):
        raise ShipmentFailed(f"the carrier cannot ship {normalized} to {address!r}")
    shipment = ledger_for(get_settings()).record_shipment(
        ctx.idempotency_key, sku=normalized, quantity=quantity, address=address
    )
    return {
        "shipment_id": shipment.id,
        "tracking_number": shipment.tracking_number,
        "status": shipment.status,
    }


@tool(timeout_s=15)
def release_reservation(
    reservation_id: Annotated[str, Field(description="From `reserve_inventory`.")],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Release a reservation so the units are available again (undoes reserve_inventory)."""
    try:
        release = ledger_for(get_settings()).release_reservation(
            ctx.idempotency_key, reservation_id
        )
    except RecordNotFound as exc:
        raise ToolArgumentsError(str(exc)) from exc
    return {
        "reservation_id": release.reservation_id,
        "release_id": release.id,
        "status": "released",
    }


@tool(timeout_s=30)
def refund_charge(
    charge_id: Annotated[str, Field(description="From `charge_card`.")],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Refund a charge in full (undoes charge_card)."""
    try:
        refund = ledger_for(get_settings()).refund_charge(ctx.idempotency_key, charge_id)
    except RecordNotFound as exc:
        raise ToolArgumentsError(str(exc)) from exc
    return {
        "charge_id": refund.charge_id,
        "refund_id": refund.id,
        "amount_usd": refund.amount_cents / 100,
        "status": "refunded",
    }


PURCHASE = Goal(
    name="purchase",
    description="Buy a product: reserve it, charge the card, ship it (undone if a step fails).",
    instructions=(
        "You sell products from a small catalog: "
        + ", ".join(
            f"{sku} ({name}, ${cents / 100:.2f})" for sku, (name, cents, _) in CATALOG.items()
        )
        + ".\n"
        "1. Learn the SKU, the quantity, a card token (e.g. `tok_visa`) and the delivery "
        "address; ask for whatever is missing. Never accept a raw card number.\n"
        "2. Call `reserve_inventory`, then `charge_card` with the reservation's "
        "`amount_usd`, then `create_shipment`, one step at a time.\n"
        "3. If a step fails, the system undoes the earlier steps by itself (releases the "
        "reservation, refunds the charge) and adds a notice: tell the user what failed "
        "and what was undone. Do not call `release_reservation` or `refund_charge` "
        "yourself unless the user asks to cancel a completed order.\n"
        "4. Finish with the order summary and the tracking number."
    ),
    tools=[reserve_inventory, charge_card, create_shipment, release_reservation, refund_charge],
    starter_prompt="What would you like to buy? Our catalog: " + ", ".join(CATALOG) + ".",
    examples=[
        ExampleTurn(
            user="Two MUG-1 to 12 Elm St, Springfield; pay with tok_visa.",
            assistant="(calls reserve_inventory sku=MUG-1 quantity=2, then charge_card with "
            "amount_usd=36.0 and card_token=tok_visa, then create_shipment)",
        ),
    ],
    saga=True,
)
