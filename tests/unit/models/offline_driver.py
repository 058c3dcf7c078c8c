"""Real transcripts for the offline model's unit tests: the model decides, the real
tools run (ledger in the test's data dir), and the transcript grows the way the
workflow grows it (a `Refuse` shown as the agent's reply, policy refusals and saga
compensations as tool results). Approvals are granted unless a test says otherwise.

A small stand-in for the workflow, so each decision can be looked at on its own; the
workflow tests play the same scripts on the time-skipping server.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

from onward.agent.decisions import (
    HANDOFF_TOOL,
    AskUser,
    CallTools,
    Decision,
    Finish,
    Handoff,
    Refuse,
    ToolCall,
)
from onward.agent.messages import (
    AssistantMessage,
    Message,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
    UserMessage,
)
from onward.agent.orchestration import schema_errors
from onward.agent.specs import GoalSpec
from onward.exceptions import ToolArgumentsError, ToolRefused
from onward.goals.catalog import GoalCatalog
from onward.models.offline import plan_next
from onward.tools import ToolContext


@dataclass
class Conversation:
    """One conversation with the offline model and the goal's real tools."""

    goal: GoalSpec
    conversation_id: str = field(default_factory=lambda: f"conv-{uuid.uuid4().hex[:8]}")
    messages: list[Message] = field(default_factory=list[Message])
    decisions: list[Decision] = field(default_factory=list[Decision])
    approve: bool = True
    max_steps: int = 12

    @classmethod
    def of(cls, goal: str, **kwargs: Any) -> Conversation:
        return cls(goal=GoalCatalog.discover().spec(goal), **kwargs)

    def say(self, text: str) -> str:
        """Send `text`; returns the agent's reply once it waits for the user again."""
        self.messages.append(UserMessage(text=text))
        first = True
        for _ in range(self.max_steps):
            decision = plan_next(self.goal, self.messages, judge=first and self.goal.guardrail)
            first = False
            self.decisions.append(decision)
            if isinstance(decision, AskUser | Refuse):
                self.messages.append(AssistantMessage(text=decision.text))
                return decision.text
            if isinstance(decision, Finish):
                self.messages.append(AssistantMessage(text=decision.answer))
                return decision.answer
            if isinstance(decision, Handoff):
                self._handoff(decision)
                continue
            assert isinstance(decision, CallTools), decision
            self._run(decision.calls)
        raise AssertionError(f"no reply within {self.max_steps} steps: {self.messages[-3:]}")

    def _handoff(self, handoff: Handoff) -> None:
        target = self.goal.agent(handoff.goal)
        assert target is not None, handoff
        args = {"goal": target.name}
        self.messages.append(ToolCallMessage(call_id=handoff.call_id, tool=HANDOFF_TOOL, args=args))
        self.messages.append(
            ToolResultMessage(
                call_id=handoff.call_id, tool=HANDOFF_TOOL, ok=True, content=target.description
            )
        )
        self.goal = target

    # ------------------------------------------------------------------ tools

    def _run(self, calls: list[ToolCall]) -> None:
        failed = False
        for call in calls:
            self.messages.append(
                ToolCallMessage(call_id=call.call_id, tool=call.tool, args=call.args)
            )
            ok, content, error, ran = self._one(call)
            self.messages.append(
                ToolResultMessage(
                    call_id=call.call_id, tool=call.tool, ok=ok, content=content, error=error
                )
            )
            failed = failed or (ran and not ok)
        if failed and self.goal.saga:
            self._compensate()

    def _one(self, call: ToolCall) -> tuple[bool, Any, str | None, bool]:
        spec = self.goal.tool(call.tool)
        assert spec is not None and spec.model_visible, f"called {call.tool}"
        problem = schema_errors(spec, call.args)
        if problem is not None:
            return False, None, f"invalid arguments: {problem}", False
        if spec.approval == "confirm" and not self.approve:
            return False, None, "not run: rejected by the user", False
        return self._invoke(call.tool, call.call_id, call.args)

    def _invoke(
        self, tool: str, call_id: str, args: dict[str, Any]
    ) -> tuple[bool, Any, str | None, bool]:
        ctx = ToolContext(conversation_id=self.conversation_id, call_id=call_id, attempt=1)
        try:
            content = asyncio.run(GoalCatalog.discover().tool(tool).invoke(args, ctx))
        except ToolArgumentsError as exc:
            return False, None, f"invalid arguments: {exc}", True
        except ToolRefused as exc:
            return False, None, f"refused: {exc}", True
        except Exception as exc:
            return False, None, f"{type(exc).__name__}: {exc}", True
        return True, content, None, True

    def _compensate(self) -> None:
        done = [
            (m, self.result(m.call_id)) for m in self.messages if isinstance(m, ToolCallMessage)
        ]
        undone: list[str] = []
        for call, result in reversed(done):
            spec = self.goal.tool(call.tool)
            if result is None or not result.ok or spec is None or not spec.compensation:
                continue
            comp = GoalCatalog.discover().tool(spec.compensation)
            content = (
                cast(dict[str, Any], result.content) if isinstance(result.content, dict) else {}
            )
            pool: dict[str, Any] = {**call.args, **content}
            args = {k: v for k, v in pool.items() if k in comp.args_model.model_fields}
            ok, content, error, _ = self._invoke(comp.name, f"undo-{call.call_id}", args)
            self.messages.append(
                ToolResultMessage(
                    call_id=f"undo-{call.call_id}",
                    tool=comp.name,
                    ok=ok,
                    content=content,
                    error=error,
                )
            )
            undone.append(f"{call.tool} ({comp.name})")
        self.messages.append(
            NoticeMessage(text="A step failed, so earlier steps were undone: " + ", ".join(undone))
        )

    # ---------------------------------------------------------------- reading

    def result(self, call_id: str) -> ToolResultMessage | None:
        return next(
            (m for m in self.messages if isinstance(m, ToolResultMessage) and m.call_id == call_id),
            None,
        )

    def calls(self, tool: str | None = None) -> list[ToolCallMessage]:
        return [
            m
            for m in self.messages
            if isinstance(m, ToolCallMessage) and (tool is None or m.tool == tool)
        ]

    def results(self, tool: str) -> list[ToolResultMessage]:
        return [m for m in self.messages if isinstance(m, ToolResultMessage) and m.tool == tool]
