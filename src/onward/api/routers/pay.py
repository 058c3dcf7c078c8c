"""`/pay/{invoice_id}`: the local pay page behind the travel goal's pay links.

Without Stripe configured, invoices are "paid" here: the page shows what is owed.
Like a hosted invoice page it needs no sign-in; the id is derived from a hash of the
conversation's idempotency key, so it cannot be enumerated.
"""

from __future__ import annotations

import asyncio
import html

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from onward.api.deps import SettingsDep
from onward.store.ledger import ledger_for

router = APIRouter(tags=["pay"])


@router.get("/pay/{invoice_id}", response_class=HTMLResponse, include_in_schema=False)
async def pay_page(invoice_id: str, settings: SettingsDep) -> HTMLResponse:
    """An invoice's amount and description, or 404."""
    rows = await asyncio.to_thread(ledger_for(settings).rows, "invoices")
    row = next((r for r in rows if r.get("id") == invoice_id), None)
    if row is None:
        return HTMLResponse("<h1>No such invoice</h1>", status_code=404)
    amount = int(row.get("amount_cents") or 0) / 100
    currency = html.escape(str(row.get("currency", "usd")).upper())
    body = (
        "<!doctype html><meta charset=utf-8><title>Invoice</title>"
        f"<h1>Invoice {html.escape(invoice_id)}</h1>"
        f"<p>{html.escape(str(row.get('description', '')))}</p>"
        f"<p><strong>{amount:.2f} {currency}</strong> — status "
        f"{html.escape(str(row.get('status', '')))}</p>"
        f"<p>Billed to {html.escape(str(row.get('customer_email', '')))}</p>"
    )
    return HTMLResponse(body)
