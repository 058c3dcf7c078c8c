"""Multi-agent goals: a trip planner that delegates to the travel agent and has its
options reviewed, and a concierge that hands the conversation to the right agent.

Goals refer to each other by name; `Goal.spec()` resolves the names when a
conversation starts, so these may be defined before or after the goals they use.
"""

from __future__ import annotations

from onward.agent.specs import ExampleTurn
from onward.goals.base import Goal

TRIP_REVIEWER = Goal(
    name="trip-reviewer",
    description="Review trip options: each must be a complete trip, all to different places.",
    instructions=(
        "You review trip options proposed by a trip planner before the user sees them.\n"
        "Approve only when every option is a complete trip: an event (name and date) in a "
        "city, and a flight to that city (flight number, times and price) taken from the "
        "travel agent's results; and when no two options go to the same destination.\n"
        "Otherwise reject, and say concretely which option is incomplete or repeats "
        "another's destination, and what is missing (for example: `option 2 has no "
        "flight`, `options 1 and 3 both go to Chicago`). Never ask for things the user "
        "did not want."
    ),
    # Registered so `reviewer="trip-reviewer"` resolves by name; users never start it.
    listed=False,
)

TRIP_PLANNER = Goal(
    name="trip-planner",
    description="Plan several trips or vacations at once, each with an event and a flight, "
    "checked by a reviewer.",
    instructions=(
        "You plan trips and vacations to events in North American cities by delegating "
        "to the travel agent.\n"
        "1. Work out how many options the user wants (one if they do not say) and what "
        "they care about: places, months, kinds of events, where they fly from.\n"
        "2. Delegate one step per option to `travel`. Make each instruction complete on "
        "its own: a different city and month for each option, the kind of event, and the "
        "city the user flies from. Tell the agent to find an event and the cheapest "
        "flight, and not to create an invoice.\n"
        "3. Finish with the options, one per line: event, date, city, flight and price.\n"
        "If the reviewer rejects the options, plan again and change only the options its "
        "feedback names."
    ),
    agents=["travel"],
    reviewer="trip-reviewer",
    max_review_rounds=2,
    plan_deadline_s=3600,
    max_plan_steps=5,
    starter_prompt="How many trips should I plan, and when? For example: plan me three "
    "vacations next year, flying from Denver.",
    examples=[
        ExampleTurn(
            user="Plan me three vacations next year, flying from Denver.",
            assistant="(delegates three steps to travel: an event and a flight from Denver "
            "in Chicago in May, in Austin in October and in Montreal in July)",
        )
    ],
)

CONCIERGE = Goal(
    name="concierge",
    description="Front desk: hands your request to the travel, research, support or "
    "purchase agent.",
    instructions=(
        "You are the front desk. Find out what the user needs and hand the conversation "
        "to the agent for it:\n"
        "- travel: events in North American cities, flights to them, trip invoices;\n"
        "- research: questions answered from the document collection in a cited report;\n"
        "- support: questions about the Lumen Notes app, or a ticket for a human;\n"
        "- purchase: buying a product from the catalog.\n"
        "Do not do their work yourself. If the request fits none of them, say what you "
        "can help with; if it is unclear which fits, ask one short question."
    ),
    agents=["travel", "research", "support", "purchase"],
    handoff=True,
    starter_prompt="Hello! I can help with travel, research, app support and purchases. "
    "What do you need?",
)
