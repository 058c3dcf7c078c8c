"""Purchase goal: reserve stock, charge the card (a human approves), ship, as a saga.

Each step is a ledger write keyed by the tool call's idempotency key. Reserving and
charging have compensations (`release_reservation`, `refund_charge`): when a later step
fails, the workflow runs them newest-first and tells the user what was undone. They are
the saga's alone (`model_visible=False`): no model is offered them, and they only touch
records of their own conversation. The charge is for the reservation's amount, read
from the ledger; a model only names the reservation (and must state its amount, which
is checked), so the approver sees what is charged.

Shipping always fails for the demo SKU `FRAGILE-1` and for `ONWARD_PURCHASE_FAIL_SKU`,
so the saga can be watched end to end.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from pydantic.config import JsonValue

from onward.agent.specs import ExampleTurn, RetrySpec
from onward.config import get_settings
from onward.examples.ledger import ledger_for
from onward.examples.settings import example_settings
from onward.exceptions import (
    ChargeRefused,
    OutOfStock,
    RecordNotFound,
    ShipmentFailed,
    ToolArgumentsError,
    ToolRefused,
    WrongAmount,
)
from onward.goals.base import Goal
from onward.tools import ToolContext, tool

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
_SKU_CHOICES: list[JsonValue] = [
    {"const": sku, "title": name} for sku, (name, *_) in CATALOG.items()
]
# Stripe-style test tokens; a real integration would get these from the card form.
_TEST_CARDS = {"tok_visa": "4242", "tok_mastercard": "4444", "tok_amex": "8431"}
DECLINED_TOKEN = "tok_chargeDeclined"


Sku = Annotated[
    str,
    Field(description="Catalog SKU, e.g. `MUG-1`.", json_schema_extra={"oneOf": _SKU_CHOICES}),
]
Quantity = Annotated[int, Field(ge=1, le=100, description="Number of units.")]
ReservationId = Annotated[str, Field(min_length=1, description="From `reserve_inventory`.")]


@tool(compensation="release_reservation", timeout_s=15, follow_ups=["charge_card"])
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
            conversation_id=ctx.conversation_id,
        )
    except OutOfStock as exc:
        # Retrying cannot create stock: report it to the model at once.
        raise ToolRefused(str(exc)) from exc
    return {
        "reservation_id": reservation.id,
        "sku": reservation.sku,
        "product": name,
        "quantity": reservation.quantity,
        "unit_price_usd": reservation.unit_price_cents / 100,
        "amount_usd": reservation.unit_price_cents * reservation.quantity / 100,
        "status": reservation.status,
    }


@tool(
    approval="confirm",
    compensation="refund_charge",
    timeout_s=30,
    follow_ups=["create_shipment"],
)
def charge_card(
    reservation_id: ReservationId,
    amount_usd: Annotated[
        float,
        Field(
            gt=0,
            le=10_000,
            description="The reservation's amount in US dollars (checked against it).",
        ),
    ],
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
    """Charge the customer's card for a reservation (a human approves first).

    The amount charged is the reservation's; a different `amount_usd` is refused.
    Returns `charge_id`.
    """
    if card_token == DECLINED_TOKEN:
        raise ToolRefused("the card was declined; ask for another card")
    last4 = _TEST_CARDS.get(card_token) or (
        card_token[-4:] if card_token[-4:].isdigit() else "0000"
    )
    try:
        charge = ledger_for(get_settings()).record_charge(
            ctx.idempotency_key,
            reservation_id=reservation_id,
            card_last4=last4,
            conversation_id=ctx.conversation_id,
            expected_amount_cents=round(amount_usd * 100),
        )
    except (RecordNotFound, WrongAmount) as exc:
        raise ToolArgumentsError(str(exc)) from exc
    except ChargeRefused as exc:
        raise ToolRefused(str(exc)) from exc
    return {
        "charge_id": charge.id,
        "reservation_id": charge.reservation_id,
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
    fail_sku = example_settings().purchase_fail_sku
    if normalized == DEMO_FAIL_SKU or (fail_sku and normalized == fail_sku.strip().upper()):
        raise ShipmentFailed(f"the carrier cannot ship {normalized} to {address!r}")
    shipment = ledger_for(get_settings()).record_shipment(
        ctx.idempotency_key,
        sku=normalized,
        quantity=quantity,
        address=address,
        conversation_id=ctx.conversation_id,
    )
    return {
        "shipment_id": shipment.id,
        "tracking_number": shipment.tracking_number,
        "status": shipment.status,
    }


@tool(timeout_s=15, model_visible=False)
def release_reservation(reservation_id: ReservationId, ctx: ToolContext) -> dict[str, Any]:
    """Release a reservation so the units are available again (undoes reserve_inventory).

    Run by the saga only, and only for this conversation's reservations.
    """
    try:
        release = ledger_for(get_settings()).release_reservation(
            ctx.idempotency_key, reservation_id, conversation_id=ctx.conversation_id
        )
    except RecordNotFound as exc:
        raise ToolArgumentsError(str(exc)) from exc
    return {
        "reservation_id": release.reservation_id,
        "release_id": release.id,
        "status": "released",
    }


@tool(timeout_s=30, model_visible=False)
def refund_charge(
    charge_id: Annotated[str, Field(min_length=1, description="From `charge_card`.")],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Refund a charge in full (undoes charge_card).

    Run by the saga only, and only for this conversation's charges.
    """
    try:
        refund = ledger_for(get_settings()).refund_charge(
            ctx.idempotency_key, charge_id, conversation_id=ctx.conversation_id
        )
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
        "1. Learn the product, the quantity, a card token (e.g. `tok_visa`) and the "
        "delivery address; ask for whatever is missing. Never accept a raw card number.\n"
        "2. Call `reserve_inventory`, then `charge_card` with the reservation's id and "
        "`amount_usd` (a human approves every charge), then `create_shipment`, one step "
        "at a time.\n"
        "3. If a step fails, the system undoes the earlier steps by itself (releases the "
        "reservation, refunds the charge) and adds a notice: tell the user what failed "
        "and what was undone.\n"
        "4. Finish with the order summary and the tracking number."
    ),
    tools=[reserve_inventory, charge_card, create_shipment, release_reservation, refund_charge],
    starter_prompt="What would you like to buy? Our catalog: "
    + ", ".join(f"{name} ({sku})" for sku, (name, *_) in CATALOG.items())
    + ".",
    examples=[
        ExampleTurn(
            user="Two MUG-1 to 12 Elm St, Springfield; pay with tok_visa.",
            assistant="(calls reserve_inventory sku=MUG-1 quantity=2, then charge_card with "
            "its reservation_id, amount_usd=36.0 and card_token=tok_visa, then "
            "create_shipment)",
        ),
    ],
    saga=True,
)
