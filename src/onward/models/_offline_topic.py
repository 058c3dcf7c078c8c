"""The offline model's judgement of whether a user message belongs to the goal.

The same judgement runs on every turn, whatever came before it: a reply to a question
is on topic because it answers it (a city when a city was asked, yes or no to a
proposal, a pick from a list), not merely because a question was asked. Otherwise a
message is on topic when it shares meaningful words with the goal, its tools and their
choices, or with what the conversation's tools have returned; or, for a goal whose
tools take a free-text question, when it is a question.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from onward.agent.specs import GoalSpec
from onward.models._offline_args import Schema, choices, params_of, resolve
from onward.models._offline_say import label_of
from onward.models._offline_text import (
    DATE,
    EMAIL,
    NUMBER,
    content_words,
    is_greeting,
    is_hesitation,
    is_question,
    is_small_talk,
    is_thanks,
    words,
    wordset,
)

_GENERIC = wordset(
    "user customer people person thing item way time good great best nice new old kind "
    "type part lot bit step steps result results tool tools agent agents system model "
    "request answer question questions information detail details"
)
"""Words every goal's text uses; sharing one says nothing about the topic."""


def vocabulary(goal: GoalSpec) -> tuple[frozenset[str], frozenset[str]]:
    """The goal's meaningful words, and its agents' (a planner or router is about what
    they do): strong ones (names, the description, parameter choices) and weak ones
    (what the instructions and descriptions mention in passing)."""
    strong = [goal.name.replace("-", " ").replace("_", " "), goal.description]
    weak = [goal.instructions, goal.starter_prompt, *(e.user for e in goal.examples)]
    for spec in goal.tools:
        if not spec.model_visible:
            continue
        strong.append(spec.name.replace("_", " "))
        weak.append(spec.description)
        props = cast(Schema, spec.parameters.get("properties") or {})
        defs = cast(Schema, spec.parameters.get("$defs") or {})
        for name, prop in props.items():
            resolved = resolve(cast(Schema, prop), defs)
            strong.append(name.replace("_", " "))
            strong += [str(v) for v in choices(resolved)]
            strong += [str(t) for t in cast(list[Any], resolved.get("enum_titles") or [])]
            if isinstance(desc := resolved.get("description"), str):
                weak.append(desc)
    strong_words = set[str]().union(*(content_words(t) for t in strong)) - _GENERIC
    weak_words = set[str]().union(*(content_words(t) for t in weak)) - _GENERIC
    for agent in goal.agents:
        more_strong, more_weak = vocabulary(agent)
        strong_words |= more_strong
        weak_words |= more_weak
    return frozenset(strong_words), frozenset(weak_words - strong_words)


def result_words(contents: Iterable[Any]) -> frozenset[str]:
    """Words of the names the tools returned (events, flights, products): a user who
    names one is talking about this conversation."""
    found: set[str] = set()
    for content in contents:
        for item in _items(content):
            found |= content_words(label_of(item))
    return frozenset(found - _GENERIC)


def _items(content: Any) -> Iterable[Schema]:
    if isinstance(content, dict):
        content = cast(Schema, content)
        yield content
        for value in content.values():
            if isinstance(value, list):
                yield from (cast(Schema, v) for v in cast(list[Any], value) if isinstance(v, dict))
    elif isinstance(content, list):
        yield from (cast(Schema, v) for v in cast(list[Any], content) if isinstance(v, dict))


def takes_questions(goal: GoalSpec) -> bool:
    """Whether a tool of the goal (or of one of its agents) takes a free-text question."""
    for spec in goal.tools:
        if spec.model_visible and any(p.is_free_text and p.required for p in params_of(spec)):
            return True
    return any(takes_questions(a) for a in goal.agents)


def _takes(goal: GoalSpec) -> frozenset[str]:
    """Which bare values the goal's tools take: `email`, `date`, `number`."""
    kinds: set[str] = set()
    for spec in goal.tools:
        for p in params_of(spec):
            if p.is_email:
                kinds.add("email")
            if p.is_date:
                kinds.add("date")
            if p.kind in ("integer", "number"):
                kinds.add("number")
    for agent in goal.agents:
        kinds |= _takes(agent)
    return frozenset(kinds)


class TopicJudge:
    """The judgement for one goal (its vocabulary is worked out once)."""

    def __init__(self, goal: GoalSpec) -> None:
        self.goal = goal
        self._vocabulary: tuple[frozenset[str], frozenset[str]] | None = None
        self._takes: frozenset[str] | None = None
        self._questions: bool | None = None

    @property
    def words(self) -> tuple[frozenset[str], frozenset[str]]:
        """(strong, weak) vocabulary."""
        if self._vocabulary is None:
            self._vocabulary = vocabulary(self.goal)
        return self._vocabulary

    def on_topic(self, text: str, *, answers: bool, seen: frozenset[str] = frozenset()) -> bool:
        """Whether `text` fits the goal. `answers`: it gives what the agent just asked
        for; `seen`: words of what the conversation's tools returned."""
        if answers or is_small_talk(text) or is_thanks(text) or is_greeting(text):
            return True
        if is_hesitation(text):
            return True
        strong, weak = self.words
        said = content_words(text)
        # One word in passing ("order" from "in departure order") is no topic.
        if said & (strong | seen) or len(said & weak) >= 2:
            return True
        if self._takes is None:
            self._takes = _takes(self.goal)
        stripped = text.strip().rstrip(".")
        bare = (
            ("email", EMAIL.fullmatch(stripped)),
            ("date", DATE.fullmatch(stripped)),
            ("number", NUMBER.fullmatch(stripped)),
        )
        if any(found and kind in self._takes for kind, found in bare):
            return True
        if self._questions is None:
            self._questions = takes_questions(self.goal)
        return is_question(text) and self._questions and len(words(text)) >= 3
