"""The offline model's multi-agent decisions: planner, router and reviewer.

Deterministic like the rest of the offline model: the same goal and transcript always
give the same decision, so replays and retries agree.

- A planner (a goal with agents that is not a router) delegates: without a plan result
  since the latest user message it plans N steps (N from the user's words: digits or
  `one`..`ten` before a plural, default 1, at most `max_plan_steps`), each for the agent
  whose words best match the request and each with its own pick of the choices the
  request leaves open (a city, a month); with one, it finishes with the steps' answers,
  one per line. After a reviewer's rejection (a notice with that code) it plans again:
  the same steps, which the workflow does not run twice, so only failed or cancelled
  ones are retried.
- A router hands the conversation to the agent whose words best match the latest user
  message, and asks which agent is wanted when none matches or several match equally.
- A reviewer approves a draft unless it is empty or reports a failure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, cast

from onward.agent.decisions import (
    HANDOFF_TOOL,
    PLAN_TOOL,
    AskUser,
    Decision,
    Finish,
    Handoff,
    PlanStep,
    Review,
    RunPlan,
)
from onward.agent.messages import (
    NOTICE_REVIEW_REJECTED,
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.agent.plans import REVIEW_REJECTED
from onward.agent.specs import GoalSpec
from onward.models._offline_args import Schema, choice_titles, choices, resolve
from onward.models._offline_text import ACKS, WORD, content_words

FAILURE_WORDS = ("could not", "failed", "cancelled")
"""Words in a draft that mean part of the work was not done."""
NUMBER_WORDS = {
    word: i
    for i, word in enumerate(
        ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"), 1
    )
}
_MAX_DRAFT_QUOTE = 120
# A count of things asked for: a number, then (after at most one other word) a plural,
# as in "three vacations" or "2 different trips". A lone number ("May 5") is no count.
_COUNT = re.compile(
    r"\b(\d{1,2}|" + "|".join(NUMBER_WORDS) + r")\s+(?:[a-z-]+\s+)?[a-z]+s\b", re.IGNORECASE
)


def team_decision(goal: GoalSpec, messages: Sequence[Message], *, review: bool) -> Decision | None:
    """The decision of a reviewer, router or planner; None for an ordinary goal."""
    if review:
        return review_draft(messages)
    if goal.agents and goal.handoff:
        return route(goal, messages)
    if goal.agents:
        return plan_or_combine(goal, messages)
    return None


def is_team_message(goal: GoalSpec, message: Message) -> bool:
    """A `delegate` or `handoff` entry of the transcript (unless the goal has a tool of
    that name): an ordinary agent that was handed the conversation ignores them."""
    if not isinstance(message, ToolCallMessage | ToolResultMessage):
        return False
    return message.tool in (PLAN_TOOL, HANDOFF_TOOL) and goal.tool(message.tool) is None


# ---------------------------------------------------------------------- matching


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_SHORT_STOPWORDS = _wordset(
    "all and any are but can did for get got had has her him his how its let may not now "
    "off one our out own she six ten the too two use was way who why won yes yet you"
)


def _words(text: str) -> set[str]:
    """Content words, plus three-letter ones (`buy`, `app`, `fly`) that say a lot."""
    short = {w for w in WORD.findall(text.lower()) if len(w) == 3 and w not in _SHORT_STOPWORDS}
    return content_words(text) | short


def _agent_words(agent: GoalSpec) -> tuple[set[str], set[str]]:
    """An agent's words: its name and description (strong), and the rest of what it
    says about itself, its examples and its tools, including parameter choices such as
    city names (weak)."""
    strong = _words(f"{agent.name.replace('-', ' ').replace('_', ' ')} {agent.description}")
    texts = [agent.instructions, agent.starter_prompt, *(e.user for e in agent.examples)]
    for spec in (t for t in agent.tools if t.model_visible):
        texts += [spec.name.replace("_", " "), spec.description]
        props = cast(Schema, spec.parameters.get("properties") or {})
        defs = cast(Schema, spec.parameters.get("$defs") or {})
        for prop in props.values():
            resolved = resolve(cast(Schema, prop), defs)
            texts += [str(v) for v in choices(resolved)] + choice_titles(resolved)
    weak = set[str]().union(*(_words(t) for t in texts))
    return strong, weak - strong


def rank_agents(goal: GoalSpec, text: str) -> list[tuple[float, GoalSpec]]:
    """The agents that share words with `text`, best first (stable on ties).

    A shared word scores 2 in an agent's name or description and 1 elsewhere, divided
    by the number of agents that know it, so words every agent uses decide little. An
    agent named outright (the answer to "which one?") wins.
    """
    words = _words(text)
    lowered = text.lower()
    vocab = [(agent, *_agent_words(agent)) for agent in goal.agents]
    known: dict[str, int] = {}
    for _, strong, weak in vocab:
        for w in strong | weak:
            known[w] = known.get(w, 0) + 1
    scored: list[tuple[float, GoalSpec]] = []
    for agent, strong, weak in vocab:
        score = sum((2 if w in strong else 1) / known[w] for w in words & (strong | weak))
        if re.search(rf"(?<![\w-]){re.escape(agent.name.lower())}(?![\w-])", lowered):
            score += 100
        if score > 0:
            scored.append((score, agent))
    return sorted(scored, key=lambda pair: -pair[0])


def best_agent(goal: GoalSpec, text: str) -> GoalSpec | None:
    """The best-matching agent (the earlier one on a tie), or None if none matches."""
    ranked = rank_agents(goal, text)
    return ranked[0][1] if ranked else None


def _agent_list(goal: GoalSpec) -> str:
    return "\n".join(f"- {a.name}: {a.description.strip()}" for a in goal.agents)


def _latest_user(messages: Sequence[Message]) -> tuple[int, str]:
    """Index just after the latest user message, and its text (0 and "" if none)."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, UserMessage):
            return i + 1, m.text.strip()
    return 0, ""


def _is_small_talk(text: str) -> bool:
    words = WORD.findall(text.lower())
    return not words or all(w in ACKS for w in words)


# ---------------------------------------------------------------------- router


def route(goal: GoalSpec, messages: Sequence[Message]) -> Decision:
    """Hand off to the best-matching agent, or ask which one is wanted."""
    _, text = _latest_user(messages)
    ranked = rank_agents(goal, text) if text else []
    tied = [agent for score, agent in ranked if score == ranked[0][0]]
    if len(tied) == 1:
        calls = sum(isinstance(m, ToolCallMessage) for m in messages)
        return Handoff(call_id=f"offline-handoff-{calls + 1}", goal=tied[0].name)
    if tied:
        names = " or ".join(a.name for a in tied)
        return AskUser(text=f"Should {names} take care of this? Please name one.")
    return AskUser(
        text="Which of these can I help you with? Name one, or say a bit more about what "
        f"you need:\n{_agent_list(goal)}"
    )


# ---------------------------------------------------------------------- planner


def step_count(text: str, limit: int) -> int:
    """How many options the user asked for: `three vacations` -> 3; 1 if not said."""
    for found in _COUNT.finditer(text):
        raw = found.group(1).lower()
        n = NUMBER_WORDS[raw] if raw in NUMBER_WORDS else int(raw)
        if n >= 1:
            return min(n, limit)
    return 1


def suggestions(agent: GoalSpec, text: str, n: int) -> list[list[str]]:
    """For each of `n` options, distinct values for the choices the request leaves
    open: the enum values or examples of the required parameters of the agent's first
    tool (a city, a month) that `text` does not mention, spread over their lists. A
    heuristic worded for places and times, like the bundled planner's.

    Without them `n` offline sub-agents given the same vague request would all ask the
    same question; with them each option starts somewhere else.
    """
    compensations = {t.compensation for t in agent.tools if t.compensation}
    first = next((t for t in agent.tools if t.name not in compensations), None)
    picks: list[list[str]] = [[] for _ in range(n)]
    if first is None:
        return picks
    props = cast(Schema, first.parameters.get("properties") or {})
    defs = cast(Schema, first.parameters.get("$defs") or {})
    lowered = text.lower()
    for name in cast(list[str], first.parameters.get("required") or []):
        options = [str(v) for v in choices(resolve(cast(Schema, props.get(name) or {}), defs))]
        # "flying from Denver" names where the user starts: no option's choice, and no
        # option goes there.
        starts = [o for o in options if _names(lowered, o, after="from ")]
        if any(_names(lowered, o) for o in options if o not in starts):
            continue
        options = [o for o in options if o not in starts]
        if len(options) < n:
            continue
        for k in range(n):
            picks[k].append(options[k * len(options) // n])
    return picks


def _names(lowered: str, option: str, after: str = "") -> bool:
    """Whether `lowered` names `option` as a word (right after `after`, if given)."""
    return re.search(rf"(?<!\w){re.escape(after + option.lower())}(?!\w)", lowered) is not None


def plan_steps(goal: GoalSpec, text: str) -> list[PlanStep]:
    """One step per option asked for, all for the best-matching agent (the first one
    when none matches); with several, each is told to differ from the others and, where
    the request leaves choices open, given its own (see `suggestions`)."""
    n = step_count(text, goal.max_plan_steps)
    agent = best_agent(goal, text) or goal.agents[0]
    request = text.rstrip(" .!?")
    if n == 1:
        return [PlanStep(id="step1", goal=agent.name, instruction=text)]
    steps: list[PlanStep] = []
    for k, picked in enumerate(suggestions(agent, text, n), 1):
        # "in Austin in January": `in` ties a place to the parameter it belongs to.
        example = ": in " + " in ".join(picked) if picked else ""
        steps.append(
            PlanStep(
                id=f"step{k}",
                goal=agent.name,
                instruction=f"{request} — option {k} of {n}{example}; make it different from "
                "the other options (choose a different destination, month or approach).",
            )
        )
    return steps


def plan_or_combine(goal: GoalSpec, messages: Sequence[Message]) -> Decision:
    """Plan, or combine the plan's results once they are in (see the module docstring)."""
    start, text = _latest_user(messages)
    result_at: int | None = None
    for i in range(start, len(messages)):
        m = messages[i]
        if isinstance(m, ToolResultMessage) and m.tool == PLAN_TOOL:
            result_at = i
    if result_at is not None:
        rejected = any(_rejection(m) for m in messages[result_at + 1 :])
        result = messages[result_at]
        assert isinstance(result, ToolResultMessage)
        if not rejected:
            return Finish(answer=combine(result))
    if _is_small_talk(text):
        intro = goal.starter_prompt.strip() or "What would you like me to work on?"
        return AskUser(text=f"{intro}\nI coordinate these agents:\n{_agent_list(goal)}")
    plans = sum(isinstance(m, ToolCallMessage) and m.tool == PLAN_TOOL for m in messages)
    return RunPlan(call_id=f"offline-plan-{plans + 1}", steps=plan_steps(goal, text))


def _rejection(message: Message) -> bool:
    """A reviewer's rejection: by its code; notices from before codes, by their text."""
    if not isinstance(message, NoticeMessage):
        return False
    if message.code is not None:
        return message.code == NOTICE_REVIEW_REJECTED
    return message.text.startswith(REVIEW_REJECTED)


_OUTCOME_LABELS = {
    "asked": "needs more information",
    "budget_exhausted": "stopped at its budget",
}
"""How an unfinished step is introduced; other outcomes (cancelled, failed) by name,
which is what the offline reviewer looks for."""


def _one_line(text: str) -> str:
    """A step's answer on one line: a list under a heading ("… what I did:") becomes
    its items joined by semicolons."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    items = [line.removeprefix("- ") for line in lines[1:]]
    if len(lines) > 1 and lines[0].endswith(":") and all(x.startswith("- ") for x in lines[1:]):
        return "; ".join(" ".join(i.split()) for i in items)
    return " ".join(text.split())


def combine(result: ToolResultMessage) -> str:
    """The steps' answers (or what stopped them), one line each."""
    content: Any = result.content
    raw = cast(Schema, content).get("steps") if isinstance(content, dict) else None
    steps = [cast(Schema, s) for s in cast(list[Any], raw or []) if isinstance(s, dict)]
    if not steps:
        return "The agents reported nothing."
    lines: list[str] = []
    for i, step in enumerate(steps, 1):
        outcome = str(step.get("outcome") or "failed")
        body = _one_line(str(step.get("answer") or step.get("partial") or ""))
        label = _OUTCOME_LABELS.get(outcome, outcome)
        if outcome != "finished" and not body.lower().startswith(label):
            body = label + (f": {body}" if body else "")
        lines.append(f"{i}. {body or 'no answer'}")
    return "\n".join(lines)


# ---------------------------------------------------------------------- reviewer


def review_draft(messages: Sequence[Message]) -> Review:
    """Approve the draft (the last assistant message) unless it is empty or reports a
    failure; the feedback quotes the lines that do."""
    last = messages[-1] if messages else None
    draft = last.text.strip() if isinstance(last, AssistantMessage) else ""
    if not draft:
        return Review(approved=False, feedback="The draft is empty: give a complete answer.")
    bad = [
        line.strip() for line in draft.splitlines() if any(w in line.lower() for w in FAILURE_WORDS)
    ]
    if not bad:
        return Review(approved=True)
    quoted = "; ".join(
        f"“{b[:_MAX_DRAFT_QUOTE]}{'…' if len(b) > _MAX_DRAFT_QUOTE else ''}”" for b in bad
    )
    return Review(
        approved=False,
        feedback=f"Part of the work was not done ({quoted}). Redo those parts or replace "
        "them before answering.",
    )
