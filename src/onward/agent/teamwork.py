"""Multi-agent steps of a turn: delegating a plan, handing off, reviewing the answer.

A plan runs as child conversations (`PlanRunner`); a handoff switches the goal the
conversation speaks for; a goal with a reviewer has the answer of a turn that ran a
plan reviewed before the user sees it, for a bounded number of rounds.
"""

from __future__ import annotations

from collections.abc import Callable

from onward.agent.contracts import ConversationState, Status
from onward.agent.decisions import HANDOFF_TOOL, Handoff, RunPlan
from onward.agent.delegation import PlanRunner
from onward.agent.events import HandedOff
from onward.agent.messages import (
    AssistantMessage,
    NoticeMessage,
    ToolCallMessage,
    ToolResultMessage,
)
from onward.agent.model_runner import ModelRunner
from onward.agent.orchestration import ToolRunner
from onward.agent.publisher import Publisher


class Teamwork:
    """The multi-agent part of one conversation's turns."""

    def __init__(
        self,
        state: ConversationState,
        out: Publisher,
        set_status: Callable[[Status], None],
        tools: ToolRunner,
        plans: PlanRunner,
        model: ModelRunner,
    ) -> None:
        self._s = state
        self._out = out
        self._set_status = set_status
        self._tools = tools
        self._plans = plans
        self._model = model
        self._plan_ran = False
        self._review_rounds = 0

    def new_turn(self) -> None:
        self._plan_ran = False
        self._review_rounds = 0

    async def run_plan(self, plan: RunPlan) -> None:
        if plan.text:
            self._out.say(AssistantMessage(text=plan.text))
        self._set_status("delegating")
        self._plan_ran = True
        await self._plans.run(plan, self._tools.claim_id(plan.call_id))

    def hand_off(self, handoff: Handoff) -> None:
        s = self._s
        target = s.goal.agent(handoff.goal)
        assert target is not None  # checked by plans.decision_problem
        call_id = self._tools.claim_id(handoff.call_id)
        if handoff.text:
            self._out.say(AssistantMessage(text=handoff.text))
        self._out.say(
            ToolCallMessage(call_id=call_id, tool=HANDOFF_TOOL, args={"goal": target.name})
        )
        self._out.say(
            ToolResultMessage(
                call_id=call_id,
                tool=HANDOFF_TOOL,
                ok=True,
                content=f"The conversation is now with the `{target.name}` agent: "
                f"{target.description}",
            )
        )
        s.goal = target
        self._out.emit(HandedOff(agent=target.name))

    async def approved(self, answer: str) -> bool:
        """Whether the answer may be given: True without a reviewer or a plan this turn,
        or when the reviewer approves; False sends its feedback back to the planner."""
        s = self._s
        if s.goal.reviewer is None or not self._plan_ran:
            return True
        rounds = s.goal.max_review_rounds
        if self._review_rounds >= rounds:
            self._out.say(
                NoticeMessage(
                    text=f"The reviewer did not approve within {rounds} rounds; "
                    "this is the last draft.",
                    level="warning",
                )
            )
            return True
        self._review_rounds += 1
        return await self._model.review(answer, self._review_rounds)
