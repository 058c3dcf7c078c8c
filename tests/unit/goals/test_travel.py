"""Travel tools: bundled events, deterministic flights, invoices in the ledger/Stripe."""

from __future__ import annotations

import sys
import types
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from onward.examples.ledger import Ledger
from onward.examples.travel import (
    AIRPORTS,
    EVENT_CITIES,
    MONTHS,
    create_invoice,
    find_events,
    load_events,
    search_flights,
)
from onward.exceptions import ToolArgumentsError, UserError
from tests.unit.goals.conftest import ContextFactory


def test_bundled_events_cover_the_continent_and_the_year() -> None:
    events = load_events()
    assert len(events) >= 40
    assert len({e["city"] for e in events}) >= 10
    assert {e["month"] for e in events} == set(MONTHS)
    assert {e["country"] for e in events} == {"US", "CA", "MX"}
    assert len({e["id"] for e in events}) == len(events)
    # Every event city can be flown to.
    assert {e["city"] for e in events} <= set(AIRPORTS)


def test_schema_lists_cities_as_examples_and_months_as_enum() -> None:
    params = find_events.spec().parameters["properties"]
    assert "Chicago" in params["city"]["examples"]
    assert params["month"]["enum"] == list(MONTHS)
    flights = search_flights.spec().parameters["properties"]
    assert "Los Angeles" in flights["origin"]["examples"]
    assert flights["date"]["format"] == "date"


async def test_find_events_lists_events_with_what_search_flights_needs() -> None:
    found = await find_events.invoke({"city": "chicago", "month": "May"})
    assert (found["city"], found["month"]) == ("Chicago", "May")
    [event] = found["events"]
    assert event["name"] == "Architecture River Talks"
    assert (event["city"], event["venue"]) == ("Chicago", "Riverwalk")
    day = date.fromisoformat(event["date"])
    assert day.month == 5 and day >= date.today()
    # Nothing shaped for one model: no copies of fields under the next tool's names.
    assert not {"destination", "date", "suggested_next_tool"} & set(found)
    assert find_events.follow_ups == ("search_flights",)
    flights = await search_flights.invoke(
        {"origin": "Denver", "destination": event["city"], "date": event["date"]}
    )
    assert (flights["destination"], flights["date"]) == ("Chicago", event["date"])


def test_find_events_explains_empty_results_with_typed_alternatives() -> None:
    none_that_month = find_events("Chicago", "March")
    assert none_that_month["events"] == []
    assert none_that_month["alternatives"] == {"month": ["February", "May", "August", "November"]}
    assert "try: February, May, August, November" in none_that_month["note"]
    unknown = find_events("Paris", "June")
    assert unknown["events"] == []
    assert unknown["alternatives"]["city"] == EVENT_CITIES
    assert "Cities with events:" in unknown["note"]


def test_flights_are_deterministic_and_listed_in_departure_order() -> None:
    day = date(2030, 5, 16)
    first = search_flights("NYC", "Chicago", day)
    assert search_flights("New York", "chicago", day) == first
    assert search_flights("New York", "Chicago", date(2030, 5, 17))["flights"] != first["flights"]
    prices = [f["price_usd"] for f in first["flights"]]
    assert 3 <= len(prices) <= 5
    times = [f["departure_time"] for f in first["flights"]]
    assert times == sorted(times)
    assert set(first) == {"origin", "destination", "date", "flights"}
    assert {"flight_number", "airline", "departure_time", "arrival_time", "price_usd"} <= set(
        first["flights"][0]
    )
    # Longer routes cost more on average.
    far = search_flights("Miami", "Vancouver", day)
    assert sum(f["price_usd"] for f in far["flights"]) / len(far["flights"]) > sum(prices) / len(
        prices
    )


async def test_search_flights_rejects_unknown_or_identical_cities() -> None:
    with pytest.raises(ToolArgumentsError, match="no airport known for 'Atlantis'"):
        await search_flights.invoke(
            {"origin": "Atlantis", "destination": "Boston", "date": "2030-01-02"}
        )
    with pytest.raises(ToolArgumentsError, match="same city"):
        await search_flights.invoke(
            {"origin": "BOS", "destination": "Boston", "date": "2030-01-02"}
        )
    with pytest.raises(ToolArgumentsError, match="date"):
        await search_flights.invoke({"origin": "Denver", "destination": "Boston", "date": "soon"})


FLIGHT_DAY = date(2030, 5, 16)
CHOSEN = search_flights("New York", "Chicago", FLIGHT_DAY)["flights"][1]
INVOICE_ARGS = {
    "customer_email": "ana@example.com",
    "flight_number": CHOSEN["flight_number"],
    "origin": "New York",
    "destination": "Chicago",
    "date": FLIGHT_DAY.isoformat(),
}
PRICE_CENTS = round(CHOSEN["price_usd"] * 100)


async def test_invoice_is_written_once_with_a_local_pay_link(
    ledger: Ledger, make_ctx: ContextFactory
) -> None:
    assert create_invoice.approval == "confirm"
    first = await create_invoice.invoke(INVOICE_ARGS, make_ctx("c9"))
    retry = await create_invoice.invoke(INVOICE_ARGS, make_ctx("c9", attempt=2))
    assert retry == first
    assert first["pay_url"] == f"http://127.0.0.1:8000/pay/{first['invoice_id']}"
    # The price is the schedule's, and the description says which flight it is.
    assert first["amount_usd"] == CHOSEN["price_usd"]
    assert first["description"].startswith(f"Flight {CHOSEN['flight_number']} (")
    assert "New York (JFK) to Chicago (ORD) on 2030-05-16" in first["description"]
    assert first["provider"] == "local"
    [row] = ledger.rows("invoices")
    assert row["id"] == first["invoice_id"]
    assert row["amount_cents"] == PRICE_CENTS
    assert (row["idempotency_key"], row["conversation_id"]) == ("conv-unit:c9", "conv-unit")


async def test_invoice_rejects_bad_email_before_writing(
    ledger: Ledger, make_ctx: ContextFactory
) -> None:
    with pytest.raises(ToolArgumentsError, match="customer_email"):
        await create_invoice.invoke({**INVOICE_ARGS, "customer_email": "nope"}, make_ctx())
    with pytest.raises(ToolArgumentsError, match="no flight 'XX1' from New York to Chicago"):
        await create_invoice.invoke({**INVOICE_ARGS, "flight_number": "XX1"}, make_ctx())
    assert ledger.rows("invoices") == []


class FakeStripe:
    """Stands in for the `stripe` package: records requests, returns Stripe-like dicts."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.module = types.ModuleType("stripe")
        for name in ("Customer", "Invoice", "InvoiceItem"):
            setattr(self.module, name, types.SimpleNamespace())
        self.module.Customer.create = self._recorder("customer.create", {"id": "cus_1"})
        self.module.Invoice.create = self._recorder("invoice.create", {"id": "in_1"})
        self.module.InvoiceItem.create = self._recorder("item.create", {"id": "ii_1"})
        finalize = self._recorder(
            "invoice.finalize",
            {"id": "in_1", "hosted_invoice_url": "https://invoice.stripe.com/i/1"},
        )

        def finalize_invoice(invoice_id: str, **kwargs: Any) -> dict[str, Any]:
            return finalize(id=invoice_id, **kwargs)

        self.module.Invoice.finalize_invoice = finalize_invoice

    def _recorder(self, name: str, reply: dict[str, Any]) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.requests.append((name, kwargs))
            return reply

        return call


async def test_invoice_goes_through_stripe_when_a_key_is_set(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, make_ctx: ContextFactory
) -> None:
    fake = FakeStripe()
    monkeypatch.setitem(sys.modules, "stripe", fake.module)
    monkeypatch.setenv("ONWARD_STRIPE_API_KEY", "sk_test_123")
    first = await create_invoice.invoke({**INVOICE_ARGS, "customer_name": "Ana"}, make_ctx("s1"))
    again = await create_invoice.invoke({**INVOICE_ARGS, "customer_name": "Ana"}, make_ctx("s1"))
    assert again == first
    assert first["pay_url"] == "https://invoice.stripe.com/i/1"
    assert first["provider"] == "stripe"
    # One Stripe round only: the retry found the finished invoice in the ledger.
    assert [name for name, _ in fake.requests] == [
        "customer.create",
        "invoice.create",
        "item.create",
        "invoice.finalize",
    ]
    keys = [kw["idempotency_key"] for _, kw in fake.requests]
    assert keys == [f"conv-unit:s1:{s}" for s in ("customer", "invoice", "item", "finalize")]
    assert all(kw["api_key"] == "sk_test_123" for _, kw in fake.requests)
    item = dict(fake.requests)["item.create"]
    assert (item["amount"], item["currency"], item["invoice"]) == (PRICE_CENTS, "usd", "in_1")
    [row] = Ledger.open(data_dir / "ledger.sqlite").rows("invoices")
    assert row["provider_ref"] == "in_1"


async def test_stripe_key_without_the_package_says_what_to_install(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, make_ctx: ContextFactory
) -> None:
    monkeypatch.setitem(sys.modules, "stripe", None)  # makes `import stripe` fail
    monkeypatch.setenv("ONWARD_STRIPE_API_KEY", "sk_test_123")
    with pytest.raises(UserError, match="pip install stripe"):
        await create_invoice.invoke(INVOICE_ARGS, make_ctx())
