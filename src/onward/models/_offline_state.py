"""What the offline model knows of a conversation, read from its transcript.

Work is split into tasks: a task starts with a request and collects the user's turns
and the tool calls that succeeded for it; it ends with the answer (a follow-up
request starts the next one) or when a failure undid it. Each user turn is read in
the light of what the agent had just said (its `Intent`, see `_offline_reader`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

from onward.agent.decisions import Decision
from onward.agent.messages import ToolCallMessage, ToolResultMessage
from onward.agent.specs import GoalSpec, ToolSpec
from onward.models._offline_args import Schema
from onward.models._offline_picks import named_pick, superlative_pick
from onward.models._offline_say import is_money
from onward.models._offline_text import stem, words
from onward.models._offline_topic import TopicJudge, result_words

IntentKind = Literal["ask", "confirm", "none_found", "failed", "done", "greet"]
TurnKind = Literal[
    "request", "answer", "pick", "yes", "no", "thanks", "greeting", "hesitation", "question"
]


@dataclass(frozen=True)
class Intent:
    """What the agent's message was waiting for."""

    kind: IntentKind
    tool: str | None = None
    params: tuple[str, ...] = ()
    """Parameters of `tool` it asked for."""
    listing: int | None = None
    """Index (in the task's steps) of the list it asked the user to pick from."""
    default: int | None = None
    """The item of that list it proposed."""


@dataclass(frozen=True)
class Plan:
    decision: Decision
    intent: Intent


@dataclass
class Turn:
    text: str
    intent: Intent | None
    on_topic: bool
    kind: TurnKind = "request"


@dataclass
class Step:
    """A tool call that succeeded, with its result and the item picked from its list."""

    call: ToolCallMessage
    spec: ToolSpec
    content: Any
    pick: int | None = None
    picks: dict[tuple[int, int | None, str | None], int | None] = field(
        default_factory=dict[tuple[int, int | None, str | None], int | None], repr=False
    )
    """`effective_pick` answers, by (turns seen, pick, next tool): it is asked often."""

    @property
    def listing(self) -> tuple[str, list[Schema]] | None:
        return listing_of(self.spec, self.content)

    @property
    def top(self) -> Schema:
        return cast(Schema, self.content) if isinstance(self.content, dict) else {}


_LIST_WORDS = frozenset({"result", "item", "match", "hit", "record", "option"})


def listing_of(spec: ToolSpec, content: Any) -> tuple[str, list[Schema]] | None:
    """The list of things a tool found: its first list of objects; or an empty list
    its name or the first line of its description names (`events` for "Find events
    in a city during a month"), which means it found nothing."""
    if isinstance(content, list) and all(isinstance(v, dict) for v in cast(list[Any], content)):
        return "results", cast(list[Schema], content)
    if not isinstance(content, dict):
        return None
    lists = [
        (key, cast(list[Any], value))
        for key, value in cast(Schema, content).items()
        if isinstance(value, list) and all(isinstance(v, dict) for v in cast(list[Any], value))
    ]
    for key, items in lists:
        if items:
            return key, cast(list[Schema], items)
    summary = spec.description.strip().split("\n")[0]
    named = {stem(w) for w in words(f"{spec.name.replace('_', ' ')} {summary}")} | _LIST_WORDS
    for key, _ in lists:
        if stem(key.split("_")[-1]) in named:
            return key, []
    return None


@dataclass
class Failure:
    call: ToolCallMessage | None
    result: ToolResultMessage


@dataclass
class Task:
    turns: list[Turn] = field(default_factory=list[Turn])
    steps: list[Step] = field(default_factory=list[Step])
    failure: Failure | None = None
    failure_seen: bool = False
    undone: list[str] = field(default_factory=list[str])
    over: bool = False
    consent: set[str] = field(default_factory=set[str])
    rejected: dict[str, set[str]] = field(default_factory=dict[str, set[str]])
    declined: bool = False

    @property
    def started(self) -> bool:
        return bool(self.turns or self.steps)


@dataclass
class State:
    goal: GoalSpec
    judge: TopicJudge
    tasks: list[Task] = field(default_factory=lambda: [Task()])
    latest: Turn | None = None
    fresh: bool = False
    intent: Intent | None = None
    calls: dict[str, ToolCallMessage] = field(default_factory=dict[str, ToolCallMessage])
    call_count: int = 0
    new_from: int = 0
    """Index of the first step of the task the agent has not talked about yet."""
    seen: frozenset[str] = frozenset()
    """Words of the names the tools returned so far (`result_words`)."""

    @property
    def task(self) -> Task:
        return self.tasks[-1]

    def seen_words(self) -> frozenset[str]:
        return self.seen

    def saw(self, content: Any) -> None:
        self.seen = self.seen | result_words([content])


def effective_pick(step: Step, task: Task, next_tool: str | None = None) -> int | None:
    """The item of `step`'s list the work goes on with: the one picked, the only one,
    the one a superlative in the user's words names ("the cheapest"), or the proposed
    one once the user agreed to the next step."""
    key = (len(task.turns), step.pick, next_tool if next_tool in task.consent else None)
    if key not in step.picks:
        step.picks[key] = _effective_pick(step, task, next_tool)
    return step.picks[key]


def _effective_pick(step: Step, task: Task, next_tool: str | None) -> int | None:
    found = step.listing
    if found is None or not found[1]:
        return None
    items = found[1]
    if step.pick is not None and -len(items) <= step.pick < len(items):
        return step.pick % len(items)
    if len(items) == 1:
        return 0
    for turn in reversed(task.turns):
        if (chosen := superlative_pick(turn.text, items)) is not None:
            return chosen
        if (chosen := named_pick(turn.text, items)) is not None:
            return chosen
    if next_tool is not None and next_tool in task.consent:
        return default_item(items)
    return _used_later(step, task, items)


def _used_later(step: Step, task: Task, items: list[Schema]) -> int | None:
    """The item a later call took its arguments from (its flight number, its date)."""
    later = task.steps[task.steps.index(step) + 1 :] if step in task.steps else []
    for other in later:
        for key, value in other.call.args.items():
            hits = [i for i, item in enumerate(items) if key in item and item[key] == value]
            if len(hits) == 1:
                return hits[0]
    return None


def default_item(items: list[Schema]) -> int:
    """What to propose from a list: the cheapest, if the items have a price; else the
    first (lists come best first)."""
    priced = [
        (float(v), i)
        for i, item in enumerate(items)
        for k, v in item.items()
        if is_money(k) and isinstance(v, int | float)
    ]
    return min(priced)[1] if priced else 0
