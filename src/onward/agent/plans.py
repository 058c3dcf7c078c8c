"""Pure rules for multi-agent decisions: which are allowed, plan checks, step inputs.

Kept free of Temporal calls so they are unit-tested directly and replay trivially.
"""

from __future__ import annotations

import hashlib
import json

from onward.agent.contracts import ConversationState, StepResult
from onward.agent.decisions import (
    PLAN_TOOL,
    AskUser,
    CallTools,
    Decision,
    Finish,
    Handoff,
    PlanStep,
    Refuse,
    Review,
    RunPlan,
)
from onward.agent.messages import AssistantMessage, ToolResultMessage
from onward.agent.specs import GoalSpec
from onward.agent.text_calls import looks_like_tool_call

REVIEW_REJECTED = "The reviewer did not approve this draft"
"""How the notice of a reviewer's rejection starts (the offline planner looks for it)."""
STEP_CACHE_LIMIT = 64
"""Finished steps remembered for re-plans; older ones are forgotten first."""


def decision_problem(
    goal: GoalSpec, decision: Decision, *, review: bool, check_topic: bool = False
) -> str | None:
    """Why `decision` is not allowed for `goal`, or None. Sent back to the model as a
    repair hint, like malformed output."""
    shown = _shown_text(decision)
    if shown is not None and looks_like_tool_call(shown):
        # Never shown to the user: a call written as text is no answer.
        return (
            "your reply is tool-call syntax written as text; call the tool with a native "
            "tool call instead, or answer in plain words"
        )
    if isinstance(decision, Refuse) and not (check_topic and not review):
        return (
            "only a new user message that is outside the goal may be refused; "
            "continue with the goal instead"
        )
    if review:
        if isinstance(decision, Review):
            return None
        return "you are reviewing a proposed answer: reply with a review verdict only"
    if isinstance(decision, Review):
        return "a review verdict is only for reviewers; act on the goal instead"
    if isinstance(decision, Handoff):
        return _handoff_problem(goal, decision)
    if isinstance(decision, RunPlan):
        return plan_problem(goal, decision)
    if isinstance(decision, CallTools) and not goal.tools:
        return "this agent has no tools" + (
            f"; delegate to one of: {_agent_names(goal)}" if goal.agents else ""
        )
    return None


def _shown_text(decision: Decision) -> str | None:
    if isinstance(decision, AskUser | Refuse):
        return decision.text
    if isinstance(decision, Finish):
        return decision.answer
    return None


def _agent_names(goal: GoalSpec) -> str:
    return ", ".join(a.name for a in goal.agents)


def _handoff_problem(goal: GoalSpec, decision: Handoff) -> str | None:
    if not goal.handoff:
        return "this agent cannot hand the conversation off"
    if goal.agent(decision.goal) is None:
        return f"no agent named `{decision.goal}`; choose one of: {_agent_names(goal)}"
    return None


def plan_problem(goal: GoalSpec, plan: RunPlan) -> str | None:
    """Why a plan cannot run: unknown goals, bad ids, missing or cyclic dependencies."""
    if not goal.agents or goal.handoff:
        return "this agent cannot delegate work"
    if len(plan.steps) > goal.max_plan_steps:
        return f"a plan may have at most {goal.max_plan_steps} steps, not {len(plan.steps)}"
    ids = [s.id for s in plan.steps]
    if len(set(ids)) != len(ids):
        return f"step ids must be unique: {ids}"
    for step in plan.steps:
        if goal.agent(step.goal) is None:
            return (
                f"step `{step.id}`: no agent named `{step.goal}`; use one of: {_agent_names(goal)}"
            )
        unknown = [d for d in step.depends_on if d not in ids or d == step.id]
        if unknown:
            return f"step `{step.id}` depends on unknown or itself: {unknown}"
    if _has_cycle(plan.steps):
        return "the steps' dependencies form a cycle"
    return None


def _has_cycle(steps: list[PlanStep]) -> bool:
    deps = {s.id: set(s.depends_on) for s in steps}
    done: set[str] = set()
    while deps:
        ready = [i for i, d in deps.items() if d <= done]
        if not ready:
            return True
        for i in ready:
            done.add(i)
            del deps[i]
    return False


def step_message(step: PlanStep, inputs: list[StepResult]) -> str:
    """The first message a step's sub-agent receives: its instruction plus the results
    of the steps it depends on."""
    if not inputs:
        return step.instruction
    lines = [step.instruction, "", "Results of earlier steps you can use:"]
    for r in inputs:
        lines.append(f"- {r.step_id} ({r.goal}): {r.answer or r.partial or r.outcome}")
    return "\n".join(lines)


def step_key(goal: str, message: str) -> str:
    """Identity of a step's work: the same agent given the same input."""
    return hashlib.sha256(json.dumps([goal, message]).encode()).hexdigest()[:24]


def remember(state: ConversationState, key: str, result: StepResult) -> None:
    state.step_cache[key] = result
    while len(state.step_cache) > STEP_CACHE_LIMIT:
        del state.step_cache[next(iter(state.step_cache))]


def plan_outcome(call_id: str, results: list[StepResult]) -> ToolResultMessage:
    """The plan's results as one tool result the planner reads next."""
    return ToolResultMessage(
        call_id=call_id,
        tool=PLAN_TOOL,
        ok=all(r.outcome == "finished" for r in results),
        content={"steps": [r.model_dump(exclude={"usage"}) for r in results]},
    )


def progress_summary(state: ConversationState) -> str | None:
    """What an unfinished conversation had done: its last words and its tool calls."""
    parts: list[str] = []
    last = next((m.text for m in reversed(state.messages) if isinstance(m, AssistantMessage)), None)
    if last:
        parts.append(last)
    done = [f"{r.tool} ({'ok' if r.ok else 'failed'})" for r in state.tool_calls]
    if done:
        parts.append("Tool calls made: " + ", ".join(done))
    return "\n".join(parts) or None
