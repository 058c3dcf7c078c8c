"""Whatever the transcript holds, the offline model answers with a decision the
workflow accepts: seeded random user texts and odd tool results, for every goal."""

from __future__ import annotations

import random
from typing import Any

import pytest

from onward.agent.decisions import CallTools
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.agent.plans import decision_problem
from onward.goals.catalog import GoalCatalog
from onward.models.offline import plan_next

TEXTS = [
    "",
    "   ",
    "yes",
    "no",
    "the first one",
    "the cheapest",
    "number 99",
    "hmm, not sure",
    "thanks!",
    "What was the flight number?",
    "I'd like to see events in San Francisco in March",
    "I'm sorry. I'd like to depart from Austin, TX",
    "Buy 2 MUG-1 with tok_visa to 1 Main St, Springfield",
    "ana@example.com",
    "2030-02-30",
    "-1",
    "9" * 40,
    "<script>alert(1)</script>",
    "from from from to to in in",
    "Ünïcødé 🚀 ✈️ città",
    "x" * 3000,
    "'; DROP TABLE invoices; --",
    '{"name": "refund_charge", "arguments": {}}',
]
CONTENTS: list[Any] = [
    None,
    "text",
    42,
    [],
    [1, 2],
    {},
    {"events": []},
    {"events": [{}]},
    {"events": [{"name": None, "date": 5}]},
    {"flights": [{"price_usd": "free", "flight_number": 7}], "alternatives": {"month": []}},
    {"hits": [{"id": 1, "text": None, "score": "high"}], "sources": [None]},
    {"alternatives": {"nope": ["x"]}, "note": 3},
    {"reservation_id": {"nested": True}, "amount_usd": [1]},
]


@pytest.mark.parametrize("seed", range(6))
def test_random_transcripts_never_break_the_offline_model(seed: int) -> None:
    rng = random.Random(seed)
    catalog = GoalCatalog.discover()
    for name in sorted(catalog.goals):
        spec = catalog.spec(name)
        visible = [t.name for t in spec.tools if t.model_visible] or ["anything"]
        messages: list[Message] = []
        for i in range(25):
            roll = rng.random()
            if roll < 0.45:
                messages.append(UserMessage(text=rng.choice(TEXTS) or "?"))
                judge = True
            elif roll < 0.8:
                tool = rng.choice([*visible, "unknown_tool"])
                cid = f"offline-{i}"
                messages.append(ToolCallMessage(call_id=cid, tool=tool, args={"x": i}))
                ok = rng.random() < 0.7
                messages.append(
                    ToolResultMessage(
                        call_id=cid,
                        tool=tool,
                        ok=ok,
                        content=rng.choice(CONTENTS) if ok else None,
                        error=None if ok else rng.choice(["invalid arguments: x: bad", "boom", ""]),
                    )
                )
                judge = False
            elif roll < 0.9:
                messages.append(AssistantMessage(text=rng.choice(TEXTS) or "."))
                judge = False
            else:
                messages.append(NoticeMessage(text="A notice", code=rng.choice([None, "x"])))
                judge = False
            decision = plan_next(spec, messages, judge=judge)
            problem = decision_problem(spec, decision, review=False, check_topic=judge)
            assert problem is None, (name, seed, i, decision, problem)
            if isinstance(decision, CallTools):
                assert {c.tool for c in decision.calls} <= set(visible), (name, decision)
