"""Travel goal: find an event, find a flight to it, and invoice the trip.

Events come from a bundled data set (`data/events.json`); flights are generated from a
hash of the route and date, so the same question always gets the same schedule and
prices without any network. The invoice is the one real side effect: it is written to
the ledger and, when `ONWARD_STRIPE_API_KEY` is set, created through Stripe.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from datetime import date
from functools import cache
from importlib.resources import files
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.config import JsonDict, JsonValue

from onward.agent.specs import ExampleTurn
from onward.config import get_settings
from onward.examples._stripe_invoice import stripe_invoice
from onward.examples.ledger import ledger_for
from onward.examples.settings import example_settings
from onward.exceptions import ToolArgumentsError
from onward.goals.base import Goal
from onward.tools import ToolContext, tool

MonthName = Literal[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
MONTHS: tuple[str, ...] = MonthName.__args__

# City -> (airport, latitude, longitude, standard UTC offset in hours). Offsets ignore
# daylight saving time: the schedules are demo data and only need to be consistent.
AIRPORTS: dict[str, tuple[str, float, float, int]] = {
    "New York": ("JFK", 40.64, -73.78, -5),
    "Chicago": ("ORD", 41.98, -87.90, -6),
    "San Francisco": ("SFO", 37.62, -122.38, -8),
    "Seattle": ("SEA", 47.45, -122.31, -8),
    "Austin": ("AUS", 30.19, -97.67, -6),
    "New Orleans": ("MSY", 29.99, -90.26, -6),
    "Boston": ("BOS", 42.36, -71.01, -5),
    "Denver": ("DEN", 39.86, -104.67, -7),
    "Toronto": ("YYZ", 43.68, -79.63, -5),
    "Vancouver": ("YVR", 49.19, -123.18, -8),
    "Montreal": ("YUL", 45.47, -73.74, -5),
    "Mexico City": ("MEX", 19.44, -99.07, -6),
    "Los Angeles": ("LAX", 33.94, -118.41, -8),
    "Miami": ("MIA", 25.80, -80.29, -5),
    "Atlanta": ("ATL", 33.64, -84.43, -5),
    "Dallas": ("DFW", 32.90, -97.04, -6),
    "Washington": ("DCA", 38.85, -77.04, -5),
    "Phoenix": ("PHX", 33.43, -112.01, -7),
    "Minneapolis": ("MSP", 44.88, -93.22, -6),
    "Calgary": ("YYC", 51.13, -114.01, -7),
}
_ALIASES = {
    "nyc": "New York",
    "new york city": "New York",
    "sf": "San Francisco",
    "la": "Los Angeles",
    "nola": "New Orleans",
    "montréal": "Montreal",
    "cdmx": "Mexico City",
    "washington dc": "Washington",
    "washington, dc": "Washington",
}
_AIRLINES = (
    ("NS", "Northstar Air"),
    ("MJ", "Maple Jet"),
    ("PC", "Pacific Crest"),
    ("LS", "Lone Star Airways"),
    ("AV", "Aurora Velo"),
)


@cache
def load_events() -> tuple[dict[str, Any], ...]:
    """The bundled events (read once per process)."""
    text = files("onward.examples").joinpath("data/events.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["events"])


EVENT_CITIES: list[str] = sorted({e["city"] for e in load_events()})
FLIGHT_CITIES: list[str] = sorted(AIRPORTS)


def examples(values: list[str]) -> JsonDict:
    """JSON-schema `examples` for a parameter: values a model can offer and recognise."""
    listed: list[JsonValue] = [*values]
    return {"examples": listed}


def _city(name: str) -> str | None:
    wanted = name.strip().casefold()
    if wanted in _ALIASES:
        return _ALIASES[wanted]
    for city, (code, *_rest) in AIRPORTS.items():
        if wanted in (city.casefold(), code.casefold()):
            return city
    return None


def _next_occurrence(month: int, day: int, today: date) -> date:
    candidate = date(today.year, month, day)
    return candidate if candidate >= today else date(today.year + 1, month, day)


Origin = Annotated[
    str,
    Field(
        description="The city the traveller flies from.",
        json_schema_extra=examples(FLIGHT_CITIES),
    ),
]
Destination = Annotated[
    str,
    Field(
        description="The city the traveller flies to: where the event is.",
        json_schema_extra=examples(FLIGHT_CITIES),
    ),
]
TravelDate = Annotated[date, Field(description="Travel date, YYYY-MM-DD: the event's date.")]


@tool(local=True, timeout_s=5, follow_ups=["search_flights"])
def find_events(
    city: Annotated[
        str,
        Field(
            description="City to look in, e.g. `Chicago`.",
            json_schema_extra=examples(EVENT_CITIES),
        ),
    ],
    month: MonthName,
) -> dict[str, Any]:
    """Find events in a North American city during a month.

    Returns the events, each with its date (the next time that month comes round),
    venue and city. When there are none, `alternatives` lists the months (or cities)
    that do have events and `note` says so in words.
    """
    canonical = _city(city) or city.strip()
    month_number = MONTHS.index(month) + 1
    today = date.today()
    matches = [e for e in load_events() if e["city"] == canonical and e["month"] == month]
    events = sorted(
        (
            {
                "id": e["id"],
                "name": e["name"],
                "date": _next_occurrence(month_number, e["day"], today).isoformat(),
                "venue": e["venue"],
                "city": canonical,
                "category": e["category"],
                "description": e["description"],
            }
            for e in matches
        ),
        key=lambda e: e["date"],
    )
    result: dict[str, Any] = {"city": canonical, "month": month, "events": events}
    if not events:
        if canonical not in EVENT_CITIES:
            result["alternatives"] = {"city": EVENT_CITIES}
            result["note"] = f"No events known for {city!r}. Cities with events: " + ", ".join(
                EVENT_CITIES
            )
        else:
            other = [
                m
                for m in MONTHS
                if any(e["city"] == canonical and e["month"] == m for e in load_events())
            ]
            result["alternatives"] = {"month": other}
            result["note"] = f"No events in {canonical} in {month}; try: {', '.join(other)}."
    return result


def _distance_km(a: str, b: str) -> float:
    _, lat1, lon1, _ = AIRPORTS[a]
    _, lat2, lon2, _ = AIRPORTS[b]
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(h))


def _clock(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}"
    return f"{text}+{days}" if days else text


def flight_schedule(origin: str, destination: str, day: date) -> list[dict[str, Any]]:
    """The flights of a route on a day: deterministic, seeded by route and date."""
    seed = hashlib.sha256(f"{origin}|{destination}|{day.isoformat()}".encode()).hexdigest()
    rng = random.Random(int(seed[:16], 16))
    km = _distance_km(origin, destination)
    shift = (AIRPORTS[destination][3] - AIRPORTS[origin][3]) * 60
    flights: list[dict[str, Any]] = []
    for _ in range(rng.randint(3, 5)):
        code, airline = rng.choice(_AIRLINES)
        stops = 0 if km < 1200 or rng.random() < 0.6 else 1
        duration = round(km / 780 * 60 + 35 + stops * rng.randint(55, 120))
        departure = 6 * 60 + rng.randrange(0, 15 * 60, 5)
        price = max(59.0, 49 + km * 0.09 * rng.uniform(0.75, 1.45) - 30 * stops)
        flights.append(
            {
                "flight_number": f"{code}{rng.randint(100, 2999)}",
                "airline": airline,
                "departure_time": _clock(departure),
                "arrival_time": _clock(departure + duration + shift),
                "duration_minutes": duration,
                "stops": stops,
                "price_usd": round(price, 2),
            }
        )
    return sorted(flights, key=lambda f: f["departure_time"])


def _route(origin: str, destination: str) -> tuple[str, str]:
    known = ", ".join(FLIGHT_CITIES)
    src, dst = _city(origin), _city(destination)
    if src is None or dst is None:
        bad = origin if src is None else destination
        raise ToolArgumentsError(f"no airport known for {bad!r}; cities served: {known}")
    if src == dst:
        raise ToolArgumentsError("origin and destination are the same city")
    return src, dst


@tool(local=True, timeout_s=5, follow_ups=["create_invoice"])
def search_flights(origin: Origin, destination: Destination, date: TravelDate) -> dict[str, Any]:
    """Search flights between two North American cities on a date.

    Returns every flight of the day in departure order: number, airline, departure and
    arrival times (local), duration, stops and price.
    """
    src, dst = _route(origin, destination)
    return {
        "origin": src,
        "destination": dst,
        "date": date.isoformat(),
        "flights": flight_schedule(src, dst, date),
    }


def find_flight(origin: str, destination: str, day: date, flight_number: str) -> dict[str, Any]:
    """The scheduled flight `flight_number` of a route and day.

    Raises:
        ToolArgumentsError: no such route, or no such flight on it that day.
    """
    src, dst = _route(origin, destination)
    flights = flight_schedule(src, dst, day)
    wanted = flight_number.strip().upper()
    found = next((f for f in flights if f["flight_number"] == wanted), None)
    if found is None:
        listed = ", ".join(f["flight_number"] for f in flights)
        raise ToolArgumentsError(
            f"no flight {flight_number!r} from {src} to {dst} on {day.isoformat()}; "
            f"that day's flights: {listed}"
        )
    return {"origin": src, "destination": dst, **found}


def _local_pay_url(invoice_id: str) -> str:
    settings = get_settings()
    return f"http://{settings.api_host}:{settings.api_port}/pay/{invoice_id}"


@tool(approval="confirm", timeout_s=60)
def create_invoice(
    customer_email: Annotated[
        str,
        Field(
            pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            description="Who pays: the email address the invoice is sent to.",
            json_schema_extra={"format": "email"},
        ),
    ],
    flight_number: Annotated[
        str, Field(min_length=2, description="The chosen flight, from `search_flights`.")
    ],
    origin: Origin,
    destination: Destination,
    date: TravelDate,
    ctx: ToolContext,
    customer_name: str = "",
) -> dict[str, Any]:
    """Invoice the trip: the chosen flight at its scheduled price (needs approval).

    The amount and description come from the flight schedule, never from the caller.
    Returns the invoice id and its pay link.
    """
    flight = find_flight(origin, destination, date, flight_number)
    route = f"{flight['origin']} ({AIRPORTS[flight['origin']][0]}) to {flight['destination']} "
    route += f"({AIRPORTS[flight['destination']][0]})"
    description = (
        f"Flight {flight['flight_number']} ({flight['airline']}) {route} on {date.isoformat()}, "
        f"departing {flight['departure_time']}"
    )
    ledger = ledger_for(get_settings())
    key = ctx.idempotency_key
    configured = example_settings().stripe_api_key
    stripe_key = configured.get_secret_value() if configured else ""
    invoice = ledger.record_invoice(
        key,
        customer_email=customer_email,
        customer_name=customer_name,
        description=description,
        amount_cents=round(flight["price_usd"] * 100),
        provider="stripe" if stripe_key else "local",
        conversation_id=ctx.conversation_id,
    )
    if invoice.pay_url is None:
        # A retry after a crash between the two writes finishes the same invoice.
        if invoice.provider == "stripe":
            ref, url = stripe_invoice(stripe_key, key, invoice)
        else:
            ref, url = invoice.id, _local_pay_url(invoice.id)
        invoice = ledger.attach_payment_link(invoice.id, ref, url)
    return {
        "invoice_id": invoice.id,
        "pay_url": invoice.pay_url,
        "amount_usd": invoice.amount_cents / 100,
        "currency": invoice.currency,
        "customer_email": invoice.customer_email,
        "description": invoice.description,
        "status": invoice.status,
        "provider": invoice.provider,
    }


API_ROUTERS = ("onward.examples.pay:router",)
"""The pay page an invoice's link opens (`/pay/<invoice id>`)."""

CLI_COMMANDS = ("onward.examples.cli:ledger", "onward.examples.cli:chaos")
"""`onward ledger` and `onward chaos`: about every bundled goal, named here once."""

TRAVEL = Goal(
    name="travel",
    description="Find an event in a North American city, a flight to it, and invoice the trip.",
    instructions=(
        "You are a travel agent for events in North American cities.\n"
        "1. Learn the city and the month the user wants; call `find_events`. If it finds "
        "nothing, say so and offer its `alternatives` (other months or cities); do not "
        "go on to flights.\n"
        "2. Present the events by name, date and venue. Let the user pick one (or take "
        "the only one), learn where they fly from, then call `search_flights` with that "
        "origin, the event's city as destination and the event's date.\n"
        "3. Present the flights (airline, number, times, price) and propose the cheapest. "
        "When the user agrees and gives an email address, call `create_invoice` with the "
        "chosen flight's number, the route, the date and the email. A human must approve "
        "the invoice.\n"
        "4. Finish with the event, the flight and the invoice's pay link.\n"
        "Never invent events, flights or prices: only use what the tools return."
    ),
    tools=[find_events, search_flights, create_invoice],
    starter_prompt=("Where and when would you like to go? For example: events in Chicago in May."),
    examples=[
        ExampleTurn(
            user="What's on in Austin in November?",
            assistant="(calls find_events with city=Austin, month=November, then names the "
            "events with their dates and venues)",
        ),
        ExampleTurn(
            user="Book me a flight from Denver to the Austin music weekend.",
            assistant="(calls search_flights with origin=Denver, destination=Austin and the "
            "event date, then lists the flights and proposes the cheapest)",
        ),
    ],
)
