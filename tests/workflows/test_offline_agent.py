"""The offline model as the agent of real conversations on the time-skipping server:
the Temporal tutorial's script typed as its reader types it, nothing-found, topic
judgement, money waiting for a human's yes, and effects owned by their conversation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from onward.agent.contracts import ConversationSnapshot
from onward.agent.messages import AssistantMessage, ToolCallMessage, ToolResultMessage
from onward.client.conversations import Conversations
from onward.examples.ledger import Ledger
from onward.models.offline import OfflineModel
from tests.conftest import AgentFactory

RESTING = ("waiting_for_user", "ended")


@dataclass
class Turn:
    """What the agent did for one user message."""

    replies: list[str]
    calls: list[ToolCallMessage]
    results: list[ToolResultMessage]
    snapshot: ConversationSnapshot
    approvals: int = 0

    @property
    def reply(self) -> str:
        return "\n\n".join(self.replies)


async def settle(convs: Conversations, cid: str, after: int, *, approve: bool = True) -> Turn:
    """Wait until the agent rests again after message `after`, deciding the approvals
    it asks for on the way."""
    approvals = 0
    decided: set[str] = set()
    while True:
        snap = await convs.wait_for(
            cid,
            lambda s: (
                s.message_count > after
                and (
                    s.status == "waiting_for_approval"
                    or (s.status in RESTING and isinstance(s.messages[-1], AssistantMessage))
                )
            ),
        )
        if snap.status != "waiting_for_approval":
            break
        # A surfaced approval stays listed until its sub-agent closes it: decide once.
        fresh = [p for p in snap.pending_approvals if p.call_id not in decided]
        for pending in fresh:
            decision = "approve" if approve else "reject"
            await convs.decide(cid, pending.call_id, decision, pending.args_hash)
            decided.add(pending.call_id)
            approvals += 1
        await convs.wait_for(
            cid,
            lambda s: (
                any(p.call_id not in decided for p in s.pending_approvals)
                or (s.status != "waiting_for_approval")
            ),
        )
    new = snap.messages[after:]
    return Turn(
        replies=[m.text for m in new if isinstance(m, AssistantMessage)],
        calls=[m for m in new if isinstance(m, ToolCallMessage)],
        results=[m for m in new if isinstance(m, ToolResultMessage)],
        snapshot=snap,
        approvals=approvals,
    )


async def say(convs: Conversations, cid: str, text: str, *, approve: bool = True) -> Turn:
    before = (await convs.snapshot(cid)).message_count
    await convs.send(cid, text)
    return await settle(convs, cid, before, approve=approve)


async def begin(convs: Conversations, goal: str, text: str) -> tuple[str, Turn]:
    cid = await convs.start(goal, first_message=text)
    return cid, await settle(convs, cid, 0)


async def test_the_temporal_tutorial_script(ts_agent: AgentFactory, ledger: Ledger) -> None:
    async with ts_agent(OfflineModel()) as convs:
        cid, first = await begin(
            convs, "travel", "I'd like to see events in San Francisco in March"
        )
        [found] = first.calls
        assert (found.tool, found.args) == (
            "find_events",
            {"city": "San Francisco", "month": "March"},
        )
        [event] = first.results[0].content["events"]
        assert f"**{event['name']}**" in first.reply and event["venue"] in first.reply
        assert first.reply.endswith("Where will you fly from?")

        attend = await say(convs, cid, f"I would like to attend the {event['name']}")
        assert attend.calls == [] and event["name"] in attend.reply

        refused = await say(convs, cid, "I would like to order two double cheeseburgers.")
        assert refused.calls == []
        assert "trip" in refused.reply and refused.reply.endswith("Where will you fly from?")
        assert refused.snapshot.status == "waiting_for_user"  # the conversation goes on

        flights = await say(convs, cid, "I'm sorry. I'd like to depart from Austin, TX")
        [search] = flights.calls
        assert search.tool == "search_flights"
        assert search.args == {
            "origin": "Austin",
            "destination": "San Francisco",
            "date": event["date"],
        }
        listed = flights.results[0].content["flights"]
        assert all(f["flight_number"] in flights.reply for f in listed)
        assert "Shall I create the invoice for it?" in flights.reply

        asked = await say(convs, cid, "Yes")
        assert asked.calls == []
        assert asked.reply.endswith("What email address should I send the invoice to?")
        invoiced = await say(convs, cid, "ada@example.com")
        assert invoiced.approvals == 1
        [invoice_call] = invoiced.calls
        assert invoice_call.tool == "create_invoice"
        [row] = ledger.rows("invoices")
        assert f"/pay/{row['id']}" in invoiced.reply and event["name"] in invoiced.reply
        # A finished goal rests: a follow-up about the results is answered from them.
        number = invoice_call.args["flight_number"]
        follow = await say(convs, cid, "what was the flight number?")
        assert follow.reply == f"The flight number is {number}." and follow.calls == []
        assert follow.snapshot.status == "waiting_for_user"
        await convs.end(cid)
    assert len(ledger.rows("invoices")) == 1


async def test_nothing_found_offers_other_months_and_searches_no_flights(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    async with ts_agent(OfflineModel()) as convs:
        cid, turn = await begin(
            convs, "travel", "Any music festivals in Chicago in June? I fly from Denver."
        )
        assert [c.tool for c in turn.calls] == ["find_events"]
        assert turn.reply.startswith("I found no events in Chicago in June.")
        assert "another month: February, May, August or November" in turn.reply
        assert turn.snapshot.status == "waiting_for_user"
        await convs.end(cid)
    assert ledger.dump()["invoices"] == []


async def test_plain_requests_in_each_goals_domain_are_answered_not_refused(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    cases = {
        "research": ("What are the main causes of coral reef bleaching?", "search_documents"),
        "research-graph": (
            "How do honeybees tell each other where flowers are?",
            "search_documents",
        ),
        "purchase": ("I'd like to buy two mugs please", "reserve_inventory"),
        "concierge": ("How do I export my notes?", "handoff"),
    }
    async with ts_agent(OfflineModel()) as convs:
        for goal, (text, tool) in cases.items():
            cid, turn = await begin(convs, goal, text)
            assert turn.calls and turn.calls[0].tool == tool, (goal, turn.reply)
            assert not turn.reply.startswith("Sorry, I can't help"), (goal, turn.reply)
            await convs.end(cid)
    assert ledger.rows("reservations")[0]["quantity"] == 2


async def test_a_purchase_waits_for_approval_before_the_card_is_charged(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    async with ts_agent(OfflineModel()) as convs:
        cid = await convs.start("purchase", first_message="Buy 1 LAMP-2 with card tok_visa")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        [pending] = snap.pending_approvals
        assert pending.tool == "charge_card"
        assert pending.args["amount_usd"] == 59.0  # the approver sees what is charged
        assert len(ledger.rows("reservations")) == 1
        assert ledger.rows("charges") == []  # no money moved yet
        await convs.decide(cid, pending.call_id, "approve", pending.args_hash)
        turn = await settle(convs, cid, snap.message_count)
        assert turn.reply.endswith("What is the full delivery address?")
        [charge] = ledger.rows("charges")
        assert (charge["amount_cents"], charge["conversation_id"]) == (5900, cid)
        # A rejected charge moves nothing and the agent says so.
        other = await convs.start("purchase", first_message="Buy 1 TEE-M with card tok_visa")
        rejected = await settle(convs, other, 0, approve=False)
        assert "I did not charge the customer's card" in rejected.reply
        assert "rejected by the user" in rejected.reply
        await convs.end(cid)
        await convs.end(other)
    assert len(ledger.rows("charges")) == 1


async def test_a_conversation_cannot_refund_another_ones_charge(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    from onward.agent.decisions import Finish
    from onward.testing import ScriptedModel
    from tests.workflows.toolbox import call

    async with ts_agent(OfflineModel()) as convs:
        victim = await convs.start("purchase", first_message="Buy 1 BOOK-7 with card tok_visa")
        snap = await convs.wait_for(victim, lambda s: bool(s.pending_approvals))
        [pending] = snap.pending_approvals
        await convs.decide(victim, pending.call_id, "approve", pending.args_hash)
        await settle(convs, victim, snap.message_count)
        await convs.end(victim)
    [charge] = ledger.rows("charges")
    # The attacker knows the victim's charge id and asks for the undo tool by name.
    attacker = ScriptedModel(
        [call("x1", "refund_charge", charge_id=charge["id"]), Finish(answer="done")]
    )
    async with ts_agent(attacker) as convs:
        cid = await convs.start("purchase", first_message="refund that charge")
        await convs.wait_for(cid, lambda s: s.answer is not None or s.status == "ended")
        snap = await convs.snapshot(cid)
        await convs.end(cid)
    [result] = [m for m in snap.messages if isinstance(m, ToolResultMessage)]
    assert not result.ok
    assert ledger.rows("refunds") == []
    assert [r["status"] for r in ledger.rows("charges")] == ["captured"]


async def test_a_pay_link_is_not_derivable_from_conversation_and_call(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    async with ts_agent(OfflineModel()) as convs:
        cid, _ = await begin(convs, "travel", "Events in Boston in July, from Denver")
        done = await say(convs, cid, "Yes, send it to ana@example.com")
        [invoice_call] = done.calls
        await convs.end(cid)
    [row] = ledger.rows("invoices")
    key = f"{cid}:{invoice_call.call_id}"
    assert row["idempotency_key"] == key
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert row["id"] not in {f"inv_{digest[:n]}" for n in (16, 24, 32, 64)}
    assert row["pay_url"].endswith(f"/pay/{row['id']}") and row["id"] in done.reply


async def test_the_trip_planners_travel_agents_invoice_after_surfaced_approvals(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    request = "Plan me three vacations next year, flying from Denver; invoice ana@example.com"
    async with ts_agent(OfflineModel()) as convs:
        cid, turn = await begin(convs, "trip-planner", request)
        await convs.end(cid)
    assert turn.approvals == 3
    invoices = ledger.rows("invoices")
    assert len(invoices) == 3 and len({i["conversation_id"] for i in invoices}) == 3
    # One line per option: its event, its flight and its pay link, all different.
    lines = turn.replies[-1].splitlines()
    assert [line[:3] for line in lines] == ["1. ", "2. ", "3. "]
    for line, invoice in zip(
        lines, sorted(invoices, key=lambda r: r["conversation_id"]), strict=True
    ):
        assert line.count("Event: ") == 1 and line.count("Flight: ") == 1
        assert invoice["id"] in line


async def test_support_sends_what_the_help_center_does_not_answer_to_a_person(
    ts_agent: AgentFactory, ledger: Ledger
) -> None:
    async with ts_agent(OfflineModel()) as convs:
        # A notes app's help center has nothing on a damaged parcel; the index still
        # ranks the password article first (it says "arrives"): no email from it.
        cid, turn = await begin(
            convs,
            "support",
            "My order ORD-1002 arrived damaged, the mug is cracked. What can I do?",
        )
        assert [c.tool for c in turn.calls] == ["search_kb", "classify", "create_ticket"]
        assert turn.results[0].content["found"] is False
        assert turn.calls[2].args["category"] == "escalate"
        [ticket] = ledger.rows("tickets")
        assert ticket["id"] in turn.reply and "password" not in turn.reply.lower()
        # The reply says what came of each step, not the question read back to the user.
        assert "question My order" not in turn.reply
        await convs.end(cid)
        # One it does answer is drafted from the matching article, for a human to approve.
        cid, turn = await begin(
            convs, "support", "I was charged twice on my invoice, sam@example.com"
        )
        assert [c.tool for c in turn.calls] == ["search_kb", "classify", "send_email"]
        assert turn.results[0].content["articles"][0]["id"] == "kb-14"
        assert turn.approvals == 1
        await convs.end(cid)
        # A complaint said as a statement is support's business too, not off topic.
        cid, turn = await begin(convs, "support", "I want my money back")
        assert [c.tool for c in turn.calls] == ["search_kb", "classify", "create_ticket"]
        await convs.end(cid)
    assert len(ledger.rows("tickets")) == 2 and len(ledger.rows("outbox")) == 1
