"""Running a plan: each step is a child conversation workflow.

Steps start as soon as the steps they depend on are done, so independent steps run in
parallel. A deadline or the parent's cancellation cancels the children still running;
a cancelled child returns what it had done (its partial result), which is reported.
Usage rolls up into the parent; each child gets an equal share of what is left of
the parent's budget. Approvals a child asks for are surfaced on the parent, so the
user sees and decides them in the conversation they are in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

from onward.agent import budget as budgets
from onward.agent import plans
from onward.agent.contracts import (
    SIGNAL_APPROVAL_DECISION,
    SIGNAL_CHILD_APPROVAL,
    WORKFLOW_NAME,
    Budget,
    ChildApproval,
    ConversationResult,
    ConversationState,
    DecideApproval,
    ParentLink,
    PendingApproval,
    StartConversation,
    StepResult,
)
from onward.agent.decisions import PLAN_TOOL, PlanStep, RunPlan
from onward.agent.events import (
    AgentFinished,
    AgentStarted,
    ApprovalDecided,
    ApprovalRequested,
    UsageChanged,
)
from onward.agent.messages import ToolCallMessage, Usage
from onward.agent.orchestration import activity_failure_reason
from onward.agent.publisher import Publisher

PLAN_STOPS_ON_END = "onward-plan-stops-on-end"
"""Patch id: ending a conversation stops the plan it is running."""


@dataclass
class _Surfaced:
    approval: PendingApproval
    """As the parent shows it: `call_id` prefixed with the step key."""
    child_id: str
    child_call_id: str


class PlanRunner:
    """Runs plans for one conversation and relays its children's approvals."""

    def __init__(
        self,
        state: ConversationState,
        out: Publisher,
        on_pending: Callable[[PendingApproval, str | None], None],
        on_waiting: Callable[[bool], None],
    ) -> None:
        self._s = state
        self._out = out
        self._on_pending = on_pending
        self._on_waiting = on_waiting
        self.pending: dict[str, _Surfaced] = {}
        self._children: dict[str, tuple[str, str]] = {}  # step key -> (child id, goal)
        self._stop: str | None = None

    # ------------------------------------------------------------- approvals

    def surfaced(self) -> list[PendingApproval]:
        return [p.approval for p in self.pending.values()]

    def child_approval(self, signal: ChildApproval) -> None:
        """A child's approval opened or closed: mirror it here (and further up)."""
        child = self._children.get(signal.step_key)
        if child is None:
            return
        child_id, goal = child
        surfaced_id = f"{signal.step_key}:{signal.approval.call_id}"
        if signal.open:
            approval = signal.approval.model_copy(
                update={
                    "call_id": surfaced_id,
                    "agent": signal.approval.agent or goal,
                    "conversation_id": signal.approval.conversation_id or child_id,
                }
            )
            self.pending[surfaced_id] = _Surfaced(approval, child_id, signal.approval.call_id)
            self._out.emit(
                ApprovalRequested(
                    call_id=surfaced_id,
                    tool=approval.tool,
                    args=approval.args,
                    args_hash=approval.args_hash,
                    agent=approval.agent,
                    conversation_id=approval.conversation_id,
                )
            )
            self._on_pending(approval, None)
        else:
            closed = self.pending.pop(surfaced_id, None)
            if closed is None:
                return
            decision = signal.decision or "closed"
            self._out.emit(
                ApprovalDecided(
                    call_id=surfaced_id,
                    tool=closed.approval.tool,
                    decision=decision,
                    agent=closed.approval.agent,
                    conversation_id=closed.approval.conversation_id,
                )
            )
            self._on_pending(closed.approval, decision)
        self._on_waiting(bool(self.pending))

    async def forward(self, decision: DecideApproval) -> None:
        """Send a decision on a surfaced approval to the child that asked."""
        target = self.pending[decision.call_id]
        await workflow.get_external_workflow_handle(target.child_id).signal(
            SIGNAL_APPROVAL_DECISION, decision.model_copy(update={"call_id": target.child_call_id})
        )

    # ------------------------------------------------------------------ plans

    async def run(self, plan: RunPlan, call_id: str) -> list[StepResult]:
        """Run every step; return their results in plan order.

        Raises:
            asyncio.CancelledError: The conversation was cancelled; the children were
                cancelled first and the transcript records what they had done.
        """
        s = self._s
        s.plans += 1
        self._stop = None
        self._out.say(ToolCallMessage(call_id=call_id, tool=PLAN_TOOL, args=plan.model_dump()))
        to_run = len(plan.steps)
        share = budgets.share(s.options.budget, s.usage, to_run)
        results: dict[str, StepResult] = {}
        tasks = [
            asyncio.create_task(self._step(step, f"p{s.plans}.{step.id}", results, share))
            for step in plan.steps
        ]
        deadline = s.goal.plan_deadline_s
        cancelled = False
        # Ending the conversation (the user, DELETE) stops its plan too; histories from
        # before this waited for every step instead.
        stop_on_end = workflow.patched(PLAN_STOPS_ON_END)
        while not all(t.done() for t in tasks):
            # The step tasks are not awaited here, so a cancellation of the workflow lands
            # on this wait only; the steps see `_stop` and cancel their children.
            try:
                await workflow.wait_condition(
                    lambda: (
                        all(t.done() for t in tasks)
                        or (stop_on_end and s.ended and self._stop is None)
                    ),
                    timeout=timedelta(seconds=deadline) if deadline and not self._stop else None,
                )
            except TimeoutError:
                self._stop = f"the plan's deadline of {deadline:g} s passed"
            except asyncio.CancelledError:
                self._stop = "the conversation was cancelled"
                cancelled = True
            if stop_on_end and s.ended and self._stop is None:
                self._stop = "the conversation was ended"
        ordered = [results[step.id] for step in plan.steps]
        self._out.say(plans.plan_outcome(call_id, ordered))
        if cancelled:
            raise asyncio.CancelledError(self._stop)
        return ordered

    async def _step(
        self,
        step: PlanStep,
        key: str,
        results: dict[str, StepResult],
        share: Budget,
    ) -> None:
        s = self._s
        await workflow.wait_condition(
            lambda: all(d in results for d in step.depends_on) or self._stop is not None
        )
        child_id = f"{s.conversation_id}~{key}"
        if self._stop is not None:
            results[step.id] = StepResult(
                step_id=step.id,
                goal=step.goal,
                conversation_id=child_id,
                outcome="cancelled",
                partial=f"not started: {self._stop}",
            )
            return
        message = plans.step_message(step, [results[d] for d in step.depends_on])
        cache_key = plans.step_key(step.goal, message)
        cached = s.step_cache.get(cache_key)
        if cached is not None:
            results[step.id] = cached.model_copy(
                update={"step_id": step.id, "reused": True, "usage": Usage()}
            )
            self._out.emit(
                AgentFinished(
                    agent=step.goal,
                    conversation_id=cached.conversation_id,
                    detail="reused",
                    ok=True,
                )
            )
            return
        result = await self._child(step, key, child_id, message, share)
        s.usage = s.usage + result.usage
        self._out.emit(UsageChanged(usage=s.usage))
        if result.outcome == "finished":
            plans.remember(s, cache_key, result)
        results[step.id] = result

    async def _child(
        self, step: PlanStep, key: str, child_id: str, message: str, share: Budget
    ) -> StepResult:
        s = self._s
        goal = s.goal.agent(step.goal)
        assert goal is not None  # checked by plans.plan_problem before the plan runs
        self._children[key] = (child_id, step.goal)
        self._out.emit(AgentStarted(agent=step.goal, conversation_id=child_id))
        handle = await workflow.start_child_workflow(
            WORKFLOW_NAME,
            StartConversation(
                conversation_id=child_id,
                owner=s.owner,
                goal=goal,
                options=s.options.model_copy(update={"budget": share, "autonomous": True}),
                first_message=message,
                parent=ParentLink(conversation_id=s.conversation_id, step_key=key),
            ),
            id=child_id,
            task_queue=workflow.info().task_queue,
            task_timeout=workflow.info().task_timeout,
            result_type=ConversationResult,
            cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
        )
        try:
            await workflow.wait_condition(lambda: handle.done() or self._stop is not None)
        except asyncio.CancelledError:  # only if this task itself is cancelled
            self._stop = self._stop or "the conversation was cancelled"
        if not handle.done():
            handle.cancel()
        base = StepResult(
            step_id=step.id, goal=step.goal, conversation_id=child_id, outcome="failed"
        )
        try:
            r = await handle
        except (ChildWorkflowError, asyncio.CancelledError) as exc:
            outcome = "cancelled" if self._stop else "failed"
            result = base.model_copy(
                update={"outcome": outcome, "partial": activity_failure_reason(exc)}
            )
        else:
            partial = r.partial
            if r.outcome == "cancelled" and self._stop:
                partial = f"cancelled: {self._stop}" + (f". {partial}" if partial else "")
            result = base.model_copy(
                update={
                    "outcome": r.outcome,
                    "answer": r.answer,
                    "partial": partial,
                    "usage": r.usage,
                }
            )
        self._out.emit(
            AgentFinished(
                agent=step.goal,
                conversation_id=child_id,
                detail=result.outcome,
                ok=result.outcome == "finished",
            )
        )
        return result


class ParentNotifier:
    """A sub-agent's side of surfaced approvals: tells the parent conversation (if any)
    that one of its approvals opened or closed, by signal."""

    def __init__(self, parent: ParentLink | None) -> None:
        self._parent = parent
        self._signals: list[asyncio.Task[None]] = []

    def approval_changed(self, approval: PendingApproval, decision: str | None) -> None:
        """An approval opened (`decision` None) or closed with `decision`."""
        parent = self._parent
        if parent is None:
            return
        self._signals = [t for t in self._signals if not t.done()]
        handle = workflow.get_external_workflow_handle(parent.conversation_id)
        change = ChildApproval(
            step_key=parent.step_key, approval=approval, open=decision is None, decision=decision
        )
        self._signals.append(asyncio.create_task(handle.signal(SIGNAL_CHILD_APPROVAL, change)))

    async def sent(self) -> None:
        """Wait until every signal to the parent is sent (or failed: it may have ended)."""
        await asyncio.gather(*self._signals, return_exceptions=True)
