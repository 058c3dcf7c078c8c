"""Travel invoices through Stripe, when `ONWARD_STRIPE_API_KEY` is set."""

from __future__ import annotations

import importlib
from typing import Any

from onward.examples.ledger import Invoice
from onward.exceptions import UserError


def stripe_invoice(api_key: str, key: str, invoice: Invoice) -> tuple[str, str]:
    """Create and finalize a Stripe invoice; returns (Stripe id, hosted pay link).

    Every request carries an idempotency key derived from the tool call's, so a retried
    activity gets Stripe's recorded responses instead of a second invoice.
    """
    try:
        stripe: Any = importlib.import_module("stripe")
    except ModuleNotFoundError as exc:
        raise UserError(
            "`ONWARD_STRIPE_API_KEY` is set but the `stripe` package is missing; "
            "run `pip install stripe`"
        ) from exc
    customer_params: dict[str, Any] = {"email": invoice.customer_email}
    if invoice.customer_name:
        customer_params["name"] = invoice.customer_name
    customer = stripe.Customer.create(
        api_key=api_key, idempotency_key=f"{key}:customer", **customer_params
    )
    draft = stripe.Invoice.create(
        api_key=api_key,
        idempotency_key=f"{key}:invoice",
        customer=customer["id"],
        collection_method="send_invoice",
        days_until_due=14,
        description=invoice.description,
        metadata={"onward_invoice_id": invoice.id},
    )
    stripe.InvoiceItem.create(
        api_key=api_key,
        idempotency_key=f"{key}:item",
        customer=customer["id"],
        invoice=draft["id"],
        amount=invoice.amount_cents,
        currency=invoice.currency,
        description=invoice.description,
    )
    final = stripe.Invoice.finalize_invoice(
        draft["id"], api_key=api_key, idempotency_key=f"{key}:finalize"
    )
    return str(final["id"]), str(final["hosted_invoice_url"])
