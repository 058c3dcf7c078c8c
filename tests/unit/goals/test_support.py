"""Support tools: KB search, keyword classification, tickets and the email outbox."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes

import pytest

from onward.examples.ledger import Ledger
from onward.examples.research import bundled_data
from onward.examples.support import (
    answering_articles,
    classify,
    classify_question,
    create_ticket,
    kb_index,
    search_kb,
    send_email,
)
from onward.exceptions import ToolArgumentsError
from tests.unit.goals.conftest import ContextFactory


def test_knowledge_base_has_articles_in_every_category() -> None:
    articles = bundled_data("kb.json", "articles")
    assert len(articles) >= 15
    assert {a["category"] for a in articles} == {"faq", "account", "billing"}


@pytest.mark.parametrize(
    ("question", "category"),
    [
        ("How do I reset my password?", "account"),
        ("My account is locked", "account"),
        ("I was charged twice this month", "billing"),
        ("Where do I download my invoices?", "billing"),
        ("Does the app work offline?", "faq"),
        ("My account was hacked and my notes are gone", "escalate"),
        ("Refund me now or I call my lawyer", "escalate"),
        ("I want to talk to a human", "escalate"),
    ],
)
def test_classification_rules(question: str, category: str) -> None:
    assert classify_question(question)[0] == category


async def test_classify_declares_what_comes_next_as_metadata() -> None:
    escalated = await classify.invoke({"question": "This outage is unacceptable"})
    assert escalated == {
        "question": "This outage is unacceptable",
        "category": "escalate",
        "matched_keywords": ["outage", "unacceptable"],
    }
    answered = await classify.invoke({"question": "How do I export notes?"})
    assert answered["category"] == "faq"
    assert classify.follow_ups == ("send_email", "create_ticket")
    assert search_kb.follow_ups == ("classify",)
    # The category that goes to a human is named by the tool that takes it there.
    assert "escalate" in create_ticket.description.lower()


def test_search_kb_finds_the_matching_article() -> None:
    result = search_kb("I forgot my password, how can I reset it?")
    assert result["found"]
    assert result["articles"][0]["title"] == "How do I reset my password?"
    assert result["articles"][0]["category"] == "account"
    assert "Forgot password" in result["articles"][0]["text"]
    assert not {"subject", "body"} & set(result)  # no draft shaped for one model
    empty = search_kb("zeppelin quasar")
    assert not empty["found"] and "articles" not in empty


def test_an_article_sharing_one_word_with_a_question_does_not_answer_it() -> None:
    question = "My order ORD-1002 arrived damaged, the mug is cracked. What can I do?"
    # The index does rank the password article ("If no email arrives…") for it.
    assert [h.id for h in kb_index().search(question)] == ["kb-07"]
    assert answering_articles(question) == []
    assert not search_kb(question)["found"]
    escalated = classify(question)
    assert escalated["category"] == "escalate" and "no help-center article" in escalated["reason"]
    # An address or an order number in the question does not dilute what it asks.
    [hit, *_] = answering_articles("How do I reset my password? I am ana@example.com")
    assert hit.id == "kb-07" and hit.coverage == 1.0


async def test_ticket_is_written_once(ledger: Ledger, make_ctx: ContextFactory) -> None:
    args = {"question": "I was hacked", "category": "escalate"}
    first = await create_ticket.invoke(args, make_ctx("t1"))
    assert await create_ticket.invoke(args, make_ctx("t1", attempt=2)) == first
    assert first["priority"] == "high"
    assert "suggested_next_tool" not in first
    [row] = ledger.rows("tickets")
    assert (row["id"], row["category"], row["status"]) == (first["ticket_id"], "escalate", "open")
    with pytest.raises(ToolArgumentsError, match="category"):
        await create_ticket.invoke({**args, "category": "other"}, make_ctx())


EMAIL = {"to": "ana@example.com", "subject": "Password reset", "body": "Use Forgot password."}


async def test_email_goes_to_the_outbox_once_without_smtp(
    ledger: Ledger, make_ctx: ContextFactory
) -> None:
    assert send_email.approval == "confirm"
    assert send_email.spec().parameters["properties"]["to"]["format"] == "email"
    first = await send_email.invoke(EMAIL, make_ctx("e1"))
    assert await send_email.invoke(EMAIL, make_ctx("e1", attempt=2)) == first
    assert first["status"] == "queued"
    assert "suggested_next_tool" not in first and not send_email.follow_ups
    [row] = ledger.rows("outbox")
    assert (row["recipient"], row["subject"], row["sent_at"]) == (
        "ana@example.com",
        "Password reset",
        None,
    )
    with pytest.raises(ToolArgumentsError, match="to"):
        await send_email.invoke({**EMAIL, "to": "not-an-address"}, make_ctx())


class SmtpSink(socketserver.StreamRequestHandler):
    """Just enough SMTP to accept messages; stores each DATA block on the server."""

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 sink ready")
        while line := self.rfile.readline():
            verb = line.decode().strip().split(" ")[0].upper()
            if verb == "DATA":
                self.reply("354 go ahead")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                assert isinstance(self.server, SmtpServer)
                self.server.messages.append(data)
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SmtpSink)
        self.messages: list[bytes] = []


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_email_is_sent_over_smtp_once_and_marked_sent(
    ledger: Ledger,
    make_ctx: ContextFactory,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = smtp_server.server_address[1]
    monkeypatch.setenv("ONWARD_SMTP_URL", f"smtp://127.0.0.1:{port}?from=help@lumen.test")
    first = await send_email.invoke(EMAIL, make_ctx("e2"))
    assert await send_email.invoke(EMAIL, make_ctx("e2", attempt=2)) == first
    assert first["status"] == "sent"
    [raw] = smtp_server.messages
    message = message_from_bytes(raw)
    assert message["From"] == "help@lumen.test"
    assert message["To"] == "ana@example.com"
    assert message["Subject"] == "Password reset"
    assert message["Message-ID"] == f"<{first['email_id']}@onward.local>"
    [row] = ledger.rows("outbox")
    assert row["status"] == "sent"
    assert row["sent_at"] is not None
