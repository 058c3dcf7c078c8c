"""`ConversationWorkflow`: one durable workflow per conversation, owning the agent loop.

Loop (DESIGN section 2): wait for input -> guardrail -> decide -> run tools (with
approvals) -> account usage -> repeat. Every model and tool call is an activity, so
history records each decision and a crash resumes without repeating one.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from onward.agent import budget as budgets
    from onward.agent.activity_contracts import (
        ACTIVITY_DECIDE,
        ACTIVITY_GUARDRAIL,
        DecideResult,
    )
    from onward.agent.approvals import refusal
    from onward.agent.contracts import (
        QUERY_STATE,
        UPDATE_DECIDE_APPROVAL,
        UPDATE_END,
        UPDATE_RAISE_BUDGET,
        UPDATE_SEND_MESSAGE,
        WORKFLOW_NAME,
        ConversationResult,
        ConversationSnapshot,
        ConversationState,
        DecideApproval,
        EndConversation,
        RaiseBudget,
        SendMessage,
        SendMessageResult,
        StartConversation,
        StateQuery,
        Status,
    )
    from onward.agent.decisions import AskUser, CallTools, Decision, Finish
    from onward.agent.events import RETAINED_ITEMS
    from onward.agent.messages import (
        AssistantMessage,
        NoticeMessage,
        UserMessage,
    )
    from onward.agent.orchestration import ToolRunner, activity_failure_reason
    from onward.agent.publisher import Publisher
    from onward.agent.retry import model_retry_policy
    from onward.models.base import GuardrailRequest, GuardrailResponse, ModelRequest
    from onward.observability import METRIC_BUDGET_STOPS

INPUT_REJECTED = "InputRejected"
RESTING_STATUSES = ("waiting_for_user", "waiting_for_approval", "budget_exhausted", "ended")
SA_GOAL = SearchAttributeKey.for_keyword("OnwardGoal")
SA_OWNER = SearchAttributeKey.for_keyword("OnwardOwner")
SA_STATUS = SearchAttributeKey.for_keyword("OnwardStatus")
SA_COST = SearchAttributeKey.for_float("OnwardCostUsd")


def _reject(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=INPUT_REJECTED, non_retryable=True)


@workflow.defn(name=WORKFLOW_NAME)
class ConversationWorkflow:
    @workflow.init
    def __init__(self, start: StartConversation) -> None:
        self._s: ConversationState = start.carried or ConversationState(
            conversation_id=start.conversation_id,
            owner=start.owner,
            goal=start.goal,
            options=start.options,
        )
        self._status: Status = "waiting_for_user"
        self._status_detail: str | None = None
        self._in_turn = False
        self._interrupt = False
        self._turns_this_run = 0
        self._model_calls = 0
        self._indexed: tuple[str, str, str, float] | None = None
        stream_state = self._s.stream
        self._s.stream = None  # lives in the stream object until continue-as-new
        self._out = Publisher(self._s, WorkflowStream(prior_state=stream_state))
        self._tools = ToolRunner(self._s, self._set_status, self._out)

    # ----------------------------------------------------------------- the loop

    @workflow.run
    async def run(self, start: StartConversation) -> ConversationResult:
        s = self._s
        if start.first_message and start.carried is None:
            s.inbox.append(start.first_message)
        idle = timedelta(seconds=s.options.idle_timeout_s)
        while not s.ended:
            if self._should_continue_as_new():
                stream = self._out.stream
                stream.detach_pollers()
                await workflow.wait_condition(workflow.all_handlers_finished)
                s.runs += 1
                # Bound what the next run carries: old offsets get a `reset`.
                carried = stream.get_state()
                stream.truncate(max(0, carried.base_offset + len(carried.log) - RETAINED_ITEMS))
                s.stream = stream.get_state()
                workflow.continue_as_new(
                    StartConversation(
                        conversation_id=s.conversation_id,
                        owner=s.owner,
                        goal=s.goal,
                        options=s.options,
                        carried=s,
                    )
                )
            self._set_status("waiting_for_user")
            try:
                await workflow.wait_condition(lambda: bool(s.inbox) or s.ended, timeout=idle)
            except TimeoutError:
                self._end(f"no input for {idle}: ended as idle")
                break
            if s.ended:
                break
            self._in_turn = True
            try:
                await self._turn(s.inbox.pop(0))
            finally:
                self._in_turn = False
            self._turns_this_run += 1
        self._set_status("ended")
        self._out.stream.detach_pollers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ConversationResult(
            conversation_id=s.conversation_id,
            answer=s.answer,
            usage=s.usage,
            tool_calls=s.tool_calls,
            message_count=len(s.messages),
            end_reason=s.end_reason or "ended",
        )

    def _should_continue_as_new(self) -> bool:
        if self._turns_this_run >= self._s.options.turns_before_continue_as_new:
            return True
        return workflow.info().is_continue_as_new_suggested()

    async def _turn(self, text: str) -> None:
        s = self._s
        if not await self._guardrail(text):
            return
        self._out.say(UserMessage(text=text))
        s.turns += 1
        for _ in range(s.options.max_steps_per_turn):
            if not await self._within_budget():
                return
            self._drain_inbox_if_interrupting()
            decision = await self._decide()
            if decision is None or s.ended:
                return
            if isinstance(decision, AskUser):
                self._out.say(AssistantMessage(text=decision.text))
                return
            if isinstance(decision, Finish):
                self._out.say(AssistantMessage(text=decision.answer))
                s.answer = decision.answer
                self._end("finished")
                return
            await self._call_tools(decision)
            if s.ended:
                return
        self._out.say(
            NoticeMessage(
                text=f"Stopped after {s.options.max_steps_per_turn} steps without an answer; "
                "send a message to continue.",
                level="warning",
            )
        )

    async def _call_tools(self, decision: CallTools) -> None:
        if decision.text:
            self._out.say(AssistantMessage(text=decision.text))
        self._set_status("running_tools")
        await self._tools.run_all(decision.calls)

    def _drain_inbox_if_interrupting(self) -> None:
        s = self._s
        if s.options.message_policy == "interrupt":
            while s.inbox:
                self._out.say(UserMessage(text=s.inbox.pop(0)))
        self._interrupt = False

    # ------------------------------------------------------------ model calls

    def _llm_options(self) -> dict[str, object]:
        o = self._s.options
        return {
            "task_queue": o.llm_task_queue,
            "start_to_close_timeout": timedelta(seconds=o.model_timeout_s),
            "heartbeat_timeout": timedelta(seconds=o.model_heartbeat_s),
            "retry_policy": model_retry_policy(o.model_max_attempts),
        }

    async def _guardrail(self, text: str) -> bool:
        s = self._s
        self._set_status("thinking")
        try:
            response = await workflow.execute_activity(
                ACTIVITY_GUARDRAIL,
                GuardrailRequest(
                    conversation_id=s.conversation_id, goal=s.goal, messages=s.messages, text=text
                ),
                result_type=GuardrailResponse,
                **self._llm_options(),  # type: ignore[arg-type]
            )
        except Exception as exc:
            self._out.say(UserMessage(text=text))
            self._model_failed(exc)
            return False
        s.usage = s.usage + response.usage
        self._out.event("usage", usage=s.usage)
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

    async def _decide(self) -> Decision | None:
        """One validated decision, re-asking a bounded number of times on malformed
        output. None when the model failed for good (the user has been told)."""
        s = self._s
        hint: str | None = None
        for _ in range(s.options.max_repairs + 1):
            result = await self._decide_once(hint)
            if result is None:
                return None
            s.usage = s.usage + result.usage
            s.model_name = result.model_name
            self._out.event("usage", usage=s.usage)
            if result.decision is not None:
                return result.decision
            hint = result.malformed
        self._out.say(
            NoticeMessage(
                text="The model kept giving answers I could not use "
                f"({hint}). Please rephrase or try again.",
                level="error",
            )
        )
        return None

    async def _decide_once(self, hint: str | None) -> DecideResult | None:
        s = self._s
        while True:
            self._set_status("thinking")
            request = ModelRequest(
                conversation_id=s.conversation_id,
                goal=s.goal,
                messages=list(s.messages),
                repair_hint=hint,
            )
            self._model_calls += 1
            self._out.event("model_call_started", detail=str(self._model_calls))
            handle = workflow.start_activity(
                ACTIVITY_DECIDE,
                request,
                result_type=DecideResult,
                cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
                **self._llm_options(),  # type: ignore[arg-type]
            )
            await workflow.wait_condition(lambda h=handle: h.done() or self._interrupt)
            if not handle.done():
                # A newer user message supersedes this plan: cancel and plan again.
                handle.cancel()
                with contextlib.suppress(ActivityError, asyncio.CancelledError):
                    await handle
                self._drain_inbox_if_interrupting()
                continue
            try:
                return handle.result()
            except Exception as exc:
                self._model_failed(exc)
                return None

    def _model_failed(self, exc: BaseException) -> None:
        self._out.say(
            NoticeMessage(
                text=f"The model could not answer: {activity_failure_reason(exc)}. "
                "Your conversation is kept; send a message to try again.",
                level="error",
            )
        )

    async def _within_budget(self) -> bool:
        s = self._s
        reason = budgets.exhausted(s.usage, s.options.budget)
        if reason is None:
            return True
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

    # --------------------------------------------------------------- handlers

    @workflow.update(name=UPDATE_SEND_MESSAGE)
    async def send_message(self, msg: SendMessage) -> SendMessageResult:
        s = self._s
        s.inbox.append(msg.text)
        queued = self._in_turn
        if queued and s.options.message_policy == "interrupt":
            self._interrupt = True
        return SendMessageResult(index=len(s.messages) + len(s.inbox) - 1, queued=queued)

    @send_message.validator
    def _validate_send(self, msg: SendMessage) -> None:
        if self._s.ended:
            raise _reject("the conversation has ended")
        if not msg.text.strip():
            raise _reject("the message is empty")

    @workflow.update(name=UPDATE_DECIDE_APPROVAL)
    async def decide_approval(self, decision: DecideApproval) -> None:
        self._tools.decide(decision)

    @decide_approval.validator
    def _validate_decision(self, decision: DecideApproval) -> None:
        reason = refusal(self._tools.pending, decision)
        if reason is not None:
            raise _reject(reason)

    @workflow.update(name=UPDATE_RAISE_BUDGET)
    async def raise_budget(self, request: RaiseBudget) -> None:
        o = self._s.options
        o.budget = budgets.raised(o.budget, request)

    @raise_budget.validator
    def _validate_raise(self, request: RaiseBudget) -> None:
        if self._s.ended:
            raise _reject("the conversation has ended")
        reason = budgets.raise_refusal(self._s.options.budget, request)
        if reason is not None:
            raise _reject(reason)

    @workflow.update(name=UPDATE_END)
    async def end(self, request: EndConversation) -> None:
        self._end(request.reason)

    @end.validator
    def _validate_end(self, request: EndConversation) -> None:
        if self._s.ended:
            raise _reject("the conversation has already ended")

    @workflow.query(name=QUERY_STATE)
    def state(self, query: StateQuery) -> ConversationSnapshot:
        s = self._s
        return ConversationSnapshot(
            conversation_id=s.conversation_id,
            owner=s.owner,
            goal=s.goal.name,
            status=self._status,
            status_detail=self._status_detail,
            pending_approvals=list(self._tools.pending.values()),
            usage=s.usage,
            budget=s.options.budget,
            message_count=len(s.messages),
            turns=s.turns,
            runs=s.runs,
            model_name=s.model_name,
            offset=query.offset,
            messages=s.messages[query.offset :],
            answer=s.answer,
        )

    # ---------------------------------------------------------------- helpers

    def _set_status(self, status: Status, detail: str | None = None) -> None:
        if self._s.ended:
            status = "ended"
        self._status = status
        self._status_detail = detail
        self._out.status(status, detail)
        if status in RESTING_STATUSES:
            self._index(status)

    def _index(self, status: Status) -> None:
        """Upsert search attributes at rest points only: each upsert is a history event."""
        s = self._s
        if not s.options.search_attributes:
            return
        indexed = (s.goal.name, s.owner, status, round(s.usage.known_cost_usd, 6))
        if indexed == self._indexed:
            return
        self._indexed = indexed
        # Histories recorded before indexing existed must replay without the upserts.
        if not workflow.patched("onward-search-attributes"):
            return
        workflow.upsert_search_attributes(
            [
                SA_GOAL.value_set(s.goal.name),
                SA_OWNER.value_set(s.owner),
                SA_STATUS.value_set(status),
                SA_COST.value_set(s.usage.known_cost_usd),
            ]
        )

    def _end(self, reason: str) -> None:
        s = self._s
        if not s.ended:
            s.ended = True
            s.end_reason = reason
        self._set_status("ended")
