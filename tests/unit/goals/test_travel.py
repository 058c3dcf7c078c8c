"""Travel tools: bundled events, deterministic flights, invoices in the ledger/Stripe."""

from __future__ import annotations

import sys
import types
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from onward.config import get_settings
from onward.exceptions import UserError
from onward.goals.travel import (
    AIRPORTS,
    MONTHS,
    create_invoice,
    find_events,
    load_events,
    search_flights,
)
from onward.store.ledger import Ledger
from onward.tools.decorator import ToolArgumentsError
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


async def test_find_events_feeds_search_flights_by_name() -> None:
    found = await find_events.invoke({"city": "chicago", "month": "May"})
    assert found["destination"] == "Chicago"
    assert [e["name"] for e in found["events"]] == ["Architecture River Talks"]
    assert date.fromisoformat(found["date"]).month == 5
    assert date.fromisoformat(found["date"]) >= date.today()
    # The next tool takes its arguments by name from this result.
    args = {k: v for k, v in found.items() if k in search_flights.args_model.model_fields}
    assert set(args) == {"destination", "date"}
    flights = await search_flights.invoke({**args, "origin": "Denver"})
    assert flights["destination"] == "Chicago"
    assert flights["date"] == found["date"]


def test_find_events_explains_empty_results() -> None:
    none_that_month = find_events("Chicago", "March")
    assert none_that_month["events"] == []
    assert "try: February, May, August, November" in none_that_month["note"]
    assert date.fromisoformat(none_that_month["date"]).month == 3
    unknown = find_events("Paris", "June")
    assert unknown["events"] == []
    assert "Cities with events:" in unknown["note"]


def test_flights_are_deterministic_and_the_cheapest_is_on_top() -> None:
    day = date(2030, 5, 16)
    first = search_flights("NYC", "Chicago", day)
    assert search_flights("New York", "chicago", day) == first
    assert search_flights("New York", "Chicago", date(2030, 5, 17))["flights"] != first["flights"]
    prices = [f["price_usd"] for f in first["flights"]]
    assert 3 <= len(prices) <= 5
    assert first["price_usd"] == min(prices) == first["amount_usd"]
    assert first["flight_number"] in {f["flight_number"] for f in first["flights"]}
    assert first["description"].startswith(f"Flight {first['flight_number']} New York (JFK)")
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


INVOICE_ARGS = {
    "customer_email": "ana@example.com",
    "amount_usd": 160.3,
    "description": "Flight MJ2203 New York (JFK) to Chicago (ORD) on 2030-05-16",
}


async def test_invoice_is_written_once_with_a_local_pay_link(
    ledger: Ledger, make_ctx: ContextFactory
) -> None:
    assert create_invoice.approval == "confirm"
    first = await create_invoice.invoke(INVOICE_ARGS, make_ctx("c9"))
    retry = await create_invoice.invoke(INVOICE_ARGS, make_ctx("c9", attempt=2))
    assert retry == first
    assert first["pay_url"] == f"http://127.0.0.1:8000/pay/{first['invoice_id']}"
    assert first["amount_usd"] == 160.3
    assert first["provider"] == "local"
    [row] = ledger.rows("invoices")
    assert row["id"] == first["invoice_id"]
    assert row["amount_cents"] == 16030
    assert row["idempotency_key"] == "conv-unit:c9"


async def test_invoice_rejects_bad_email_before_writing(
    ledger: Ledger, make_ctx: ContextFactory
) -> None:
    with pytest.raises(ToolArgumentsError, match="customer_email"):
        await create_invoice.invoke({**INVOICE_ARGS, "customer_email": "nope"}, make_ctx())
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
    get_settings.cache_clear()
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
    assert (item["amount"], item["currency"], item["invoice"]) == (16030, "usd", "in_1")
    [row] = Ledger.open(data_dir / "ledger.sqlite").rows("invoices")
    assert row["provider_ref"] == "in_1"


async def test_stripe_key_without_the_package_says_what_to_install(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, make_ctx: ContextFactory
) -> None:
    monkeypatch.setitem(sys.modules, "stripe", None)  # makes `import stripe` fail
    monkeypatch.setenv("ONWARD_STRIPE_API_KEY", "sk_test_123")
    get_settings.cache_clear()
    with pytest.raises(UserError, match="pip install stripe"):
        await create_invoice.invoke(INVOICE_ARGS, make_ctx())
