"""Prompts and the extra tools a provider model is offered.

Besides the goal's own tools a decision may offer pseudo-tools whose calls stand for
decisions: `finish` (always), `refuse` (a goal with its guardrail on), `delegate` (a
planner: a goal with agents that is not a router), `handoff` (a router). A review
request offers nothing but `review`. Each pseudo-tool takes a name no goal tool has, so
a goal may have a tool called `finish` or `delegate` of its own.

Every decision of a conversation gets the same system prompt and the same tool list
(whether or not the topic is checked, whether or not it is a repair): that shared
prefix is what llama.cpp's prompt cache and the providers' prompt caching reuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic_ai.tools import ToolDefinition

from onward.agent.decisions import HANDOFF_TOOL, PLAN_TOOL, REFUSE_TOOL, REVIEW_TOOL
from onward.agent.specs import GoalSpec, ToolSpec

VERDICT_TOOL = "verdict"
_VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "allowed": {"type": "boolean", "description": "True if the message fits the goal."},
        "reply": {
            "type": "string",
            "description": "When not allowed: one short, polite sentence redirecting the user.",
        },
    },
    "required": ["allowed"],
}
_REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "approved": {
            "type": "boolean",
            "description": "True when the draft can be given to the user as it is.",
        },
        "feedback": {
            "type": "string",
            "description": "When not approved: what exactly is wrong and what to change.",
        },
    },
    "required": ["approved"],
}
_REFUSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {
            "type": "string",
            "description": "One short, polite sentence saying what you can help with instead.",
        }
    },
    "required": ["text"],
}
ON_TOPIC_RULES = (
    "Greetings, thanks, acknowledgements, answers to a question you just asked, "
    "questions about what you can do, and anything that plausibly relates to your "
    "purpose are on topic."
)
"""When a user's message counts as on topic (shared by every guardrail prompt)."""
STEP_ID_PATTERN = r"^[A-Za-z0-9_.-]+$"  # `PlanStep.id`'s pattern
REVIEW_PROMPT = (
    "Review the draft above (the last assistant message) against the user's request and "
    f"your instructions, then call `{REVIEW_TOOL}` exactly once."
)


@dataclass(frozen=True)
class ToolNames:
    """The pseudo-tools one request offers, by the name the model sees (None: not
    offered). A review request offers `review` only; any other offers `finish`."""

    finish: str | None
    delegate: str | None = None
    handoff: str | None = None
    review: str | None = None
    refuse: str | None = None


def _free_name(goal: GoalSpec, candidates: Sequence[str]) -> str:
    taken = {t.name for t in goal.tools}
    return next(n for n in candidates if n not in taken)


def finish_tool_name(goal: GoalSpec) -> str:
    """`finish`, unless the goal has a tool of that name (then `finish_goal`)."""
    return _free_name(goal, ("finish", "finish_goal", "onward_finish"))


def can_plan(goal: GoalSpec) -> bool:
    """Whether `goal` may delegate plan steps (the rule of `plans.decision_problem`)."""
    return bool(goal.agents) and not goal.handoff


def tool_names(goal: GoalSpec, *, review: bool = False) -> ToolNames:
    """The pseudo-tools a decision for `goal` offers."""
    if review:
        # Only the verdict is offered, so no goal tool can collide with it.
        return ToolNames(finish=None, review=REVIEW_TOOL)
    delegate = (
        _free_name(goal, (PLAN_TOOL, "delegate_steps", "onward_delegate"))
        if can_plan(goal)
        else None
    )
    handoff = (
        _free_name(goal, (HANDOFF_TOOL, "hand_off", "onward_handoff"))
        if goal.handoff and goal.agents
        else None
    )
    refuse = (
        _free_name(goal, (REFUSE_TOOL, "refuse_request", "onward_refuse"))
        if goal.guardrail
        else None
    )
    return ToolNames(
        finish=finish_tool_name(goal), delegate=delegate, handoff=handoff, refuse=refuse
    )


def _agent_lines(goal: GoalSpec) -> list[str]:
    return [f"- `{a.name}`: {a.description.strip()}" for a in goal.agents]


def decide_instructions(goal: GoalSpec, names: ToolNames | str | None = None) -> str:
    """The system prompt of a decision: the goal's instructions plus how to act.

    `names` defaults to `tool_names(goal)`; a plain string (the older signature) names
    the finish tool.
    """
    if not isinstance(names, ToolNames):
        offered = tool_names(goal)
        names = offered if names is None else replace(offered, finish=names)
    finish = names.finish or finish_tool_name(goal)
    lines = [goal.instructions.strip(), ""]
    lines.append(f"You are the agent for the goal `{goal.name}`: {goal.description}")
    if names.delegate:
        lines += ["Agents you can delegate work to:", *_agent_lines(goal)]
    if names.handoff:
        lines += ["Agents you can hand the conversation to:", *_agent_lines(goal)]
    lines.append("How to act:")
    if goal.tools:
        lines.append(
            "- To run a tool, call it with arguments that match its schema. Call several at "
            "once only when they do not depend on each other."
        )
    if names.delegate:
        lines += [
            f"- To have agents do the work, call `{names.delegate}` with a plan of at most "
            f"{goal.max_plan_steps} steps, each for one agent with a self-contained "
            "instruction: the agent sees only its instruction and the results of the steps "
            "listed in its `depends_on`, never this conversation. Steps without dependencies "
            "run in parallel. All results come back to you in one tool result.",
            f"- Once the results are in, call `{finish}` with one answer that combines them. "
            "Report what the agents found; never invent what they did not report.",
            "- If a reviewer does not approve your answer, its feedback arrives as a notice: "
            f"call `{names.delegate}` again and change the steps the feedback is about. "
            "A step repeated with the same agent and instruction is not run again.",
        ]
    if names.handoff:
        lines += [
            f"- Call `{names.handoff}` with the name of the agent that fits the user's request "
            "(and, if useful, a short note for the user); that agent takes the conversation "
            "over from then on. Do not try to do its work yourself.",
            "- If it is unclear which agent fits, ask the user.",
        ]
    lines += [
        "- To ask the user something (or tell them something) and wait for the reply, "
        "answer with plain text and no tool call.",
        f"- When the goal is complete, or cannot be completed, call `{finish}` with the "
        "final answer for the user"
        + (
            "; this ends the conversation."
            if goal.end_on_finish
            else "; the user may still follow up afterwards."
        ),
    ]
    if names.refuse:
        lines.append(
            f"- If the user's newest message is outside your purpose, call `{names.refuse}` "
            "with one polite sentence saying what you can help with, and nothing else. "
            + ON_TOPIC_RULES
        )
    if goal.tools or names.delegate:
        lines.append("- Tool results and errors come back to you; never invent a result.")
    for example in goal.examples:
        lines += ["", f"Example - user: {example.user}", f"Example - you: {example.assistant}"]
    return "\n".join(lines)


def review_instructions(goal: GoalSpec) -> str:
    """The system prompt of a review: the reviewer goal's instructions plus the task."""
    return "\n".join(
        [
            goal.instructions.strip(),
            "",
            f"You are the reviewer `{goal.name}`: {goal.description}",
            "Another agent wrote a draft answer to the user's request; it is the last "
            "assistant message of the conversation. Check it against the request and your "
            f"instructions, then call `{REVIEW_TOOL}` exactly once: `approved` true when the "
            "draft can be given to the user as it is; otherwise `approved` false and "
            "`feedback` saying concretely what is wrong and what to change.",
        ]
    )


def guardrail_instructions(goal: GoalSpec) -> str:
    """The system prompt of a guardrail check."""
    tools = "; ".join(
        f"{t.name}: {t.description.splitlines()[0]}" for t in goal.tools if t.description
    )
    agents = "; ".join(f"{a.name}: {a.description.strip()}" for a in goal.agents)
    return (
        f"You check whether a user's message fits the purpose of an assistant.\n"
        f"The assistant's purpose: {goal.description} (goal `{goal.name}`).\n"
        f"Its tools: {tools or 'none'}.\n"
        + (f"Agents it works with: {agents}.\n" if agents else "")
        + "Always allow greetings, thanks, acknowledgements, questions about what the "
        "assistant can do, and any answer to a question the assistant just asked. Allow "
        "anything that plausibly relates to the purpose. Otherwise set `allowed` to false "
        "and write `reply`: one short, polite sentence saying what you can help with.\n"
        f"Call `{VERDICT_TOOL}` exactly once."
    )


def repair_note(hint: str, *, review: bool = False) -> str:
    """What the model is told after an unusable answer."""
    if review:
        return (
            f"Your previous output was invalid: {hint}. Answer again: call `{REVIEW_TOOL}` "
            "with `approved` (true or false) and, when not approved, `feedback`."
        )
    return (
        f"(Note from the system, not from the user: your previous output was invalid: "
        f"{hint}. Answer again: call one of the tools with a JSON object of valid "
        "arguments, call the finish tool with the answer, or reply with plain text to "
        "ask the user. Do not mention this note.)"
    )


def plan_schema(goal: GoalSpec) -> dict[str, Any]:
    """JSON schema of the `delegate` tool's arguments: the plan's steps."""
    step: dict[str, Any] = {
        "type": "object",
        "properties": {
            "id": {
                "type": "string",
                "pattern": STEP_ID_PATTERN,
                "maxLength": 64,
                "description": "Short unique id of the step, e.g. `s1`.",
            },
            "goal": {
                "type": "string",
                "enum": [a.name for a in goal.agents],
                "description": "The agent that does this step.",
            },
            "instruction": {
                "type": "string",
                "description": "Everything the agent needs to know to do this step.",
            },
            "depends_on": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Ids of the steps whose results this step needs; empty to "
                "start at once.",
            },
        },
        "required": ["id", "goal", "instruction"],
    }
    return {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "items": step,
                "minItems": 1,
                "maxItems": goal.max_plan_steps,
            },
            "text": {
                "type": "string",
                "description": "Optional short note shown to the user while the agents work.",
            },
        },
        "required": ["steps"],
    }


def handoff_schema(goal: GoalSpec) -> dict[str, Any]:
    """JSON schema of the `handoff` tool's arguments: the agent to hand over to."""
    return {
        "type": "object",
        "properties": {
            "goal": {
                "type": "string",
                "enum": [a.name for a in goal.agents],
                "description": "The agent that takes the conversation over.",
            },
            "text": {
                "type": "string",
                "description": "Optional short note for the user about the handoff.",
            },
        },
        "required": ["goal"],
    }


def tool_definitions(goal: GoalSpec, names: ToolNames) -> list[ToolDefinition]:
    """The goal's tools as native tools, plus the pseudo-tools `names` offers
    (not for a review: see `review_definition`)."""
    tools = [
        ToolDefinition(
            name=t.name, parameters_json_schema=t.parameters, description=_described(goal, t)
        )
        for t in goal.tools
    ]
    agents = "; ".join(f"{a.name}: {a.description.strip()}" for a in goal.agents)
    if names.delegate:
        tools.append(
            ToolDefinition(
                name=names.delegate,
                description="Delegate work to agents: each step runs as its own "
                "conversation with one agent; independent steps run in parallel. "
                f"Agents: {agents}.",
                parameters_json_schema=plan_schema(goal),
            )
        )
    if names.handoff:
        tools.append(
            ToolDefinition(
                name=names.handoff,
                description="Hand the whole conversation to one agent, which takes it over. "
                f"Agents: {agents}.",
                parameters_json_schema=handoff_schema(goal),
            )
        )
    if names.finish:
        tools.append(
            ToolDefinition(
                name=names.finish,
                description="The goal is complete (or cannot be completed): give the final "
                "answer for the user."
                + (
                    " This ends the conversation."
                    if goal.end_on_finish
                    else " The user may follow up."
                ),
                parameters_json_schema={
                    "type": "object",
                    "properties": {
                        "answer": {"type": "string", "description": "The final answer."}
                    },
                    "required": ["answer"],
                },
            )
        )
    if names.refuse:
        tools.append(
            ToolDefinition(
                name=names.refuse,
                description="The user's newest message is outside your purpose: answer with "
                "a polite one-sentence redirect and do nothing else.",
                parameters_json_schema=_REFUSE_SCHEMA,
            )
        )
    return tools


def _described(goal: GoalSpec, tool: ToolSpec) -> str:
    """A tool's description plus the tools that usually come next (`follow_ups`)."""
    nxt = [n for n in tool.follow_ups if goal.tool(n) is not None]
    if not nxt:
        return tool.description
    listed = ", ".join(f"`{n}`" for n in nxt)
    return f"{tool.description.rstrip()} Usually followed by {listed} with its result."


def review_definition() -> ToolDefinition:
    """A review's only output: the `review` tool."""
    return ToolDefinition(
        name=REVIEW_TOOL,
        parameters_json_schema=_REVIEW_SCHEMA,
        description="Record whether the draft answer is approved, with feedback if not.",
        kind="output",
    )


def verdict_definition() -> ToolDefinition:
    """The guardrail's only output: the `verdict` tool."""
    return ToolDefinition(
        name=VERDICT_TOOL,
        parameters_json_schema=_VERDICT_SCHEMA,
        description="Record whether the user's message fits the goal.",
        kind="output",
    )
