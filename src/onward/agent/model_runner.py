"""Running a conversation's model calls inside the workflow: decide, review, guardrail.

`ModelRunner` asks for one validated decision at a time: it builds the request from
references (bounded history), starts the decide activity, cancels it when the user
stops the turn or an interrupting message arrives, re-asks on malformed output, and
accounts the tokens. The workflow keeps the loop and only sees decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from onward.agent import budget as budgets
from onward.agent import plans
from onward.agent import transcript as window
from onward.agent.activity_contracts import (
    ACTIVITY_DECIDE,
    ACTIVITY_GUARDRAIL,
    DecideRequest,
    DecideResult,
    GuardrailRequest,
    GuardrailResponse,
)
from onward.agent.contracts import ConversationOptions, ConversationState, Outcome
from onward.agent.decisions import Decision, Review
from onward.agent.events import ModelCallStarted, Reviewed, UsageChanged
from onward.agent.messages import (
    NOTICE_REVIEW_REJECTED,
    AssistantMessage,
    Message,
    NoticeMessage,
    Usage,
    UserMessage,
)
from onward.agent.orchestration import activity_failure_reason
from onward.agent.publisher import Publisher
from onward.agent.retry import model_retry_policy
from onward.agent.specs import GoalSpec
from onward.agent.status import StatusBoard
from onward.observability import METRIC_BUDGET_STOPS

REVIEW_DRAFT_CHARS = 2000


@dataclass(frozen=True)
class ModelActivityOptions:
    """How a model activity runs: its queue (capped concurrency), timeouts and retries,
    all derived from the conversation's recorded options, so replay sees the same."""

    task_queue: str
    start_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy

    @classmethod
    def of(cls, options: ConversationOptions) -> ModelActivityOptions:
        return cls(
            task_queue=options.llm_task_queue,
            start_to_close_timeout=timedelta(seconds=options.model_timeout_s),
            heartbeat_timeout=timedelta(seconds=options.model_heartbeat_s),
            retry_policy=model_retry_policy(options.model_max_attempts),
        )


@dataclass
class TurnControl:
    """What the loop tells a model call in flight: stop the turn, or plan again with a
    newer message (`take_interrupting` moves it into the transcript)."""

    stopped: Callable[[], bool]
    interrupted: Callable[[], bool]
    take_interrupting: Callable[[], None]


class ModelRunner:
    """The model calls of one conversation run."""

    def __init__(
        self,
        state: ConversationState,
        out: Publisher,
        status: StatusBoard,
        control: TurnControl,
    ) -> None:
        self._s = state
        self._out = out
        self._set_status = status.set
        self._control = control
        self.inflight: workflow.ActivityHandle[DecideResult] | None = None
        self.last_call: Usage | None = None
        """The last decide call's usage: an autonomous agent stops before a call that
        would exceed its budget."""
        self.check_topic = False
        """Set at the start of a turn: the next decision also judges the user's message."""
        self._calls = 0
        self._sent_specs: set[str] = set()
        """Goal specs an activity has stored this run: later requests send the ref."""

    def _options(self) -> ModelActivityOptions:
        return ModelActivityOptions.of(self._s.options)

    def cancel_inflight(self) -> None:
        if self.inflight is not None and not self.inflight.done():
            self.inflight.cancel()

    async def within_budget(self, end: Callable[[str, Outcome], None]) -> bool:
        """Whether the next model call may start. A conversation at its budget waits for
        a raise (or its end); a sub-agent, which cannot ask, ends (`end`) instead, also
        when one more call the size of the last would pass its share."""
        s = self._s
        reason = budgets.exhausted(s.usage, s.options.budget)
        if reason is None and s.options.autonomous and self.last_call is not None:
            reason = budgets.next_call_exceeds(s.usage, self.last_call, s.options.budget)
        if reason is None:
            return True
        if s.options.autonomous:
            self._out.say(NoticeMessage(text=f"Stopped: {reason}.", level="warning"))
            end(f"stopped: {reason}", "budget_exhausted")
            return False
        self._out.say(
            NoticeMessage(
                text=f"Paused: {reason}. Raise the budget to continue, or end the conversation.",
                level="warning",
            )
        )
        self._set_status("budget_exhausted", reason)
        workflow.metric_meter().create_counter(METRIC_BUDGET_STOPS, "Budget stops").add(1)
        await workflow.wait_condition(
            lambda: s.ended or budgets.exhausted(s.usage, s.options.budget) is None
        )
        return not s.ended

    async def decide(
        self,
        goal: GoalSpec | None = None,
        *,
        review: bool = False,
        extra: list[Message] | None = None,
    ) -> Decision | None:
        """One validated decision, re-asking a bounded number of times on malformed
        output or a decision the goal does not allow. None when the model failed for
        good (the user has been told)."""
        s = self._s
        goal = goal or s.goal
        hint: str | None = None
        # Only the first decision after a user message judges that message.
        check_topic, self.check_topic = self.check_topic and not review, False
        goal_ref = window.spec_ref(goal)
        for _ in range(s.options.max_repairs + 1):
            request = DecideRequest(
                conversation_id=s.conversation_id,
                goal=None if goal_ref in self._sent_specs else goal,
                goal_ref=goal_ref,
                extra=extra or [],
                repair_hint=hint,
                review=review,
                check_topic=check_topic,
                max_attempts=s.options.model_max_attempts,
                model=s.options.model,
            )
            result = await self._decide_once(request)
            if result is None:
                return None
            if result.transcript is not None:
                # The activity stored the goal and the messages: later requests refer.
                self._sent_specs.add(goal_ref)
                window.adopt(s, result.transcript)
            s.usage = s.usage + result.usage
            self.last_call = result.usage
            s.model_name = result.model_name
            self._out.emit(UsageChanged(usage=s.usage))
            if result.decision is not None:
                hint = plans.decision_problem(
                    goal, result.decision, review=review, check_topic=check_topic
                )
                if hint is None:
                    return result.decision
            else:
                hint = result.malformed
                if check_topic:
                    # The guardrail could not judge: let the message through, say so.
                    check_topic = False
                    self._out.say(
                        NoticeMessage(
                            text="Could not check whether this message fits the goal; "
                            "it was let through.",
                        )
                    )
        self._out.say(
            NoticeMessage(
                text="The model kept giving answers I could not use "
                f"({hint}). Please rephrase or try again.",
                level="error",
            )
        )
        return None

    async def _decide_once(self, request: DecideRequest) -> DecideResult | None:
        s = self._s
        control = self._control
        while True:
            self._set_status("thinking")
            # Read at each attempt: an interrupting message may have joined the window.
            request = request.model_copy(
                update={
                    "transcript": s.transcript,
                    "messages": window.by_reference(window.unstored(s)),
                }
            )
            self._calls += 1
            self._out.emit(ModelCallStarted(detail=str(self._calls)))
            options = self._options()
            handle = workflow.start_activity(
                ACTIVITY_DECIDE,
                request,
                result_type=DecideResult,
                cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
                task_queue=options.task_queue,
                start_to_close_timeout=options.start_to_close_timeout,
                heartbeat_timeout=options.heartbeat_timeout,
                retry_policy=options.retry_policy,
            )
            self.inflight = handle
            await workflow.wait_condition(
                lambda h=handle: h.done() or control.interrupted() or control.stopped()
            )
            if not handle.done() and control.stopped():
                handle.cancel()
                with contextlib.suppress(ActivityError, asyncio.CancelledError):
                    await handle
                self.inflight = None
                self._out.forget_status()
                self._out.say(NoticeMessage(text="Stopped. Send a message to go on."))
                return None
            if not handle.done():
                # A newer user message supersedes this plan: cancel and plan again.
                handle.cancel()
                with contextlib.suppress(ActivityError, asyncio.CancelledError):
                    await handle
                control.take_interrupting()
                continue
            self._out.forget_status()
            try:
                return handle.result()
            except Exception as exc:
                self.failed(exc)
                return None
            finally:
                self.inflight = None

    def failed(self, exc: BaseException) -> None:
        self._out.say(
            NoticeMessage(
                text=f"The model could not answer: {activity_failure_reason(exc)}. "
                "Your conversation is kept; send a message to try again.",
                level="error",
            )
        )

    async def review(self, answer: str, rounds_done: int) -> bool:
        """Whether the goal's reviewer approves `answer` (round `rounds_done + 1`); its
        feedback goes back to the planner as a notice when it does not."""
        s = self._s
        reviewer = s.goal.reviewer
        assert reviewer is not None  # the caller checked
        rounds = s.goal.max_review_rounds
        verdict = await self.decide(
            goal=reviewer, review=True, extra=[AssistantMessage(text=answer)]
        )
        if not isinstance(verdict, Review):
            self._out.say(NoticeMessage(text="The answer could not be reviewed.", level="warning"))
            return True
        self._out.emit(Reviewed(agent=reviewer.name, ok=verdict.approved, detail=verdict.feedback))
        if verdict.approved:
            return True
        self._out.say(
            NoticeMessage(
                text=f"{plans.REVIEW_REJECTED} (round {rounds_done} of "
                f"{rounds}): {verdict.feedback or 'no reason given'}\n\n"
                f"Draft: {answer[:REVIEW_DRAFT_CHARS]}",
                code=NOTICE_REVIEW_REJECTED,
            )
        )
        return False

    async def guardrail(self, text: str) -> bool:
        """The separate guardrail call of runs recorded before it moved into the
        decision: True when `text` may go on to the agent."""
        s = self._s
        self._set_status("thinking")
        options = self._options()
        try:
            response = await workflow.execute_activity(
                ACTIVITY_GUARDRAIL,
                GuardrailRequest(
                    conversation_id=s.conversation_id, goal=s.goal, messages=s.messages, text=text
                ),
                result_type=GuardrailResponse,
                task_queue=options.task_queue,
                start_to_close_timeout=options.start_to_close_timeout,
                heartbeat_timeout=options.heartbeat_timeout,
                retry_policy=options.retry_policy,
            )
        except Exception as exc:
            self._out.say(UserMessage(text=text))
            self.failed(exc)
            return False
        s.usage = s.usage + response.usage
        self._out.emit(UsageChanged(usage=s.usage))
        if response.verdict.allowed:
            return True
        self._out.say(UserMessage(text=text))
        self._out.say(
            AssistantMessage(
                text=response.verdict.reply
                or f"I can only help with {s.goal.description.rstrip('.').lower()}."
            )
        )
        return False
