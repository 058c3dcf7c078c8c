"""Reading a transcript into the offline model's `State`, one message at a time.

Each user turn is read in the light of what the agent had just said (its `Intent`).
That intent is not parsed from prose: the agent is deterministic, so the reader asks
the planner what it decided at that point, and keeps that intent if the transcript
holds the text the planner would have written (a transcript written by another model
is read without it). A user turn then answers a question, picks from a list, agrees
or declines, asks about earlier results, changes an earlier choice (which redoes that
step) or starts a new request; an off-topic turn is left out of everything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from onward.agent.decisions import Decision
from onward.agent.messages import (
    AssistantMessage,
    Message,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.agent.specs import GoalSpec
from onward.models._offline_args import Param, params_of, same, value_in
from onward.models._offline_picks import pick_in
from onward.models._offline_state import (
    Failure,
    Intent,
    Plan,
    State,
    Step,
    Task,
    Turn,
    TurnKind,
    default_item,
)
from onward.models._offline_text import (
    WH_KEYS,
    content_words,
    is_greeting,
    is_hesitation,
    is_no,
    is_question,
    is_thanks,
    is_yes,
    words,
)
from onward.models._offline_topic import TopicJudge

Planner = Callable[[State, bool], Plan]


def read(goal: GoalSpec, messages: Sequence[Message], planner: Planner) -> State:
    st = State(goal=goal, judge=TopicJudge(goal))
    for m in messages:
        if isinstance(m, UserMessage):
            absorb(st, m.text)
            st.fresh = True
        elif isinstance(m, AssistantMessage):
            plan = planner(st, st.fresh)
            st.intent = plan.intent if _text(plan.decision) == m.text.strip() else None
            st.fresh = False
            st.new_from = len(st.task.steps)
        elif isinstance(m, ToolCallMessage):
            st.calls[m.call_id] = m
            st.call_count += 1
            st.fresh = False
        elif isinstance(m, ToolResultMessage):
            record_result(st, m)
            st.fresh = False
    return st


def _text(decision: Decision) -> str:
    text = getattr(decision, "text", None) or getattr(decision, "answer", None)
    return str(text).strip() if text else ""


# ---------------------------------------------------------------------- results


def record_result(st: State, m: ToolResultMessage) -> None:
    task = st.task
    call = st.calls.get(m.call_id)
    spec = st.goal.tool(m.tool)
    if call is None:  # a saga's compensation: it has no call of its own
        if m.ok:
            task.undone.append(m.tool)
        task.over = True
        return
    if m.ok and spec is not None:
        task.steps.append(Step(call=call, spec=spec, content=m.content))
        st.saw(m.content)
        if task.failure is not None and task.failure.result.tool == m.tool:
            task.failure = None
        return
    task.failure, task.failure_seen = Failure(call=call, result=m), False
    for p in implicated(st, call, m.error or ""):
        task.rejected.setdefault(p.name, set()).add(str(call.args.get(p.name, "")).casefold())


def implicated(st: State, call: ToolCallMessage, error: str) -> list[Param]:
    """The askable arguments a failure is about: those whose value the error quotes;
    else those whose value or name it mentions."""
    spec = st.goal.tool(call.tool)
    if spec is None:
        return []
    lowered = error.lower()
    askable = [(p, call.args.get(p.name)) for p in params_of(spec) if p.askable]
    quoted = [
        p
        for p, value in askable
        if value is not None and any(f"{q}{str(value).lower()}{q}" in lowered for q in ("'", '"'))
    ]
    if quoted:
        return quoted
    found: list[Param] = []
    for p, value in askable:
        if value is None:
            continue
        named = p.name.lower() in lowered or bool(p.parts & content_words(error) - {"date"})
        if (len(str(value)) >= 3 and str(value).lower() in lowered) or named:
            found.append(p)
    return found


# ---------------------------------------------------------------------- turns


def _asked(st: State, intent: Intent | None) -> list[Param]:
    if intent is None or intent.tool is None:
        return []
    spec = st.goal.tool(intent.tool)
    return [p for p in params_of(spec) if p.name in intent.params] if spec else []


def _given(st: State, intent: Intent | None, text: str) -> dict[str, object]:
    """What `text` gives for the parameters the agent asked for."""
    asked = _asked(st, intent)
    given: dict[str, object] = {}
    for p in asked:
        value = value_in(p, text, set(), answer=len(asked) == 1)
        if value is not None:
            given[p.name] = value
    return given


def _listings(st: State, intent: Intent | None) -> list[int]:
    """Steps whose lists a pick may be about: the one just offered, then newest first."""
    task = st.task
    order = [i for i in range(len(task.steps) - 1, -1, -1) if task.steps[i].listing]
    if intent is not None and intent.listing is not None and intent.listing in order:
        order.remove(intent.listing)
        order.insert(0, intent.listing)
    return order


def _pick(st: State, intent: Intent | None, text: str) -> tuple[int, int] | None:
    for index in _listings(st, intent):
        found = st.task.steps[index].listing
        assert found is not None
        chosen = pick_in(text, found[1])
        if chosen is not None:
            return index, chosen
    return None


def about_results(st: State, text: str) -> bool:
    """A question about what the tools returned ("what was the flight number?")."""
    if not is_question(text):
        return False
    asked = content_words(text) | {w for w in words(text) if w in WH_KEYS}
    for task in st.tasks:
        for step in task.steps:
            keys = set(step.top)
            found = step.listing
            if found and found[1]:
                keys |= set(found[1][0])
            for key in keys:
                parts = set(key.lower().split("_")) - {"usd", "id"}
                hinted = any(h in key for w in asked if w in WH_KEYS for h in WH_KEYS[w])
                if hinted or (parts and parts <= asked):
                    return True
    return False


def _kind(st: State, turn: Turn, given: dict[str, object]) -> TurnKind:
    text, intent = turn.text, turn.intent
    if is_thanks(text) and not given:
        return "thanks"
    if is_greeting(text):
        return "greeting"
    if is_hesitation(text) and not given:
        return "hesitation"
    if st.task.started and not st.task.over and _pick(st, intent, text) is not None:
        return "pick"
    if is_yes(text):
        return "yes"
    if is_no(text) and not given:
        return "no"
    if about_results(st, text) and not given:
        return "question"
    return "answer" if given else "request"


def absorb(st: State, text: str) -> None:
    """Read one user turn into the state."""
    intent = st.intent
    given = _given(st, intent, text)
    answers = bool(given) or (
        intent is not None
        and intent.kind in ("confirm", "failed", "none_found")
        and (is_yes(text) or is_no(text))
    )
    answers = answers or (st.task.started and _pick(st, intent, text) is not None)
    turn = Turn(
        text=text,
        intent=intent,
        on_topic=st.judge.on_topic(text, answers=answers, seen=st.seen_words()),
    )
    st.latest = turn
    if not turn.on_topic:
        return
    turn.kind = _kind(st, turn, given)
    task = st.task
    finished = task.over or (intent is not None and intent.kind == "done") or not task.started
    if finished:
        if _starts_over(task, turn, given):
            # What the undone work failed on is corrected (or the user says to try
            # again): the same request once more, with the new answer.
            st.tasks.append(Task(turns=[*task.turns, turn], rejected=task.rejected))
            st.new_from = 0
        elif turn.kind in ("request", "answer", "pick"):
            turn.kind = "request"
            if task.started:
                st.tasks.append(Task())
            st.task.turns.append(turn)
            st.new_from = 0
        return
    if task.failure is not None and not task.failure_seen:
        task.failure_seen = True
        if turn.kind == "no" and intent is not None and intent.kind == "failed":
            task.over = True
            return
    _apply(st, turn, given)
    if turn.kind not in ("thanks", "greeting", "hesitation", "question"):
        task.turns.append(turn)


def _starts_over(task: Task, turn: Turn, given: dict[str, object]) -> bool:
    intent = turn.intent
    if not task.undone or intent is None or intent.kind not in ("ask", "failed"):
        return False
    return bool(given) or (intent.kind == "failed" and turn.kind == "yes")


def _apply(st: State, turn: Turn, given: dict[str, object]) -> None:
    task, intent = st.task, turn.intent
    confirm = intent is not None and intent.kind == "confirm"
    if turn.kind == "pick":
        found = _pick(st, intent, turn.text)
        assert found is not None
        index, chosen = found
        del task.steps[index + 1 :]
        task.steps[index].pick = chosen
        if confirm and intent is not None and intent.tool and intent.listing == index:
            task.consent.add(intent.tool)
        return
    if confirm and intent is not None and intent.tool and (turn.kind == "yes" or given):
        listing = intent.listing
        if listing is not None and listing < len(task.steps):
            step = task.steps[listing]
            found = step.listing
            if step.pick is None and found and found[1]:
                step.pick = intent.default if intent.default is not None else default_item(found[1])
        task.consent.add(intent.tool)
        task.declined = False
    elif confirm and turn.kind == "no":
        task.declined = True
    # "ok, how about May then" starts like a yes; what follows may still change a value.
    if turn.kind in ("request", "answer", "yes"):
        _redo(st, turn, given)


def _from_results(task: Task, index: int, name: str, value: object) -> bool:
    """Whether a step's argument was taken from an earlier result of the same name."""
    for earlier in task.steps[:index]:
        found = earlier.listing
        sources = [earlier.top, *(found[1] if found else [])]
        if any(src.get(name) == value for src in sources):
            return True
    return False


def _redo(st: State, turn: Turn, given: dict[str, object]) -> None:
    """A new value for an argument of a step already done redoes it and what followed
    ("May then" after no events in June; "actually from Denver" after the flights).
    Arguments taken from results are the tools' to change, not the user's."""
    task, intent = st.task, turn.intent
    consumed = {str(v).casefold() for v in given.values()}
    for index in range(len(task.steps) - 1, -1, -1):
        step = task.steps[index]
        for p in params_of(step.spec):
            old = step.call.args.get(p.name)
            if not p.required or not p.askable or old is None:
                continue
            if _from_results(task, index, p.name, old):
                continue
            if intent is not None and intent.tool == step.spec.name and p.name in given:
                new = given[p.name]
            elif p.is_free_text:
                fresh_request = turn.kind == "request" and (
                    intent is None or intent.kind in ("none_found", "done", "greet")
                )
                new = turn.text.strip() if fresh_request else None
            else:
                new = value_in(p, turn.text, consumed, strict=True)
            if new is not None and not same(new, old):
                del task.steps[index:]
                task.consent.clear()
                st.new_from = min(st.new_from, index)
                return
