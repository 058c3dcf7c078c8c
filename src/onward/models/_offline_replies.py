"""The offline model's replies about results: what it just found, that nothing was
found (and what to try instead), why a call failed, the final answer, and answers to
questions about earlier results."""

from __future__ import annotations

import re
from typing import Any, cast

from onward.agent.decisions import AskUser
from onward.agent.specs import ToolSpec
from onward.models._offline_args import Param, Schema, params_of
from onward.models._offline_reader import implicated
from onward.models._offline_say import (
    capital,
    describe_item,
    facts,
    human,
    items_phrase,
    join,
    label_of,
    list_items,
    phrase,
    question,
    singular,
    value_text,
)
from onward.models._offline_state import Intent, Plan, State, Step, Task, effective_pick
from onward.models._offline_text import WH_KEYS, content_words, words


def render_step(step: Step, task: Task) -> str:
    """What one tool call found or did, in words."""
    found = step.listing
    if found is None:
        return f"{capital(phrase(step.spec))}: {facts(step.content)}."
    key, items = found
    where = items_phrase(step.call.args)
    if not items:
        return f"I found no {human(key)} {where}.".replace("  ", " ")
    name = human(key) if len(items) != 1 else singular(key)
    head = f"I found {len(items)} {name} {where}:".replace(" :", ":")
    chosen = effective_pick(step, task)
    body = list_items(key, items)
    if chosen is not None and len(items) > 1 and step.pick is not None:
        body += f"\nYou chose {describe_item(items[chosen])}."
    return f"{head}\n{body}"


def render_new(st: State) -> str:
    """The steps the agent has not talked about yet, each in words, then a blank line."""
    steps = st.task.steps[st.new_from :]
    text = "\n\n".join(render_step(s, st.task) for s in steps)
    return text + "\n\n" if text else ""


def none_found(st: State, step: Step) -> Plan:
    """Nothing came back: say so, offer the tool's alternatives, and stop there."""
    rendered = render_new(st) or render_step(step, st.task) + "\n\n"
    text = rendered.strip()
    alternatives = step.top.get("alternatives")
    offered: list[str] = []
    if isinstance(alternatives, dict):
        for name, values in cast(Schema, alternatives).items():
            if isinstance(values, list) and values:
                shown = [str(v) for v in cast(list[Any], values)[:12]]
                param = next((p for p in params_of(step.spec) if p.name == name), None)
                label = _label(param, name)
                text += f" You could try another {label}: {join(shown, 'or')}."
                offered.append(name)
    if not offered and isinstance(note := step.top.get("note"), str):
        text += f" {note}"
    text += " What would you like to do?"
    return Plan(
        AskUser(text=text), Intent("none_found", tool=step.spec.name, params=tuple(offered))
    )


def _label(param: Param | None, name: str) -> str:
    title = param.schema.get("title") if param else None
    return (title if isinstance(title, str) and title else human(name)).lower()


def explain_failure(st: State) -> Plan:
    """Why the call failed, and what the agent needs to go on."""
    task = st.task
    failure = task.failure
    assert failure is not None
    result = failure.result
    spec = st.goal.tool(result.tool)
    what = phrase(spec) if spec else human(result.tool)
    error = (result.error or "it failed").removeprefix("invalid arguments: ")
    error = _readable(spec, error.removeprefix("refused: "))
    text = render_new(st)
    about = implicated(st, failure.call, result.error or "") if failure.call and spec else []
    if task.undone:
        undone = [_undo_phrase(st, name) for name in task.undone]
        text += f"I couldn't {what}: {error}. So I undid the earlier steps: {join(undone)}."
        if about and spec is not None:
            text += " To start over: " + " ".join(question(p, spec) for p in about)
            params = tuple(p.name for p in about)
            return Plan(AskUser(text=text.strip()), Intent("ask", tool=result.tool, params=params))
        text += " Shall I try again, or would you like something else?"
        return Plan(AskUser(text=text.strip()), Intent("failed", tool=result.tool))
    if error.startswith("not run: "):
        reason = error.removeprefix("not run: ")
        text += f"I did not {what}: {reason}. Would you like to change something, or shall I "
        text += "try again?"
        return Plan(AskUser(text=text.strip()), Intent("failed", tool=result.tool))
    text += f"I couldn't {what}: {error}."
    if about and spec is not None:
        text += " " + " ".join(question(p, spec) for p in about)
        params = tuple(p.name for p in about)
        return Plan(AskUser(text=text.strip()), Intent("ask", tool=result.tool, params=params))
    text += " Shall I try again?"
    return Plan(AskUser(text=text.strip()), Intent("failed", tool=result.tool))


def _readable(spec: ToolSpec | None, error: str) -> str:
    """An error in words: a schema error's `card_token:` becomes "card token:"."""
    text = error.strip()
    for p in params_of(spec) if spec else []:
        text = re.sub(rf"(?<![\w`]){re.escape(p.name)}(?=:)", human(p.name), text)
    return text.replace("`", "")


def _undo_phrase(st: State, name: str) -> str:
    spec = st.goal.tool(name)
    return phrase(spec).split(" so ")[0] if spec else human(name)


def _found_line(step: Step, task: Task) -> str | None:
    found = step.listing
    if found is None:
        return f"- {capital(phrase(step.spec))}: {_outcome(step)}"
    key, items = found
    if not items:
        return None
    chosen = effective_pick(step, task)
    if chosen is not None:
        return f"- {capital(singular(key))}: {describe_item(items[chosen])}"
    names = [_cited(i) for i in items[:5]]
    return f"- Found {len(items)} {human(key)} {items_phrase(step.call.args)}: {join(names)}"


_ECHO_CHARS = 40


def _outcome(step: Step) -> str:
    """What a call that returned no list came to: its note when it gave one, else its
    fields, less the long ones that only repeat what it was asked (the question read
    back); a short one (an email address) confirms where things went."""
    top = step.top
    if not top:
        return facts(step.content)
    if isinstance(note := top.get("note"), str) and note:
        return note
    args = step.call.args
    fresh = {
        k: v for k, v in top.items() if k not in args or args[k] != v or len(str(v)) <= _ECHO_CHARS
    }
    return facts(fresh)


def _cited(item: Schema) -> str:
    ident = item.get("id")
    text = item.get("text") or item.get("snippet") or item.get("body")
    return f"{label_of(item)} [{ident}]" if isinstance(ident, str) and text else label_of(item)


def summary(st: State) -> str:
    """The answer once the work is done: what was found, chosen and done."""
    task = st.task
    lines = [line for step in task.steps if (line := _found_line(step, task))]
    if not lines:
        return "There was nothing to do."
    return "All done. Here is what I did:\n" + "\n".join(lines)


def _sources(st: State) -> list[tuple[ToolSpec, Schema]]:
    """Picked items and results, newest first (this task, then earlier ones)."""
    found: list[tuple[ToolSpec, Schema]] = []
    for task in reversed(st.tasks):
        for step in reversed(task.steps):
            listing = step.listing
            chosen = effective_pick(step, task) if listing else None
            if listing and chosen is not None:
                found.append((step.spec, listing[1][chosen]))
            found.append((step.spec, step.top))
    return found


def answer_about_results(st: State, text: str) -> str:
    """An answer from earlier results: the fields the question names."""
    asked = content_words(text) | {w for w in words(text) if w in WH_KEYS}
    hints = [h for w in asked if w in WH_KEYS for h in WH_KEYS[w]]
    for _spec, source in _sources(st):
        matched: list[str] = []
        for key, value in source.items():
            if isinstance(value, dict | list) or value is None:
                continue
            parts = set(key.lower().split("_")) - {"usd", "id"}
            if (parts and parts <= asked) or any(h in key for h in hints):
                matched.append(f"the {human(key).removesuffix(' usd')} is {value_text(key, value)}")
        if matched:
            return capital(join(matched)) + "."
    return "I don't have that in what I found so far."
