"""Arguments for a tool call, from what the conversation already holds.

Sources, surest first, so a value is never given to two parameters:

1. same-named fields of earlier results (the picked item of a list first) and calls;
2. the user's newest turn that gives one: a reply to a question that asked for the
   parameter, or a request's words (choices, numbers, dates, emails, names after
   "from"/"to"/"in"; a free-text parameter takes the latest request as it is);
3. a result's value that is one of the parameter's choices (the event's city as the
   flight's destination, taken before the user's words for that role; never where a
   trip starts, which only the user can say);
4. what the agent writes itself from what it found: a title, a report or an answer
   (cited), the ids of the documents it used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from onward.agent.specs import ToolSpec
from onward.models._offline_args import Param, Schema, params_of, same, value_in
from onward.models._offline_say import noun
from onward.models._offline_state import State, Step, Task, default_item, effective_pick
from onward.models._offline_text import content_words

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_TEXT_KEYS = ("text", "body", "content", "description", "snippet")


@dataclass
class Fill:
    args: Schema = field(default_factory=dict[str, Any])
    missing: list[Param] = field(default_factory=list[Param])
    """Required parameters to ask the user for."""
    unfillable: list[Param] = field(default_factory=list[Param])
    """Required parameters nobody can give now (an id no result holds, a text with
    nothing to write it from)."""
    pick_step: int | None = None
    """A step whose list the user must pick from first."""

    @property
    def complete(self) -> bool:
        return not self.missing and not self.unfillable and self.pick_step is None


def _chosen(step: Step, task: Task, spec: ToolSpec, proceed: bool) -> int | None:
    chosen = effective_pick(step, task, spec.name)
    found = step.listing
    if chosen is None and proceed and found is not None and found[1]:
        return default_item(found[1])
    return chosen


def _from_steps(task: Task, spec: ToolSpec, p: Param, fill: Fill, proceed: bool) -> Any:
    for index in range(len(task.steps) - 1, -1, -1):
        step = task.steps[index]
        found = step.listing
        item: Schema | None = None
        if found is not None:
            chosen = _chosen(step, task, spec, proceed)
            if chosen is not None:
                item = found[1][chosen]
            elif p.composed:
                continue  # written from all the items, not taken from one
            elif found[1] and p.name in found[1][0]:
                fill.pick_step = index if fill.pick_step is None else fill.pick_step
                return None
        for source in (item or {}, step.top, step.call.args):
            value = source.get(p.name)
            if value is not None and not isinstance(value, list | dict):
                return value
    return None


def _from_fit(task: Task, spec: ToolSpec, p: Param, proceed: bool) -> Any:
    if not p.choices or p.role == "start":
        return None
    for step in reversed(task.steps):
        found = step.listing
        chosen = _chosen(step, task, spec, proceed) if found else None
        sources = [step.top] + ([found[1][chosen]] if found and chosen is not None else [])
        for source in sources:
            for value in source.values():
                if isinstance(value, str) and any(same(value, c) for c in p.choices):
                    return next(c for c in p.choices if same(value, c))
    return None


def _from_turns(task: Task, spec: ToolSpec, p: Param, used: set[str]) -> Any:
    """The newest turn that gives a value: a reply to a question that asked for `p`
    (as a whole, if it asked for nothing else), else the words of a request."""
    for turn in reversed(task.turns):
        intent = turn.intent
        if intent is not None and intent.tool == spec.name and p.name in intent.params:
            value = value_in(p, turn.text, used, answer=len(intent.params) == 1)
        elif p.is_free_text:
            value = turn.text.strip() if turn.kind == "request" else None
        elif turn.kind in ("request", "answer", "pick"):
            value = value_in(p, turn.text, used)
        else:
            value = None
        if value is not None:
            return value
    return None


def request_text(task: Task) -> str:
    """What the user asked for in this task, as they said it."""
    for step in reversed(task.steps):
        for key, value in step.call.args.items():
            if key.split("_")[-1] in ("query", "question", "topic") and isinstance(value, str):
                return value
    requests = [t.text for t in task.turns if t.kind == "request"]
    return (requests[-1] if requests else "").strip()


def _text_items(task: Task, spec: ToolSpec) -> tuple[Step, list[Schema]] | None:
    for step in reversed(task.steps):
        found = step.listing
        if found is None or not found[1]:
            continue
        chosen = effective_pick(step, task, spec.name)
        items = [found[1][chosen]] if chosen is not None else relevant(found[1])
        if any(isinstance(i.get(k), str) for i in items for k in _TEXT_KEYS):
            return step, items
    return None


def relevant(items: list[Schema]) -> list[Schema]:
    """Ranked hits worth citing: those scoring at least half the best one's score."""
    scores = [i.get("score") for i in items]
    if not items or not all(isinstance(v, int | float) for v in scores):
        return items
    best = max(float(v) for v in scores if isinstance(v, int | float))
    return [i for i in items if isinstance(s := i.get("score"), int | float) and s >= best / 2]


def _text_of(item: Schema) -> str:
    return next((str(item[k]) for k in _TEXT_KEYS if isinstance(item.get(k), str)), "")


def _compose(task: Task, spec: ToolSpec, p: Param) -> Any:
    if not p.composed:
        return None
    limit = p.schema.get("maxLength")
    asked = request_text(task)
    found = _text_items(task, spec)
    if p.is_id_list:
        if found is None:
            return None
        ids = [str(i["id"]) for i in found[1] if isinstance(i.get("id"), str)]
        return ids or None
    if p.is_title:
        if not asked:
            return None
        text = ("Re: " if "subject" in p.parts else "") + asked[:1].upper() + asked[1:]
        return text[: limit if isinstance(limit, int) else 200]
    if found is None:
        return None
    items = found[1]
    cites = any(q.is_id_list for q in params_of(spec))
    if cites:
        lines = [f"What the documents say about “{asked}”:" if asked else "Findings:"]
        for item in items[:5]:
            first = _SENTENCE.split(_text_of(item).strip(), maxsplit=1)[0]
            lines.append(f"- {first} [{item.get('id')}]")
        return "\n".join(lines)
    best = items[0]
    source = f"“{best.get('title')}”" if best.get("title") else ""
    source += f" ({best['id']})" if isinstance(best.get("id"), str) else ""
    return _text_of(best).strip() + (f"\n\nSource: {source.strip()}" if source else "")


def fill(st: State, spec: ToolSpec, *, proceed: bool = False) -> Fill:
    """Arguments for `spec`'s required parameters (see the module docstring).
    `proceed`: take the proposed item of a list nobody picked from yet."""
    task = st.task
    result = Fill()
    required = [p for p in params_of(spec) if p.required]
    used: set[str] = set()
    pending: list[Param] = []

    def take(p: Param, value: Any) -> bool:
        if value is None or str(value).casefold() in task.rejected.get(p.name, set()):
            return False
        result.args[p.name] = value
        used.add(str(value).casefold())
        return True

    for p in required:
        if not take(p, _from_steps(task, spec, p, result, proceed)):
            pending.append(p)
    # Where a trip ends is where the thing found is: results first for that role.
    ends = [p for p in pending if p.role == "end" and take(p, _from_fit(task, spec, p, proceed))]
    still = [p for p in pending if p not in ends]
    still = [p for p in still if not take(p, _from_turns(task, spec, p, used))]
    still = [p for p in still if not take(p, _from_fit(task, spec, p, proceed))]
    still = [p for p in still if not take(p, _compose(task, spec, p))]
    for p in still:
        (result.missing if p.askable else result.unfillable).append(p)
    result.args = {p.name: result.args[p.name] for p in required if p.name in result.args}
    return result


def fillable_from_words(st: State, spec: ToolSpec) -> bool:
    """Whether the user's words alone give every required argument of `spec`."""
    used: set[str] = set()
    for p in (q for q in params_of(spec) if q.required):
        value = _from_turns(st.task, spec, p, used)
        if value is None:
            return False
        used.add(str(value).casefold())
    return True


def named_in(texts: list[str], spec: ToolSpec) -> bool:
    """Whether the user named what the tool makes ("invoice" for `create_invoice`)."""
    wanted = content_words(noun(spec))
    return bool(wanted) and any(wanted <= content_words(t) for t in texts)
