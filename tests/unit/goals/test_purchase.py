"""Purchase tools: each step once per key; shipping fails for the demo SKUs."""

from __future__ import annotations

from typing import Any

import pytest

from onward.examples.ledger import Ledger
from onward.examples.purchase import (
    DECLINED_TOKEN,
    DEMO_FAIL_SKU,
    PURCHASE,
    charge_card,
    create_shipment,
    refund_charge,
    release_reservation,
    reserve_inventory,
)
from onward.exceptions import ShipmentFailed, ToolArgumentsError, ToolRefused
from onward.tools import Tool, ToolContext
from tests.unit.goals.conftest import ContextFactory


def by_name(compensation: Tool, args: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """What the tool activity feeds a compensation: the undone call's args + result."""
    pool = {**args, **result}
    return {k: v for k, v in pool.items() if k in compensation.args_model.model_fields}


def test_goal_is_a_saga_with_compensations_and_a_fast_failing_shipment() -> None:
    spec = PURCHASE.spec()
    assert spec.saga
    assert spec.tool("reserve_inventory").compensation == "release_reservation"  # type: ignore[union-attr]
    assert spec.tool("charge_card").compensation == "refund_charge"  # type: ignore[union-attr]
    retry = create_shipment.retry
    assert (retry.max_attempts, retry.initial_interval_s) == (2, 0.1)


def test_money_needs_a_yes_and_the_undo_tools_are_the_sagas_alone() -> None:
    spec = PURCHASE.spec()
    by_name = {t.name: t for t in spec.tools}
    assert by_name["charge_card"].approval == "confirm"
    assert by_name["charge_card"].compensation == "refund_charge"
    assert not by_name["refund_charge"].model_visible
    assert not by_name["release_reservation"].model_visible
    assert all(
        t.model_visible
        for n, t in by_name.items()
        if n not in ("refund_charge", "release_reservation")
    )
    # The model names the reservation; the amount it states is checked, not trusted.
    assert set(by_name["charge_card"].parameters["required"]) == {
        "reservation_id",
        "amount_usd",
        "card_token",
    }
    # Products are titled choices, so a request in words ("two mugs") can be matched.
    sku = by_name["reserve_inventory"].parameters["properties"]["sku"]
    assert {"const": "MUG-1", "title": "Enamel camp mug"} in sku["oneOf"]


async def test_happy_path_writes_each_step_once(ledger: Ledger, make_ctx: ContextFactory) -> None:
    reserve_args = {"sku": "mug-1", "quantity": 2}
    reserved = await reserve_inventory.invoke(reserve_args, make_ctx("p1"))
    assert await reserve_inventory.invoke(reserve_args, make_ctx("p1", attempt=2)) == reserved
    assert (reserved["sku"], reserved["amount_usd"]) == ("MUG-1", 36.0)
    charge_args = {
        "reservation_id": reserved["reservation_id"],
        "amount_usd": reserved["amount_usd"],
        "card_token": "tok_visa",
    }
    charged = await charge_card.invoke(charge_args, make_ctx("p2"))
    assert await charge_card.invoke(charge_args, make_ctx("p2", attempt=3)) == charged
    assert (charged["amount_usd"], charged["card_last4"]) == (36.0, "4242")
    assert charged["reservation_id"] == reserved["reservation_id"]
    ship_args = {"sku": "MUG-1", "quantity": 2, "address": "12 Elm St, Springfield"}
    shipped = await create_shipment.invoke(ship_args, make_ctx("p3"))
    assert await create_shipment.invoke(ship_args, make_ctx("p3", attempt=2)) == shipped
    assert shipped["tracking_number"].startswith("1ZON")
    dump = ledger.dump()
    assert [len(dump[t]) for t in ("reservations", "charges", "shipments")] == [1, 1, 1]
    assert dump["reservations"][0]["status"] == "held"


async def test_compensations_take_their_ids_by_name(
    ledger: Ledger, make_ctx: ContextFactory
) -> None:
    reserve_args = {"sku": "BOOK-7", "quantity": 1}
    reserved = await reserve_inventory.invoke(reserve_args, make_ctx("q1"))
    charge_args = {
        "reservation_id": reserved["reservation_id"],
        "amount_usd": 32.5,
        "card_token": "tok_mastercard",
    }
    charged = await charge_card.invoke(charge_args, make_ctx("q2"))
    undo_charge = by_name(refund_charge, charge_args, charged)
    assert undo_charge == {"charge_id": charged["charge_id"]}
    refunded = await refund_charge.invoke(undo_charge, make_ctx("undo-q2"))
    assert refunded["amount_usd"] == 32.5
    undo_reserve = by_name(release_reservation, reserve_args, reserved)
    released = await release_reservation.invoke(undo_reserve, make_ctx("undo-q1"))
    assert released["reservation_id"] == reserved["reservation_id"]
    dump = ledger.dump()
    assert [r["status"] for r in dump["reservations"]] == ["released"]
    assert [r["status"] for r in dump["charges"]] == ["refunded"]
    assert len(dump["refunds"]) == len(dump["releases"]) == 1


async def test_shipping_fails_for_the_demo_and_configured_skus(
    ledger: Ledger, make_ctx: ContextFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = {"sku": DEMO_FAIL_SKU, "quantity": 1, "address": "1 Glass Lane"}
    with pytest.raises(ShipmentFailed, match="cannot ship FRAGILE-1"):
        await create_shipment.invoke(args, make_ctx())
    monkeypatch.setenv("ONWARD_PURCHASE_FAIL_SKU", "lamp-2")
    with pytest.raises(ShipmentFailed, match="cannot ship LAMP-2"):
        await create_shipment.invoke({**args, "sku": "LAMP-2"}, make_ctx())
    await create_shipment.invoke({**args, "sku": "TEE-M"}, make_ctx())
    assert [r["sku"] for r in ledger.rows("shipments")] == ["TEE-M"]


async def test_business_refusals_are_not_retried(ledger: Ledger, make_ctx: ContextFactory) -> None:
    with pytest.raises(ToolArgumentsError, match="unknown SKU 'NOPE-9'"):
        await reserve_inventory.invoke({"sku": "NOPE-9", "quantity": 1}, make_ctx())
    with pytest.raises(ToolRefused, match="only 8 of 'LAMP-2' left"):
        await reserve_inventory.invoke({"sku": "LAMP-2", "quantity": 9}, make_ctx())
    with pytest.raises(ToolRefused, match="declined"):
        await charge_card.invoke(
            {"reservation_id": "res_x", "amount_usd": 5, "card_token": DECLINED_TOKEN}, make_ctx()
        )
    with pytest.raises(ToolArgumentsError, match="card_token"):
        await charge_card.invoke(
            {"reservation_id": "res_x", "amount_usd": 5, "card_token": "4242424242424242"},
            make_ctx(),
        )
    with pytest.raises(ToolArgumentsError, match="no reservation 'res_x'"):
        await charge_card.invoke(
            {"reservation_id": "res_x", "amount_usd": 5, "card_token": "tok_visa"}, make_ctx()
        )
    with pytest.raises(ToolArgumentsError, match="no charge 'ch_x'"):
        await refund_charge.invoke({"charge_id": "ch_x"}, make_ctx())
    assert all(rows == [] for rows in ledger.dump().values())


async def test_the_charge_is_the_reservations_amount_not_the_callers(
    ledger: Ledger, make_ctx: ContextFactory
) -> None:
    reserved = await reserve_inventory.invoke({"sku": "LAMP-2", "quantity": 1}, make_ctx("l1"))
    args = {"reservation_id": reserved["reservation_id"], "card_token": "tok_visa"}
    with pytest.raises(ToolArgumentsError, match=r"amount is 59\.00, not 0\.01"):
        await charge_card.invoke({**args, "amount_usd": 0.01}, make_ctx("l2"))
    assert ledger.rows("charges") == []
    charged = await charge_card.invoke({**args, "amount_usd": 59.0}, make_ctx("l3"))
    assert ledger.rows("charges")[0]["amount_cents"] == 5900 == round(charged["amount_usd"] * 100)


async def test_an_undo_cannot_reach_another_conversations_records(
    ledger: Ledger, make_ctx: ContextFactory
) -> None:
    reserved = await reserve_inventory.invoke({"sku": "TEE-M", "quantity": 1}, make_ctx("v1"))
    charged = await charge_card.invoke(
        {
            "reservation_id": reserved["reservation_id"],
            "amount_usd": 24.0,
            "card_token": "tok_visa",
        },
        make_ctx("v2"),
    )
    other = ToolContext(conversation_id="conv-attacker", call_id="undo-x", attempt=1)
    with pytest.raises(ToolArgumentsError, match="in this conversation"):
        await refund_charge.invoke({"charge_id": charged["charge_id"]}, other)
    with pytest.raises(ToolArgumentsError, match="in this conversation"):
        await release_reservation.invoke({"reservation_id": reserved["reservation_id"]}, other)
    with pytest.raises(ToolArgumentsError, match="in this conversation"):
        await charge_card.invoke(
            {
                "reservation_id": reserved["reservation_id"],
                "amount_usd": 24.0,
                "card_token": "tok_visa",
            },
            other,
        )
    dump = ledger.dump()
    assert dump["refunds"] == dump["releases"] == []
    assert [r["status"] for r in dump["charges"]] == ["captured"]
    assert [r["conversation_id"] for r in dump["charges"]] == ["conv-unit"]
