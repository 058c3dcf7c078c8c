"""The bundled goals end to end on the time-skipping server, checked in the ledger.

The tools read `get_settings()`, so each test points `ONWARD_DATA_DIR` at its own tmp
dir (`ledger` fixture) and reads the rows the conversation left there.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from onward.agent.contracts import ConversationResult, ConversationSnapshot
from onward.agent.decisions import CallTools, Finish, ToolCall
from onward.agent.messages import AssistantMessage, NoticeMessage, ToolResultMessage, UserMessage
from onward.agent.specs import RetrySpec
from onward.client.conversations import Conversations
from onward.config import Settings, get_settings
from onward.examples.ledger import Ledger, ledger_for
from onward.examples.travel import find_events, search_flights
from onward.goals.base import Goal
from onward.models.base import ModelRequest
from onward.models.offline import OfflineModel
from onward.testing import ScriptedModel, Step
from onward.testing.scripted import ScriptFn
from onward.tools import ToolContext, tool
from tests.conftest import AgentFactory, agent_factory, answered
from tests.workflows.toolbox import call


def counts(ledger: Ledger) -> dict[str, int]:
    return {table: len(rows) for table, rows in ledger.dump().items() if rows}


async def test_travel_books_an_event_trip_and_invoices_it(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    [event] = find_events("Chicago", "May")["events"]
    flight = search_flights("Denver", "Chicago", date.fromisoformat(event["date"]))["flights"][0]
    model = ScriptedModel(
        [
            call("c1", "find_events", city="Chicago", month="May"),
            call(
                "c2", "search_flights", origin="Denver", destination="Chicago", date=event["date"]
            ),
            call(
                "c3",
                "create_invoice",
                customer_email="ana@example.com",
                flight_number=flight["flight_number"],
                origin="Denver",
                destination="Chicago",
                date=event["date"],
            ),
            Finish(answer="Booked; pay with the link."),
        ]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("travel", first_message="Events in Chicago in May, from Denver")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        [pending] = snap.pending_approvals
        assert pending.tool == "create_invoice"
        assert counts(ledger) == {}  # nothing is invoiced before the human says yes
        await convs.decide(cid, pending.call_id, "approve", pending.args_hash)
        result = await answered(convs, cid)
    assert [r.tool for r in result.tool_calls] == [
        "find_events",
        "search_flights",
        "create_invoice",
    ]
    assert all(r.ok for r in result.tool_calls)
    assert result.tool_calls[1].result["date"] == event["date"]
    invoice = result.tool_calls[2].result
    [row] = ledger.rows("invoices")
    assert row["idempotency_key"] == f"{cid}:c3"
    # The amount is the scheduled flight's, not something the model said.
    price_cents = round(flight["price_usd"] * 100)
    assert (row["id"], row["amount_cents"], row["status"]) == (
        invoice["invoice_id"],
        price_cents,
        "open",
    )
    assert invoice["pay_url"].endswith(f"/pay/{row['id']}")
    assert counts(ledger) == {"invoices": 1}


async def test_research_stores_a_cited_report(ts_agent: AgentFactory, ledger: Ledger) -> None:
    body = "Sagas undo completed steps in reverse [doc-002]; keys make retries safe [doc-001]."
    model = ScriptedModel(
        [
            call("s1", "search_documents", query="saga compensation"),
            call("s2", "search_documents", query="idempotency key retry"),
            call("s3", "store_report", title="Sagas", body=body, sources=["doc-002", "doc-001"]),
            Finish(answer="Stored the report."),
        ]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("research", first_message="How do sagas stay consistent?")
        result = await answered(convs, cid)
    first_search, second_search, stored = (r.result for r in result.tool_calls)
    assert first_search["sources"][0] == "doc-002"
    assert "doc-001" in second_search["sources"]
    [row] = ledger.rows("reports")
    assert (row["id"], row["body"], row["sources"]) == (
        stored["report_id"],
        body,
        ["doc-002", "doc-001"],
    )
    assert row["idempotency_key"] == f"{cid}:s3"


async def test_support_escalation_opens_a_ticket(ts_agent: AgentFactory, ledger: Ledger) -> None:
    question = "My account was hacked and my notes are gone!"
    model = ScriptedModel(
        [
            CallTools(
                calls=[
                    ToolCall(call_id="k1", tool="search_kb", args={"question": question}),
                    ToolCall(call_id="k2", tool="classify", args={"question": question}),
                ]
            ),
            call("k3", "create_ticket", question=question, category="escalate"),
            Finish(answer="A human will follow up."),
        ]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("support", first_message=question)
        result = await answered(convs, cid)
    assert result.tool_calls[1].result["category"] == "escalate"
    [row] = ledger.rows("tickets")
    assert (row["category"], row["id"]) == ("escalate", result.tool_calls[2].result["ticket_id"])
    assert counts(ledger) == {"tickets": 1}


SUPPORT_EMAIL = {
    "to": "ana@example.com",
    "subject": "Resetting your password",
    "body": "Choose Forgot password on the sign-in page.",
}


def support_email_script() -> ScriptedModel:
    return ScriptedModel(
        [
            call("m1", "classify", question="How do I reset my password?"),
            call("m2", "send_email", **SUPPORT_EMAIL),
            Finish(answer="Done."),
        ]
    )


async def test_support_answer_is_emailed_after_approval(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    async with ts_agent(support_email_script()) as convs:
        cid = await convs.start("support", first_message="How do I reset my password?")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        [pending] = snap.pending_approvals
        await convs.decide(cid, pending.call_id, "approve", pending.args_hash)
        result = await answered(convs, cid)
    [row] = ledger.rows("outbox")
    assert (row["recipient"], row["status"]) == ("ana@example.com", "queued")
    assert result.tool_calls[-1].result["email_id"] == row["id"]


async def test_support_email_without_a_decision_in_24h_is_rejected(
    lone_ts_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> None:
    model = support_email_script()
    async with agent_factory(lone_ts_env, settings)(model) as convs:
        cid = await convs.start("support", first_message="How do I reset my password?")
        await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        await lone_ts_env.sleep(timedelta(hours=25))
        result = await answered(convs, cid)
    assert result.answer == "Done."
    # The email never ran as an activity, so it is not among the executed calls.
    assert [r.tool for r in result.tool_calls] == ["classify"]
    outcomes = [m for m in model.calls[-1].messages if isinstance(m, ToolResultMessage)]
    assert outcomes[-1].tool == "send_email"
    assert not outcomes[-1].ok
    assert "treated as rejected" in (outcomes[-1].error or "")
    assert ledger.rows("outbox") == []


def purchase_script(sku: str, quantity: int, address: str) -> ScriptFn:
    """A model that buys `quantity` of `sku`: it charges the reservation it got (its id
    and amount come from the reservation's result), then ships."""

    def step(request: ModelRequest) -> Step:
        results = [m for m in request.messages if isinstance(m, ToolResultMessage)]
        done = {m.tool: m.content for m in results if m.ok}
        if any(not m.ok for m in results) or "create_shipment" in done:
            return Finish(answer="Shipping failed; your reservation and payment were undone.")
        if "reserve_inventory" not in done:
            return call("p1", "reserve_inventory", sku=sku, quantity=quantity)
        if "charge_card" not in done:
            held = done["reserve_inventory"]
            return call(
                "p2",
                "charge_card",
                reservation_id=held["reservation_id"],
                amount_usd=held["amount_usd"],
                card_token="tok_visa",
            )
        return call("p3", "create_shipment", sku=sku, quantity=quantity, address=address)

    return step


async def approve_all(convs: Conversations, cid: str) -> ConversationResult:
    """Approve what the conversation asks (the charge) until it has its answer."""
    while True:
        snap = await convs.wait_for(
            cid,
            lambda s: bool(s.pending_approvals) or s.answer is not None or s.status == "ended",
        )
        if not snap.pending_approvals:
            return await answered(convs, cid)
        for pending in snap.pending_approvals:
            await convs.decide(cid, pending.call_id, "approve", pending.args_hash)
        await convs.wait_for(cid, lambda s: not s.pending_approvals)


async def test_purchase_saga_undoes_reservation_and_charge(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    async with ts_agent(ScriptedModel(purchase_script("FRAGILE-1", 1, "1 Glass Lane"))) as convs:
        cid = await convs.start("purchase", first_message="One FRAGILE-1 please, tok_visa")
        result = await approve_all(convs, cid)
        snap = await convs.snapshot(cid)
    shipment = result.tool_calls[2]
    assert (shipment.tool, shipment.ok) == ("create_shipment", False)
    assert [r.compensated for r in result.tool_calls] == [True, True, False]
    dump = ledger.dump()
    assert [r["status"] for r in dump["reservations"]] == ["released"]
    assert [r["status"] for r in dump["charges"]] == ["refunded"]
    assert [r["idempotency_key"] for r in dump["refunds"]] == [f"{cid}:undo-p2"]
    assert [r["idempotency_key"] for r in dump["releases"]] == [f"{cid}:undo-p1"]
    assert dump["refunds"][0]["amount_cents"] == 7500
    assert dump["shipments"] == []
    notices = [m.text for m in snap.messages if isinstance(m, NoticeMessage)]
    assert any(
        "undone" in n
        and "charge_card (refund_charge)" in n
        and "reserve_inventory (release_reservation)" in n
        for n in notices
    ), notices


async def test_purchase_happy_path_ships(ts_agent: AgentFactory, ledger: Ledger) -> None:
    async with ts_agent(ScriptedModel(purchase_script("MUG-1", 2, "12 Elm St"))) as convs:
        cid = await convs.start("purchase", first_message="Two mugs")
        result = await approve_all(convs, cid)
    assert all(r.ok and not r.compensated for r in result.tool_calls)
    assert counts(ledger) == {"reservations": 1, "charges": 1, "shipments": 1}
    assert ledger.rows("reservations")[0]["status"] == "held"
    assert ledger.rows("charges")[0]["amount_cents"] == 3600


# A test-only tool: it records a ticket, then "crashes" on its first attempt, after the
# write, the way a worker dies between a side effect and reporting it.
ATTEMPTS: list[int] = []


@tool(retry=RetrySpec(max_attempts=3, initial_interval_s=0.1))
def flaky_ticket(question: str, ctx: ToolContext) -> dict[str, Any]:
    """Open a ticket (test only: the first attempt fails after writing)."""
    ticket = ledger_for(get_settings()).record_ticket(
        ctx.idempotency_key, question=question, category="faq"
    )
    ATTEMPTS.append(ctx.attempt)
    if ctx.attempt == 1:
        raise ConnectionResetError("worker lost after the ledger write")
    return {"ticket_id": ticket.id}


FLAKY = Goal(
    name="test-flaky-ledger",
    description="Retries after a ledger write.",
    instructions="Open a ticket.",
    tools=[flaky_ticket],
)


@pytest.fixture
def ts_agent(ts_env: WorkflowEnvironment, settings: Settings) -> AgentFactory:
    """Workers whose goal catalog also holds this module's goals."""
    return agent_factory(ts_env, settings, [FLAKY])


async def test_retry_after_the_ledger_write_leaves_one_row(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    ATTEMPTS.clear()
    model = ScriptedModel([call("f1", "flaky_ticket", question="Help"), Finish(answer="ok")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-flaky-ledger", first_message="help")
        result = await answered(convs, cid)
    assert ATTEMPTS == [1, 2]
    [record] = result.tool_calls
    assert record.ok
    [row] = ledger.rows("tickets")
    assert row["id"] == record.result["ticket_id"]
    assert row["idempotency_key"] == f"{cid}:f1"


# The bundled goals must work without any API key: the offline model plays them from
# their tools' schemas and results, with what a person types.
OFFLINE_RUNS = {
    "travel": (
        ["Events in Chicago in May please, I fly from Denver; my email is ana@example.com", "Yes"],
        {"invoices": 1},
    ),
    "research": (["How do sagas keep distributed transactions consistent?"], {"reports": 1}),
    "support": (["How do I reset my password? I am ana@example.com"], {"outbox": 1}),
    "purchase": (
        ["Buy 1 FRAGILE-1 with tok_visa", "1 Glass Lane, Springfield"],
        {"reservations": 1, "releases": 1, "charges": 1, "refunds": 1},
    ),
}


async def talk(convs: Conversations, cid: str, replies: list[str]) -> ConversationSnapshot:
    """Answer each question with the next reply and approve every approval; returns
    the state once the replies are used up and the agent rests."""
    resting = ("waiting_for_user", "waiting_for_approval", "ended")
    while True:
        snap = await convs.wait_for(
            cid,
            lambda s: s.status in resting and not isinstance(s.messages[-1], UserMessage),
        )
        if snap.status == "waiting_for_approval":
            for pending in snap.pending_approvals:
                await convs.decide(cid, pending.call_id, "approve", pending.args_hash)
            await convs.wait_for(cid, lambda s: not s.pending_approvals)
            continue
        if snap.status == "ended" or not replies:
            return snap
        await convs.send(cid, replies.pop(0))


@pytest.mark.parametrize("goal", sorted(OFFLINE_RUNS))
async def test_offline_model_drives_the_goal(
    goal: str, ts_agent: AgentFactory, ledger: Ledger
) -> None:
    messages, expected = OFFLINE_RUNS[goal]
    async with ts_agent(OfflineModel()) as convs:
        cid = await convs.start(goal, first_message=messages[0])
        snap = await talk(convs, cid, messages[1:])
        await convs.end(cid)
    last = snap.messages[-1]
    assert isinstance(last, AssistantMessage) and last.text
    assert snap.status == "waiting_for_user"  # answered, and open for a follow-up
    assert counts(ledger) == expected
