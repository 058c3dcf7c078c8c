"""The offline model in conversations with the bundled goals, over real transcripts:
the goals' real tools run (ledger in the test's data dir) and every reply is what a
person would read. What people type, not phrases chosen for the model."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from onward.agent.decisions import AskUser, CallTools, Finish, Refuse
from onward.config import get_settings
from onward.examples.ledger import Ledger, ledger_for
from onward.goals.catalog import GoalCatalog
from onward.models._offline_args import params_of
from onward.models._offline_say import question
from onward.models.offline import check_topic
from tests.unit.models.offline_driver import Conversation

TUTORIAL_EVENT = "Bay Kite Festival"


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    monkeypatch.setenv("ONWARD_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield ledger_for(get_settings())
    monkeypatch.undo()
    get_settings.cache_clear()


def in_words(text: str) -> None:
    """A question or answer for a person: no backticked identifiers, no field names."""
    assert "`" not in text, text
    names = {
        p.name
        for g in ("travel", "purchase", "support", "research")
        for t in GoalCatalog.discover().spec(g).tools
        for p in params_of(t)
        if "_" in p.name
    }
    assert not [n for n in names if n in text], text


def test_the_temporal_tutorial_script(ledger: Ledger) -> None:
    c = Conversation.of("travel")
    listed = c.say("I'd like to see events in San Francisco in March")
    assert [(m.tool, m.args) for m in c.calls()] == [
        ("find_events", {"city": "San Francisco", "month": "March"})
    ]
    # The event by name, date and venue; then a question in words.
    assert f"**{TUTORIAL_EVENT}** on " in listed and "at Marina Green" in listed
    assert listed.endswith("Where will you fly from?")
    in_words(listed)

    attend = c.say(f"I would like to attend the {TUTORIAL_EVENT}")
    assert TUTORIAL_EVENT in attend and attend.endswith("Where will you fly from?")
    assert len(c.calls()) == 1  # the event's name is no airport

    refused = c.say("I would like to order two double cheeseburgers.")
    assert isinstance(c.decisions[-1], Refuse)
    assert "trip" in refused and refused.endswith("Where will you fly from?")
    assert len(c.calls()) == 1

    flights = c.say("I'm sorry. I'd like to depart from Austin, TX")
    [search] = c.calls("search_flights")
    assert (search.args["origin"], search.args["destination"]) == ("Austin", "San Francisco")
    event = c.results("find_events")[0].content["events"][0]
    assert search.args["date"] == event["date"]
    listed_flights = c.results("search_flights")[0].content["flights"]
    for flight in listed_flights:
        assert f"**{flight['airline']} {flight['flight_number']}**" in flights
        assert f"{flight['departure_time']} → {flight['arrival_time']}" in flights
        assert f"${flight['price_usd']:,.2f}" in flights
    cheapest = min(listed_flights, key=lambda f: f["price_usd"])
    assert f"The cheapest is **{cheapest['airline']} {cheapest['flight_number']}**" in flights
    assert "Shall I create the invoice for it?" in flights
    in_words(flights)

    asked = c.say("Yes")
    assert asked.endswith("What email address should I send the invoice to?")
    again = c.say("Yes")  # "Yes" is no email address: asked again, in words
    assert (
        again
        == "I need an email address to go on. What email address should I send the invoice to?"
    )
    done = c.say("ana@example.com")
    [invoice] = c.calls("create_invoice")
    assert invoice.args == {
        "customer_email": "ana@example.com",
        "flight_number": cheapest["flight_number"],
        "origin": "Austin",
        "destination": "San Francisco",
        "date": event["date"],
    }
    [row] = ledger.rows("invoices")
    assert row["amount_cents"] == round(cheapest["price_usd"] * 100)
    assert TUTORIAL_EVENT in done and cheapest["flight_number"] in done
    assert f"/pay/{row['id']}" in done
    # The conversation goes on: a question about the results, thanks, a new request.
    assert (
        c.say("what was the flight number?") == f"The flight number is {cheapest['flight_number']}."
    )
    assert c.say("thanks").startswith("You're welcome!")
    c.say("now events in Chicago in May")
    assert c.calls()[-1].args == {"city": "Chicago", "month": "May"}
    assert len(ledger.rows("invoices")) == 1


def test_off_topic_text_never_becomes_an_argument(ledger: Ledger) -> None:
    c = Conversation.of("travel")
    c.say("I'd like to see events in San Francisco in March")
    c.say("I want a pepperoni pizza delivered to my office")
    c.say("Denver")
    [search] = c.calls("search_flights")
    assert search.args["origin"] == "Denver"
    assert not any("pizza" in str(m.args) for m in c.calls())


@pytest.mark.parametrize(
    ("said", "origin"),
    [
        ("flying out of New York City", "New York"),
        ("I'm sorry. I'd like to depart from Austin, TX", "Austin"),
        ("Chicago", "Chicago"),
        ("from NYC please", "NYC"),
    ],
)
def test_where_a_trip_starts_comes_out_of_a_sentence(
    ledger: Ledger, said: str, origin: str
) -> None:
    c = Conversation.of("travel")
    c.say("Events in Boston in July")
    c.say(said)
    [search] = c.calls("search_flights")
    assert search.args["origin"] == origin
    assert c.results("search_flights")[0].ok


def test_picks_from_what_it_listed(ledger: Ledger) -> None:
    for words in ("the second one", "the earliest", "the shortest one"):
        c = Conversation.of("travel")
        c.say("Events in Seattle in April, flying from Denver")
        flights = c.results("search_flights")[0].content["flights"]
        c.say(words)
        c.say("ana@example.com")
        [invoice] = c.calls("create_invoice")
        expected = {
            "the second one": flights[1],
            "the earliest": min(flights, key=lambda f: f["departure_time"]),
            "the shortest one": min(flights, key=lambda f: f["duration_minutes"]),
        }[words]
        assert invoice.args["flight_number"] == expected["flight_number"], words
    named = Conversation.of("travel")
    named.say("Events in Seattle in April, flying from Denver")
    last = named.results("search_flights")[0].content["flights"][-1]
    named.say(f"I'll take {last['flight_number']}, invoice ana@example.com")
    assert named.calls("create_invoice")[0].args["flight_number"] == last["flight_number"]


def test_nothing_found_says_so_and_offers_other_months(ledger: Ledger) -> None:
    c = Conversation.of("travel")
    reply = c.say("Any music festivals in Chicago in June? I fly from Denver.")
    assert [m.tool for m in c.calls()] == ["find_events"]
    assert reply.startswith("I found no events in Chicago in June.")
    assert "February, May, August or November" in reply
    in_words(reply)
    listed = c.say("May then")
    assert [m.args for m in c.calls("find_events")][-1] == {"city": "Chicago", "month": "May"}
    # Denver, said at the start, is where the flights start.
    assert c.calls("search_flights")[0].args["origin"] == "Denver"
    assert "Architecture River Talks" in listed


def test_a_new_month_after_an_agreeing_word_searches_again(ledger: Ledger) -> None:
    c = Conversation.of("travel")
    c.say("any concerts in Chicago in June?")
    listed = c.say("ok, how about May then")
    assert [m.args["month"] for m in c.calls("find_events")] == ["June", "May"]
    assert "Architecture River Talks" in listed
    # A plain yes changes nothing it does not name.
    again = Conversation.of("travel")
    again.say("any concerts in Chicago in June?")
    again.say("yes please")
    assert [m.args["month"] for m in again.calls("find_events")] == ["June"]


def test_hesitation_gets_help_and_no_tool_call(ledger: Ledger) -> None:
    c = Conversation.of("travel")
    c.say("I'd like to see events in San Francisco in March")
    calls = len(c.calls())
    helped = c.say("hmm, not sure")
    assert len(c.calls()) == calls
    assert helped.startswith("No problem.") and "For example:" in helped
    assert helped.endswith("Where will you fly from?")
    first = Conversation.of("purchase")
    assert first.say("hmm, not sure").startswith("No problem.")
    assert first.calls() == []


def test_a_failed_call_is_explained_and_the_agent_carries_on(ledger: Ledger) -> None:
    c = Conversation.of("travel")
    c.say("Events in Boston in July")
    failed = c.say("I fly from Atlantis")
    assert not c.results("search_flights")[0].ok
    assert "no airport known for 'Atlantis'" in failed
    assert failed.endswith("Where will you fly from?")
    assert isinstance(c.decisions[-1], AskUser)
    c.say("Miami")
    assert c.results("search_flights")[-1].ok
    assert c.calls("search_flights")[-1].args["origin"] == "Miami"


def test_a_rejected_approval_is_explained_and_can_be_retried(ledger: Ledger) -> None:
    c = Conversation.of("travel", approve=False)
    c.say("Events in Boston in July, from Denver")
    rejected = c.say("yes, send it to ana@example.com")
    assert "I did not invoice the trip" in rejected and "rejected by the user" in rejected
    assert rejected.endswith("shall I try again?")
    c.approve = True
    done = c.say("yes, try again")
    assert isinstance(c.decisions[-1], Finish) and "/pay/" in done
    assert len(ledger.rows("invoices")) == 1


def test_purchase_of_two_mugs_in_words(ledger: Ledger) -> None:
    c = Conversation.of("purchase")
    asked = c.say("I'd like to buy two mugs please")
    assert c.calls()[0].args == {"sku": "MUG-1", "quantity": 2}
    assert "Enamel camp mug" in asked and "$36.00" in asked
    in_words(asked)
    c.say("tok_visa")
    charge = c.calls("charge_card")[0]
    assert charge.args["amount_usd"] == 36.0
    assert c.goal.tool("charge_card").approval == "confirm"  # type: ignore[union-attr]
    done = c.say("12 Elm St, Springfield")
    assert "tracking number 1ZON" in done
    assert [len(ledger.rows(t)) for t in ("reservations", "charges", "shipments")] == [1, 1, 1]


def test_a_declined_card_is_explained_and_another_asked_for(ledger: Ledger) -> None:
    c = Conversation.of("purchase")
    reply = c.say("Buy 1 BOOK-7 with tok_chargeDeclined")
    assert "the card was declined" in reply
    # The saga released the reservation; a new card starts the order over.
    assert "So I undid the earlier steps: release a reservation." in reply
    assert reply.endswith("For example: tok_visa, tok_mastercard or tok_amex.")
    c.say("tok_mastercard")
    assert c.results("charge_card")[-1].ok
    assert [r["status"] for r in ledger.rows("reservations")] == ["released", "held"]
    assert c.calls("charge_card")[-1].args["card_token"] == "tok_mastercard"


def test_the_saga_undo_is_told_and_the_work_is_not_called_done(ledger: Ledger) -> None:
    c = Conversation.of("purchase")
    c.say("Buy 1 FRAGILE-1 with tok_visa")
    reply = c.say("1 Glass Lane, Springfield")
    assert "the carrier cannot ship FRAGILE-1" in reply
    assert (
        "So I undid the earlier steps: refund a charge in full and release a reservation." in reply
    )
    assert isinstance(c.decisions[-1], AskUser)
    dump = ledger.dump()
    assert [r["status"] for r in dump["charges"]] == ["refunded"]
    assert [r["status"] for r in dump["reservations"]] == ["released"]


def test_support_answers_by_email_or_escalates(ledger: Ledger) -> None:
    c = Conversation.of("support")
    asked = c.say("How do I reset my password?")
    assert "How do I reset my password?" in asked
    assert asked.endswith("What email address should I send it to?")
    c.say("ana@example.com")
    [email] = c.calls("send_email")
    assert email.args["to"] == "ana@example.com"
    assert "Forgot password" in email.args["body"]
    hacked = Conversation.of("support")
    hacked.say("My account was hacked and someone deleted my notes!")
    assert [m.tool for m in hacked.calls()] == ["search_kb", "classify", "create_ticket"]
    assert hacked.calls("create_ticket")[0].args["category"] == "escalate"


def test_research_stores_a_report_citing_what_it_found(ledger: Ledger) -> None:
    c = Conversation.of("research")
    answer = c.say("What are the main causes of coral reef bleaching?")
    [store] = c.calls("store_report")
    assert store.args["sources"][0] == "doc-014"
    assert "[doc-014]" in store.args["body"] and "[doc-014]" in answer
    assert ledger.rows("reports")[0]["sources"][0] == "doc-014"


@pytest.mark.parametrize(
    ("goal", "text"),
    [
        ("research", "What are the main causes of coral reef bleaching?"),
        ("research-graph", "How do honeybees tell each other where flowers are?"),
        ("purchase", "I'd like to buy two mugs please"),
        ("concierge", "How do I export my notes?"),
        ("concierge", "I was charged twice this month, can you help?"),
        ("support", "My account is locked"),
        ("travel", "Any music festivals in Chicago in June? I fly from Denver."),
    ],
)
def test_a_plain_request_in_the_goals_domain_is_on_topic(goal: str, text: str) -> None:
    assert check_topic(GoalCatalog.discover().spec(goal), [], text).allowed


@pytest.mark.parametrize(
    ("goal", "text"),
    [
        ("travel", "I would like to order two double cheeseburgers."),
        ("purchase", "Write me a poem about the sea"),
        ("research-graph", "Book me a table for two tonight"),
        ("concierge", "Sing me a lullaby"),
    ],
)
def test_off_topic_is_refused_with_what_the_goal_does(goal: str, text: str) -> None:
    spec = GoalCatalog.discover().spec(goal)
    verdict = check_topic(spec, [], text)
    assert not verdict.allowed and verdict.reply
    assert spec.description.strip().rstrip(".")[1:] in verdict.reply


def test_every_question_of_the_bundled_goals_is_in_words() -> None:
    for name in ("travel", "purchase", "support", "research"):
        for tool in GoalCatalog.discover().spec(name).tools:
            for p in params_of(tool):
                if p.askable:
                    asked = question(p, tool)
                    in_words(asked)
                    assert asked.endswith(("?", ".", ")")), asked
                    assert not re.search(r"\(`?\w+`?\)\?", asked), asked


def test_the_model_decides_the_same_way_twice(ledger: Ledger) -> None:
    c = Conversation.of("travel")
    c.say("I'd like to see events in San Francisco in March")
    c.say("Denver")
    from onward.models.offline import plan_next

    before = c.messages[:-1]  # the transcript the last decision was made on
    first, second = plan_next(c.goal, before), plan_next(c.goal, before)
    assert first == second == c.decisions[-1]
    assert [type(d) for d in c.decisions] == [CallTools, AskUser, CallTools, AskUser]


def test_a_newer_request_wins_and_a_city_is_no_origin_unless_said(ledger: Ledger) -> None:
    c = Conversation.of("travel")
    c.say("Events in Paris in June")
    assert c.say("Boston then").startswith("I found no events in Boston in June.")
    reply = c.say("Actually make it Chicago in May")
    assert c.calls("find_events")[-1].args == {"city": "Chicago", "month": "May"}
    # Boston was where to look, not where the user flies from: that is asked.
    assert c.calls("search_flights") == []
    assert reply.endswith("Where will you fly from?")
