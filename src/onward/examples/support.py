"""Support goal: answer from the knowledge base, or escalate to a human via a ticket.

Answers go out by email only after a human approves them (`approval="confirm"`): the
conversation waits for the decision, up to `ONWARD_APPROVAL_TIMEOUT` (24 h), and an
undecided email is never sent. Emails land in the ledger's outbox table and, when
`ONWARD_SMTP_URL` is set, are also handed to that SMTP server.
"""

from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage
from functools import cache
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field

from onward.agent.specs import ExampleTurn
from onward.config import get_settings
from onward.examples.ledger import Email, ledger_for
from onward.examples.research import Hit, TextIndex, bundled_data
from onward.examples.settings import example_settings
from onward.goals.base import Goal
from onward.tools import ToolContext, tool

Category = Literal["faq", "account", "billing", "escalate"]

# Checked in this order: anything that smells of risk goes to a human even if it also
# mentions billing or the account.
_RULES: tuple[tuple[Category, tuple[str, ...]], ...] = (
    (
        "escalate",
        (
            "lawyer", "legal", "lawsuit", "sue", "fraud", "fraudulent", "stolen", "hacked",
            "breach", "data loss", "lost all", "lost my", "outage", "urgent", "emergency",
            "complaint", "chargeback", "gdpr", "human", "manager", "unacceptable",
        ),
    ),
    (
        "billing",
        (
            "refund", "charge", "charged", "invoice", "invoices", "billing", "bill", "payment",
            "card", "subscription", "plan", "price", "pricing", "receipt", "vat", "renewal",
        ),
    ),
    (
        "account",
        (
            "password", "sign in", "sign-in", "signin", "login", "log in", "locked", "2fa",
            "two-factor", "email address", "account", "username", "verification",
        ),
    ),
)  # fmt: skip
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def classify_question(question: str) -> tuple[Category, list[str]]:
    """The category of a support question and the keywords that decided it."""
    text = question.casefold()
    for category, keywords in _RULES:
        matched = [k for k in keywords if re.search(rf"\b{re.escape(k)}\b", text)]
        if matched:
            return category, matched
    return "faq", []


@cache
def kb_index() -> TextIndex:
    """The knowledge-base index (built once per process)."""
    return TextIndex(bundled_data("kb.json", "articles"), tag_field="category")


ANSWERING_COVERAGE = 0.5
"""An article answers a question only if it holds at least this share of the
question's meaningful words: the index ranks any document sharing one word with it
("arrived" in a password article for a damaged parcel)."""


def answering_articles(question: str) -> list[Hit]:
    """The knowledge-base articles that answer `question`, best first (maybe none)."""
    hits = kb_index().search(question, limit=3)
    return [h for h in hits if h.coverage >= ANSWERING_COVERAGE]


@tool(local=True, timeout_s=10, follow_ups=["classify"])
def search_kb(
    question: Annotated[str, Field(min_length=1, description="The customer's question.")],
) -> dict[str, Any]:
    """Search the help-center knowledge base; returns the articles that answer the
    question, best first. When none does, there is no `articles` list, only
    `found: false`: the question goes to a person."""
    hits = answering_articles(question)
    if not hits:
        return {
            "question": question,
            "found": False,
            "note": "No help-center article answers this question: a person should.",
        }
    return {
        "question": question,
        "articles": [
            {"id": h.id, "title": h.title, "category": h.tag, "text": h.body, "score": h.score}
            for h in hits
        ],
        "found": True,
    }


@tool(local=True, timeout_s=5, follow_ups=["send_email", "create_ticket"])
def classify(
    question: Annotated[str, Field(min_length=1, description="The customer's question.")],
) -> dict[str, Any]:
    """Classify a support question as faq, account, billing or escalate.

    An `escalate` question goes to a human (`create_ticket`): one that mentions a risk,
    or one no help-center article answers. The others are answered from the knowledge
    base (`send_email`).
    """
    category, matched = classify_question(question)
    result: dict[str, Any] = {"question": question, "category": category}
    if category != "escalate" and not answering_articles(question):
        result["category"] = "escalate"
        result["reason"] = "no help-center article answers it"
    result["matched_keywords"] = matched
    return result


@tool(timeout_s=15)
def create_ticket(
    question: Annotated[str, Field(min_length=1, description="The customer's question.")],
    category: Category,
    ctx: ToolContext,
) -> dict[str, Any]:
    """Escalate to a human: open a ticket so a support agent follows up; returns its id.

    Also the way out when the knowledge base has no answer.
    """
    ticket = ledger_for(get_settings()).record_ticket(
        ctx.idempotency_key,
        question=question,
        category=category,
        conversation_id=ctx.conversation_id,
    )
    return {
        "ticket_id": ticket.id,
        "category": ticket.category,
        "status": ticket.status,
        "priority": "high" if ticket.category == "escalate" else "normal",
    }


def _send_smtp(url: str, email: Email) -> None:
    """Hand `email` to the server in `url`: `smtp://`, `smtps://` or `smtp+starttls://`,
    with optional `user:password@` and `?from=` (the sender address)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    user = unquote(parts.username or "")
    default_port = {"smtps": 465, "smtp+starttls": 587}.get(parts.scheme, 25)
    sender = parse_qs(parts.query).get("from", [user if "@" in user else f"support@{host}"])[0]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.recipient
    message["Subject"] = email.subject
    # Stable across retries, so a receiving server can drop a duplicate delivery.
    message["Message-ID"] = f"<{email.id}@onward.local>"
    message.set_content(email.body)
    smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with smtp_class(host, parts.port or default_port, timeout=20) as smtp:
        if parts.scheme == "smtp+starttls":
            smtp.starttls()
        if user and parts.password:
            smtp.login(user, unquote(parts.password))
        smtp.send_message(message)


@tool(approval="confirm", timeout_s=30)
def send_email(
    to: Annotated[
        str,
        Field(
            pattern=_EMAIL,
            description="The customer's email address.",
            json_schema_extra={"format": "email"},
        ),
    ],
    subject: Annotated[str, Field(min_length=1, max_length=200)],
    body: Annotated[str, Field(min_length=1, description="The answer, in plain text.")],
    ctx: ToolContext,
) -> dict[str, Any]:
    """Email the answer to the customer (a human approves it first)."""
    ledger = ledger_for(get_settings())
    smtp_url = example_settings().smtp_url
    email = ledger.record_email(
        ctx.idempotency_key,
        recipient=to,
        subject=subject,
        body=body,
        conversation_id=ctx.conversation_id,
    )
    if smtp_url is not None and email.status == "queued":
        # A crash after sending but before marking it sent re-sends on retry; the
        # fixed Message-ID lets the receiving side deduplicate.
        _send_smtp(smtp_url.get_secret_value(), email)
        email = ledger.mark_email_sent(email.id)
    return {
        "email_id": email.id,
        "to": email.recipient,
        "subject": email.subject,
        "status": email.status,
    }


SUPPORT = Goal(
    name="support",
    description=(
        "Answer customers' questions and complaints (account, billing, refunds and money "
        "back, the app) from the help center, or escalate to a human."
    ),
    instructions=(
        "You are a support agent for the Lumen Notes app. Customers write about their "
        "account and sign-in, billing, charges, refunds and getting their money back, "
        "plans and subscriptions, and the app itself: features, problems, bugs and "
        "crashes. Statements count as much as questions.\n"
        "1. Call `search_kb` and `classify` with the customer's question.\n"
        "2. If the category is `escalate`, call `create_ticket` with the question and "
        "category, and tell the customer a human will follow up (give the ticket id).\n"
        "3. Otherwise write a short, friendly answer using only the knowledge-base "
        "articles, and call `send_email` with the customer's email address (ask for it "
        "if you do not have it), a subject and the answer. A human approves every email; "
        "if it is rejected or not approved in time, tell the customer and offer a ticket.\n"
        "4. If the knowledge base has no answer, open a ticket instead of guessing.\n"
        "Help-center topics: "
        + "; ".join(a["title"].rstrip("?") for a in bundled_data("kb.json", "articles"))
        + ".\nAlways escalate messages about: "
        + ", ".join(_RULES[0][1])
        + "."
    ),
    tools=[search_kb, classify, create_ticket, send_email],
    starter_prompt="Hi! What can I help you with today?",
    examples=[
        ExampleTurn(
            user="How do I reset my password? I'm ana@example.com",
            assistant="(calls search_kb and classify, then send_email to ana@example.com "
            "with the reset steps from kb-07)",
        ),
        ExampleTurn(
            user="My account was hacked and someone deleted my notes!",
            assistant="(classify says escalate, so calls create_ticket and tells the user "
            "a human will follow up)",
        ),
    ],
)
