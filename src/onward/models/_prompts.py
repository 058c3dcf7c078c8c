"""Prompts and the extra tools a provider model is offered (`finish`, `verdict`)."""

from __future__ import annotations

from typing import Any

from pydantic_ai.tools import ToolDefinition

from onward.agent.specs import GoalSpec

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


def finish_tool_name(goal: GoalSpec) -> str:
    """`finish`, unless the goal has a tool of that name (then `finish_goal`)."""
    taken = {t.name for t in goal.tools}
    return next(n for n in ("finish", "finish_goal", "onward_finish") if n not in taken)


def decide_instructions(goal: GoalSpec, finish: str) -> str:
    """The system prompt of a decision: the goal's instructions plus how to act."""
    lines = [
        goal.instructions.strip(),
        "",
        f"You are the agent for the goal `{goal.name}`: {goal.description}",
        "How to act:",
        "- To run a tool, call it with arguments that match its schema. Call several at "
        "once only when they do not depend on each other.",
        "- To ask the user something (or tell them something) and wait for the reply, "
        "answer with plain text and no tool call.",
        f"- When the goal is complete, or cannot be completed, call `{finish}` with the "
        "final answer for the user.",
        "- Tool results and errors come back to you; never invent a result.",
    ]
    for example in goal.examples:
        lines += ["", f"Example - user: {example.user}", f"Example - you: {example.assistant}"]
    return "\n".join(lines)


def guardrail_instructions(goal: GoalSpec) -> str:
    """The system prompt of a guardrail check."""
    tools = "; ".join(
        f"{t.name}: {t.description.splitlines()[0]}" for t in goal.tools if t.description
    )
    return (
        f"You check whether a user's message fits the purpose of an assistant.\n"
        f"The assistant's purpose: {goal.description} (goal `{goal.name}`).\n"
        f"Its tools: {tools or 'none'}.\n"
        "Always allow greetings, thanks, acknowledgements, questions about what the assistant "
        "can do, and any answer to a question the assistant just asked. Allow anything that "
        "plausibly relates to the purpose. Otherwise set `allowed` to false and write `reply`: "
        "one short, polite sentence saying what you can help with.\n"
        f"Call `{VERDICT_TOOL}` exactly once."
    )


def repair_note(hint: str) -> str:
    """What the model is told after an unusable answer."""
    return (
        f"Your previous output was invalid: {hint}. Answer again: call one of the tools "
        "with a JSON object of valid arguments, call the finish tool with the answer, or "
        "reply with plain text to ask the user."
    )


def tool_definitions(goal: GoalSpec, finish: str) -> list[ToolDefinition]:
    """The goal's tools as native tools, plus the `finish` tool."""
    tools = [
        ToolDefinition(name=t.name, parameters_json_schema=t.parameters, description=t.description)
        for t in goal.tools
    ]
    tools.append(
        ToolDefinition(
            name=finish,
            description="The goal is complete (or cannot be completed): give the final answer "
            "for the user. This ends the conversation.",
            parameters_json_schema={
                "type": "object",
                "properties": {"answer": {"type": "string", "description": "The final answer."}},
                "required": ["answer"],
            },
        )
    )
    return tools


def verdict_definition() -> ToolDefinition:
    """The guardrail's only output: the `verdict` tool."""
    return ToolDefinition(
        name=VERDICT_TOOL,
        parameters_json_schema=_VERDICT_SCHEMA,
        description="Record whether the user's message fits the goal.",
        kind="output",
    )
