"""`/pay/{invoice_id}`: the local pay page behind the travel goal's pay links.

Without Stripe configured, invoices are "paid" here: the page shows what is owed.
Like a hosted invoice page it needs no sign-in, so the id is the secret: an HMAC of
the tool call's idempotency key with a key kept in the data dir (see
`onward.examples.ledger_keys`), which nobody can compute from a conversation id.
"""

from __future__ import annotations

import asyncio
import html
import re

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from onward.api.deps import SettingsDep
from onward.examples.ledger import ledger_for

router = APIRouter(tags=["pay"])

_INVOICE_ID = re.compile(r"^inv_[0-9a-f]{16,64}$")
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
"""The id in the URL is a bearer secret: keep it out of caches and Referer headers."""


def _missing() -> HTMLResponse:
    return HTMLResponse("<h1>No such invoice</h1>", status_code=404, headers=_HEADERS)


@router.get("/pay/{invoice_id}", response_class=HTMLResponse, include_in_schema=False)
async def pay_page(invoice_id: str, settings: SettingsDep) -> HTMLResponse:
    """An invoice's amount and description, or 404."""
    if not _INVOICE_ID.match(invoice_id):
        return _missing()
    invoice = await asyncio.to_thread(ledger_for(settings).invoice, invoice_id)
    if invoice is None:
        return _missing()
    body = (
        "<!doctype html><meta charset=utf-8><title>Invoice</title>"
        f"<h1>Invoice {html.escape(invoice.id)}</h1>"
        f"<p>{html.escape(invoice.description)}</p>"
        f"<p><strong>{invoice.amount_cents / 100:.2f} {html.escape(invoice.currency.upper())}"
        f"</strong> — status {html.escape(invoice.status)}</p>"
        f"<p>Billed to {html.escape(invoice.customer_email)}</p>"
    )
    return HTMLResponse(body, headers=_HEADERS)
