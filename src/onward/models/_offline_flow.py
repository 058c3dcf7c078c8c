"""The offline model's planner for an ordinary goal: what to do next, from the state.

- The work starts with the tool the user's words fill completely (else the first tool
  no other one follows), and goes on along the tools' declared `follow_ups` (without
  any, in the goal's order). Of several follow-ups, the one the latest result names
  wins ("escalate" names the tool that escalates), else the first that can be filled.
- A list that came back empty stops the work: the agent says so and offers the
  `alternatives` the tool gave (or its note), unless the user left the choice to it.
- A list the next tool needs one item of is presented and the user picks; the agent
  proposes the cheapest (or first) and asks before going on, unless the user already
  asked for that step or gave all it needs.
- Missing arguments are asked for in words; a failed call is explained and the agent
  asks what the failure is about, or whether to try again.
- When the chain is done, the answer says what was found and done.
"""

from __future__ import annotations

from typing import Any

from onward.agent.decisions import AskUser, CallTools, Finish, Refuse, ToolCall
from onward.agent.specs import ToolSpec
from onward.models._offline_args import Param, params_of
from onward.models._offline_fill import Fill, fill, fillable_from_words, named_in
from onward.models._offline_replies import (
    answer_about_results,
    explain_failure,
    none_found,
    render_new,
    summary,
)
from onward.models._offline_say import (
    describe_item,
    noun,
    question,
    singular,
    verb,
)
from onward.models._offline_state import Intent, Plan, State, Step, default_item, effective_pick
from onward.models._offline_text import content_words, grants_latitude


def planned_tools(st: State) -> list[ToolSpec]:
    """The tools a model may call, minus those that only undo another one."""
    undoers = {s.compensation for s in st.goal.tools if s.compensation}
    return [s for s in st.goal.tools if s.model_visible and s.name not in undoers]


def greet(st: State) -> Plan:
    intro = st.goal.starter_prompt.strip()
    if not intro:
        about = st.goal.description.strip().rstrip(".")
        intro = f"Hello! This is what I can do: {about}. What would you like?"
    return Plan(AskUser(text=intro), Intent("greet"))


def flow(st: State) -> Plan:
    """The next step of the current task."""
    task = st.task
    if not task.started:
        return greet(st)
    if task.failure is not None and not task.failure_seen:
        return explain_failure(st)
    if task.over:
        return Plan(
            Finish(answer="Alright. Is there anything else I can help with?"), Intent("done")
        )
    if not task.steps:
        return toward(st, entry_tool(st))
    last = task.steps[-1]
    found = last.listing
    if found is not None and not found[1]:
        return _retry_elsewhere(st, last) or none_found(st, last)
    nxt = next_tool(st)
    if nxt is None:
        return Plan(Finish(answer=summary(st)), Intent("done"))
    return toward(st, nxt)


def entry_tool(st: State) -> ToolSpec:
    planned = planned_tools(st)
    for spec in planned:
        if fillable_from_words(st, spec):
            return spec
    followed = {n for s in planned for n in s.follow_ups}
    return next((s for s in planned if s.name not in followed), planned[0])


def _short_values(content: Any) -> set[str]:
    if not isinstance(content, dict):
        return set()
    found: set[str] = set()
    for value in content.values():  # pyright: ignore[reportUnknownVariableType]
        if isinstance(value, str) and 0 < len(value.split()) <= 2:
            found |= content_words(value)
    return found


def next_tool(st: State) -> ToolSpec | None:
    task = st.task
    planned = planned_tools(st)
    done = {s.spec.name for s in task.steps}
    last = task.steps[-1]
    if not any(s.follow_ups for s in planned):
        return next((s for s in planned if s.name not in done), None)
    names = {s.name for s in planned}
    candidates = [
        spec
        for n in last.spec.follow_ups
        if n in names and n not in done and (spec := st.goal.tool(n)) is not None
    ]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    said = _short_values(last.content)
    for spec in candidates:
        if said & content_words(f"{spec.name.replace('_', ' ')} {spec.description}"):
            return spec
    viable = [spec for spec in candidates if not fill(st, spec).unfillable]
    return (viable or candidates)[0]


def _retry_elsewhere(st: State, last: Step) -> Plan | None:
    """The user left the choice to the agent: try the first alternative the tool gave."""
    task = st.task
    if not any(grants_latitude(t.text) for t in task.turns):
        return None
    if sum(s.spec.name == last.spec.name for s in task.steps) > 1:
        return None
    alternatives = last.top.get("alternatives")
    if not isinstance(alternatives, dict):
        return None
    args = dict(last.call.args)
    for name, values in alternatives.items():  # pyright: ignore[reportUnknownVariableType]
        if name in args and isinstance(values, list) and values:
            args[str(name)] = values[0]  # pyright: ignore[reportUnknownArgumentType]
            return _call(st, last.spec, args)
    return None


def _call(st: State, spec: ToolSpec, args: dict[str, Any]) -> Plan:
    call = ToolCall(call_id=f"offline-{st.call_count + 1}", tool=spec.name, args=args)
    return Plan(CallTools(calls=[call]), Intent("ask", tool=spec.name))


def toward(st: State, spec: ToolSpec) -> Plan:
    """Call `spec`, or ask for what it still needs (a pick, an argument)."""
    task = st.task
    found = fill(st, spec)
    if found.pick_step is not None:
        trial = fill(st, spec, proceed=True)
        asked_for = named_in([t.text for t in task.turns], spec) or spec.name in task.consent
        if not asked_for or task.declined or trial.pick_step is not None:
            return _propose(st, spec, found.pick_step, trial)
        found = trial  # the user asked for this step: go on with the proposed item
    if found.unfillable:
        labels = ", ".join(p.name.replace("_", " ") for p in found.unfillable)
        text = render_new(st) + f"I don't have what I need to {verb(spec)} the {noun(spec)} yet "
        text += f"({labels})."
        return Plan(AskUser(text=text.strip()), Intent("ask", tool=spec.name))
    if found.missing:
        return _ask(st, spec, found.missing)
    return _call(st, spec, found.args)


def _prefix(st: State, spec: ToolSpec, missing: list[Param]) -> str:
    """What the reply to the user's latest turn starts with."""
    turn = st.latest
    if not st.fresh or turn is None or not turn.on_topic:
        return ""
    if turn.kind in ("hesitation", "thanks", "greeting", "question"):
        return ""  # `respond` says what fits
    before = st.intent
    if turn.kind == "pick" or (turn.kind == "yes" and before and before.kind == "confirm"):
        picked = _picked_item(st)
        return f"Good choice: {describe_item(picked)}. " if picked else "Good. "
    same = before is not None and before.tool == spec.name
    if same and before is not None and set(before.params) >= {p.name for p in missing}:
        if any(p.is_email for p in missing):
            return "I need an email address to go on. "
        return "Sorry, I didn't get that. "
    return ""


def _picked_item(st: State) -> dict[str, Any] | None:
    for step in reversed(st.task.steps):
        found = step.listing
        if found and step.pick is not None:
            return found[1][effective_pick(step, st.task) or 0]
    return None


def _ask(st: State, spec: ToolSpec, missing: list[Param]) -> Plan:
    lines = [question(p, spec) for p in missing]
    text = render_new(st) + _prefix(st, spec, missing) + "\n".join(lines)
    intent = Intent("ask", tool=spec.name, params=tuple(p.name for p in missing))
    return Plan(AskUser(text=text.strip()), intent)


def _propose(st: State, spec: ToolSpec, index: int, trial: Fill) -> Plan:
    step = st.task.steps[index]
    found = step.listing
    assert found is not None
    key, items = found
    default = default_item(items)
    thing = singular(key)
    text = render_new(st)
    if st.task.declined:
        text += f"Which {thing} would you like instead? Tell me its number or name."
        return Plan(
            AskUser(text=text.strip()),
            Intent("confirm", tool=spec.name, listing=index, default=None),
        )
    which = "cheapest" if default_item(items) != 0 or _priced(items) else "first"
    action = f"{verb(spec)} {noun(spec)}" if verb(spec) in ("search", "find") else None
    action = action or f"{verb(spec)} the {noun(spec)}"
    text += f"The {which} is {describe_item(items[default])}. Shall I {action} for it?"
    asked = [p for p in trial.missing if p.askable]
    if asked:
        text += " If so: " + " ".join(question(p, spec) for p in asked)
    text += f" (Or tell me which {thing} you prefer.)"
    intent = Intent(
        "confirm",
        tool=spec.name,
        params=tuple(p.name for p in asked),
        listing=index,
        default=default,
    )
    return Plan(AskUser(text=text.strip()), intent)


def _priced(items: list[dict[str, Any]]) -> bool:
    return any("price" in k for k in items[0])


def respond(st: State, judge: bool) -> Plan:
    """The decision for the transcript: `flow`, and what the latest turn needs first
    (a refusal, thanks, hesitation, a question about earlier results)."""
    turn = st.latest
    if not planned_tools(st):
        text = (
            "I'm the built-in offline model, and this goal has no tools I can use. "
            "Configure a model provider to talk about it freely."
        )
        base = Plan(AskUser(text=text), Intent("greet"))
    elif turn is None:
        return greet(st)
    else:
        base = flow(st)
    if turn is None:
        return base
    if not st.fresh:
        return base
    task = st.task
    mid = task.started and not task.over and not (st.intent and st.intent.kind == "done")
    asking = isinstance(base.decision, AskUser)
    if not turn.on_topic:
        about = st.goal.description.strip().rstrip(".")
        about = about[:1].lower() + about[1:] if about[1:2].islower() else about
        text = f"Sorry, I can't help with that here. This is what I do: {about}."
        if mid and isinstance(base.decision, AskUser):
            text += "\n\nBack to where we were: " + base.decision.text
        intent = base.intent if mid else (st.intent or Intent("greet"))
        return Plan(Refuse(text=text) if judge else AskUser(text=text), intent)
    if turn.kind in ("thanks", "yes", "no", "greeting") and not mid:
        if turn.kind == "greeting" and not task.started:
            return base
        text = "You're welcome!" if turn.kind == "thanks" else "Alright."
        return Plan(
            Finish(answer=f"{text} Is there anything else I can help with?"), Intent("done")
        )
    if turn.kind == "question":
        answer = answer_about_results(st, turn.text)
        if mid and isinstance(base.decision, AskUser):
            return Plan(AskUser(text=f"{answer}\n\n{base.decision.text}"), base.intent)
        return Plan(Finish(answer=answer), Intent("done"))
    if turn.kind in ("thanks", "greeting", "hesitation") and asking:
        assert isinstance(base.decision, AskUser)
        lead = {"thanks": "You're welcome!", "greeting": "Hello!"}.get(turn.kind, "No problem.")
        help_text = _examples(st, base.intent) if turn.kind == "hesitation" else ""
        return Plan(AskUser(text=f"{lead} {help_text}{base.decision.text}".strip()), base.intent)
    return base


def _examples(st: State, intent: Intent) -> str:
    """For someone unsure: the choices the asked parameters offer, when the question
    itself does not list them."""
    spec = st.goal.tool(intent.tool) if intent.tool else None
    if spec is None:
        return ""
    hints: list[str] = []
    for p in params_of(spec):
        if p.name in intent.params and p.choices and p.role in ("start", "end", "place"):
            shown = ", ".join(str(c) for c in p.choices[:4])
            hints.append(f"For example: {shown}.")
    return (" ".join(hints) + " ") if hints else ""
