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
    from onward.agent.approvals import refusal
    from onward.agent.contracts import (
        QUERY_FORK_SOURCE,
        QUERY_STATE,
        SIGNAL_APPROVAL_DECISION,
        SIGNAL_CHILD_APPROVAL,
        SIGNAL_SEND_MESSAGE,
        UPDATE_DECIDE_APPROVAL,
        UPDATE_END,
        UPDATE_RAISE_BUDGET,
        UPDATE_SEND_MESSAGE,
        UPDATE_STOP,
        WORKFLOW_NAME,
        ChildApproval,
        ConversationResult,
        ConversationSnapshot,
        ConversationState,
        DecideApproval,
        EndConversation,
        ForkSource,
        ForkStart,
        Outcome,
        PendingApproval,
        RaiseBudget,
        SendMessage,
        SendMessageResult,
        StartConversation,
        StateQuery,
        Status,
    )
    from onward.agent.decisions import (
        HANDOFF_TOOL,
        AskUser,
        CallTools,
        Decision,
        Finish,
        Handoff,
        Refuse,
        Review,
        RunPlan,
        ToolCall,
    )
    from onward.agent.delegation import PlanRunner
    from onward.agent.events import RETAINED_ITEMS
    from onward.agent.graphs import run_graph_turn
    from onward.agent.mcp import McpCatalog
    from onward.agent.messages import (
        NOTICE_REVIEW_REJECTED,
        AssistantMessage,
        Message,
        NoticeLevel,
        NoticeMessage,
        ToolCallMessage,
        ToolResultMessage,
        Usage,
        UserMessage,
    )
    from onward.agent.orchestration import ToolRunner, activity_failure_reason
    from onward.agent.publisher import Publisher
    from onward.agent.retry import model_retry_policy
    from onward.agent.specs import GoalSpec
    from onward.exceptions import INPUT_REJECTED
    from onward.observability import METRIC_BUDGET_STOPS

REVIEW_DRAFT_CHARS = 2000
SEEN_MESSAGE_IDS = 256
"""Message ids remembered for de-duplication (a retry comes soon after the original)."""
LOOP_V2 = "onward-loop-v2"
"""Patch marking runs with the guardrail inside the decision and a finish that rests:
histories recorded before it replay the older loop (separate guardrail call, a
finish ends the conversation)."""
RESTING_STATUSES = ("waiting_for_user", "waiting_for_approval", "budget_exhausted", "ended")
SA_GOAL = SearchAttributeKey.for_keyword("OnwardGoal")
SA_OWNER = SearchAttributeKey.for_keyword("OnwardOwner")
SA_STATUS = SearchAttributeKey.for_keyword("OnwardStatus")
SA_COST = SearchAttributeKey.for_float("OnwardCostUsd")


def _reject(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=INPUT_REJECTED, non_retryable=True)


def _fork_notice(fork: ForkStart) -> str:
    text = f"Forked from `{fork.source_id}` after message {fork.at} (turn {fork.turns})."
    if fork.dropped_approvals:
        text += (
            f" {fork.dropped_approvals} approval(s) pending at that point were not carried "
            "over: ask again to run those tools."
        )
    return text


def _quoted(text: str, limit: int = 200) -> str:
    return f"“{text if len(text) <= limit else text[: limit - 1] + '…'}”"


@workflow.defn(name=WORKFLOW_NAME)
class ConversationWorkflow:
    @workflow.init
    def __init__(self, start: StartConversation) -> None:
        self._s: ConversationState = start.carried or ConversationState(
            conversation_id=start.conversation_id,
            owner=start.owner,
            goal=start.goal,
            options=start.options,
            parent=start.parent,
        )
        if start.fork is not None and start.carried is None:
            fork = start.fork
            # Nothing before the fork point runs again: the transcript is a reference.
            self._s.transcript = fork.transcript
            self._s.window_start = fork.transcript.count if fork.transcript else 0
            self._s.messages = list(fork.messages)
            self._s.turns = fork.turns
            self._s.call_ids = list(fork.call_ids)
        if start.first_message and start.carried is None:
            # Here, not in `run`: messages signalled with the start are handled before
            # `run` begins, and the first message must stay first.
            self._s.inbox.append(start.first_message)
        self._status: Status = "waiting_for_user"
        self._status_detail: str | None = None
        self._in_turn = False
        self._interrupt = False
        self._stop = False
        """Set by the `stop` update: the model call in flight is cancelled and the turn
        ends; the next message starts a new one."""
        self._turns_this_run = 0
        self._model_calls = 0
        self._indexed: tuple[str, str, str, float] | None = None
        stream_state = self._s.stream
        self._s.stream = None  # lives in the stream object until continue-as-new
        self._out = Publisher(self._s, WorkflowStream(prior_state=stream_state))
        self._tools = ToolRunner(self._s, self._set_status, self._out, self._pending_changed)
        self._plans = PlanRunner(
            self._s, self._out, self._pending_changed, self._waiting_on_children
        )
        self._mcp = McpCatalog(self._s, self.notice, self._set_status)
        self._inflight: workflow.ActivityHandle[DecideResult] | None = None
        self._plan_ran = False
        self._review_rounds = 0
        self._last_call: Usage | None = None
        self._signals: list[asyncio.Task[None]] = []
        self._v2 = False
        self._check_topic = False
        self._sent_specs: set[str] = set()
        """Goal specs an activity has stored this run: later requests send the ref."""

    # ----------------------------------------------------------------- the loop

    @workflow.run
    async def run(self, start: StartConversation) -> ConversationResult:
        s = self._s
        self._v2 = workflow.patched(LOOP_V2)
        if start.fork is not None and start.carried is None:
            self._out.say(NoticeMessage(text=_fork_notice(start.fork)))
        try:
            await self._loop()
        except asyncio.CancelledError:
            # Cancelled through Temporal or by a parent: end with what was done, so a
            # parent can report it and the transcript stays readable.
            if self._inflight is not None and not self._inflight.done():
                self._inflight.cancel()
            self._end("cancelled", "cancelled")
        self._report_unread()
        self._set_status("ended")
        self._out.stream.detach_pollers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await asyncio.gather(*self._signals, return_exceptions=True)
        return ConversationResult(
            conversation_id=s.conversation_id,
            answer=s.answer,
            usage=s.usage,
            tool_calls=s.tool_calls,
            message_count=s.message_count,
            end_reason=s.end_reason or "ended",
            outcome=s.outcome or "ended",
            partial=None if s.outcome == "finished" else plans.progress_summary(s),
        )

    async def _loop(self) -> None:
        s = self._s
        idle = timedelta(seconds=s.options.idle_timeout_s)
        while not s.ended:
            if self._should_continue_as_new():
                stream = self._out.stream
                stream.detach_pollers()
                await workflow.wait_condition(workflow.all_handlers_finished)
                s.runs += 1
                window.trim(s)  # the next run carries references, not messages
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
            if s.options.eval is not None and not s.inbox:
                # An eval plays the recorded user: the next message, or the end.
                if s.options.eval.messages:
                    s.inbox.append(s.options.eval.messages.pop(0))
                else:
                    self._end("the recorded messages are all replayed")
                    break
            self._set_status("waiting_for_user")
            try:
                await workflow.wait_condition(lambda: bool(s.inbox) or s.ended, timeout=idle)
            except TimeoutError:
                self._end(f"no input for {idle}: ended as idle")
                break
            if s.ended:
                break
            self._in_turn = True
            self._stop = False
            try:
                await self._turn(self._take())
            finally:
                self._in_turn = False
                self._stop = False
            self._turns_this_run += 1
            if s.options.autonomous and not s.ended:
                # A sub-agent has nobody to wait for: stopping without an answer ends it.
                last = next(
                    (m.text for m in reversed(s.messages) if isinstance(m, NoticeMessage)), None
                )
                self._end(last or "stopped without an answer", "failed")

    def _should_continue_as_new(self) -> bool:
        if self._turns_this_run >= self._s.options.turns_before_continue_as_new:
            return True
        return workflow.info().is_continue_as_new_suggested()

    def _take(self) -> SendMessage:
        """The oldest waiting message, with an id (every message gets one, so a client
        can match what it sent; plain strings were recorded by older versions)."""
        item = self._s.inbox.pop(0)
        taken = item if isinstance(item, SendMessage) else SendMessage(text=item)
        if taken.message_id is None:
            taken = taken.model_copy(update={"message_id": f"m-{workflow.uuid4().hex[:16]}"})
        return taken

    def _report_unread(self) -> None:
        """Say which accepted messages the agent will never read: the sender learns it."""
        while self._s.inbox:
            unread = self._take()
            self._out.say(
                NoticeMessage(
                    text="Not processed, because the conversation ended first: "
                    f"{_quoted(unread.text)}",
                    level="warning",
                )
            )

    async def _turn(self, message: SendMessage) -> None:
        s = self._s
        text = message.text
        # A sub-agent's input is its parent's instruction, not a user's message.
        if s.parent is None and not self._v2 and not await self._guardrail(text):
            return
        self._check_topic = (
            self._v2 and s.parent is None and s.options.guardrail and s.goal.guardrail
        )
        window.trim(s)
        self._out.say(UserMessage(text=text, id=message.message_id))
        s.turns += 1
        self._plan_ran = False
        self._review_rounds = 0
        if s.goal.graph:
            await run_graph_turn(s.goal.graph, self)
            return
        for _ in range(s.options.max_steps_per_turn):
            decision = await self.next_decision()
            if decision is None or not await self.act(decision):
                return
        self._out.say(
            NoticeMessage(
                text=f"Stopped after {s.options.max_steps_per_turn} steps without an answer; "
                "send a message to continue.",
                level="warning",
            )
        )

    # ------------------------------------------- acting (also the TurnDriver API)

    @property
    def conversation(self) -> ConversationState:
        return self._s

    async def next_decision(self) -> Decision | None:
        if self._stop or not await self._within_budget():
            return None
        await self._mcp.ensure_listed()  # once per run: MCP tools join the goal's tools
        self._drain_inbox_if_interrupting()
        decision = await self._decide()
        return None if self._s.ended else decision

    async def act(self, decision: Decision) -> bool:
        """Carry out one decision; True when the agent should decide again."""
        s = self._s
        if isinstance(decision, AskUser):
            self.reply(decision.text)
            if s.options.autonomous:
                s.answer = decision.text
                self._end("asked for input a sub-agent cannot get", "asked")
            return False
        if isinstance(decision, Refuse):
            # Off-topic: a polite redirect, nothing run, the conversation stays open.
            self.reply(decision.text)
            return False
        if isinstance(decision, Finish):
            if not await self._approved(decision.answer):
                return True
            self.finish(decision.answer)
            return False
        if isinstance(decision, RunPlan):
            await self._run_plan(decision)
        elif isinstance(decision, Handoff):
            self._handoff(decision)
        elif isinstance(decision, CallTools):
            await self.run_tools(decision.calls, decision.text)
        return not s.ended

    async def run_tools(self, calls: list[ToolCall], text: str | None = None) -> None:
        if text:
            self._out.say(AssistantMessage(text=text))
        self._set_status("running_tools")
        await self._tools.run_all(calls)

    def reply(self, text: str) -> None:
        self._out.say(AssistantMessage(text=text))

    def notice(self, text: str, level: NoticeLevel = "info") -> None:
        self._out.say(NoticeMessage(text=text, level=level))

    def finish(self, answer: str) -> None:
        s = self._s
        self._out.say(AssistantMessage(text=answer))
        s.answer = answer
        if not self._v2 or s.goal.end_on_finish or s.options.autonomous:
            self._end("finished", "finished")

    # ----------------------------------------------------------- multi-agent

    async def _run_plan(self, plan: RunPlan) -> None:
        if plan.text:
            self._out.say(AssistantMessage(text=plan.text))
        self._set_status("delegating")
        self._plan_ran = True
        await self._plans.run(plan, self._tools.claim_id(plan.call_id))

    def _handoff(self, handoff: Handoff) -> None:
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
        self._out.event("handoff", agent=target.name)

    async def _approved(self, answer: str) -> bool:
        """Whether the answer may be given: True without a reviewer or a plan this turn,
        or when the reviewer approves; False sends its feedback back to the planner."""
        s = self._s
        reviewer = s.goal.reviewer
        if reviewer is None or not self._plan_ran:
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
        verdict = await self._decide(
            goal=reviewer, review=True, extra=[AssistantMessage(text=answer)]
        )
        if not isinstance(verdict, Review):
            self._out.say(NoticeMessage(text="The answer could not be reviewed.", level="warning"))
            return True
        self._out.event("review", agent=reviewer.name, ok=verdict.approved, detail=verdict.feedback)
        if verdict.approved:
            return True
        self._out.say(
            NoticeMessage(
                text=f"{plans.REVIEW_REJECTED} (round {self._review_rounds} of "
                f"{rounds}): {verdict.feedback or 'no reason given'}\n\n"
                f"Draft: {answer[:REVIEW_DRAFT_CHARS]}",
                code=NOTICE_REVIEW_REJECTED,
            )
        )
        return False

    def _pending_changed(self, approval: PendingApproval, decision: str | None) -> None:
        """Tell the parent (if any) that an approval opened (`decision` None) or closed."""
        parent = self._s.parent
        if parent is None:
            return
        self._signals = [t for t in self._signals if not t.done()]
        handle = workflow.get_external_workflow_handle(parent.conversation_id)
        change = ChildApproval(
            step_key=parent.step_key, approval=approval, open=decision is None, decision=decision
        )
        self._signals.append(asyncio.create_task(handle.signal(SIGNAL_CHILD_APPROVAL, change)))

    def _waiting_on_children(self, waiting: bool) -> None:
        if self._status in ("delegating", "waiting_for_approval"):
            self._set_status("waiting_for_approval" if waiting else "delegating")

    def _all_pending(self) -> dict[str, PendingApproval]:
        return {**self._tools.pending, **{a.call_id: a for a in self._plans.surfaced()}}

    def _drain_inbox_if_interrupting(self) -> None:
        s = self._s
        if s.options.message_policy == "interrupt":
            while s.inbox:
                taken = self._take()
                self._out.say(UserMessage(text=taken.text, id=taken.message_id))
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

    async def _decide(
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
        check_topic, self._check_topic = self._check_topic and not review, False
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
            self._last_call = result.usage
            s.model_name = result.model_name
            self._out.event("usage", usage=s.usage)
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
        while True:
            self._set_status("thinking")
            # Read at each attempt: an interrupting message may have joined the window.
            request = request.model_copy(
                update={
                    "transcript": s.transcript,
                    "messages": window.by_reference(window.unstored(s)),
                }
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
            self._inflight = handle
            await workflow.wait_condition(
                lambda h=handle: h.done() or self._interrupt or self._stop
            )
            if not handle.done() and self._stop:
                handle.cancel()
                with contextlib.suppress(ActivityError, asyncio.CancelledError):
                    await handle
                self._inflight = None
                self._out.forget_status()
                self._out.say(NoticeMessage(text="Stopped. Send a message to go on."))
                return None
            if not handle.done():
                # A newer user message supersedes this plan: cancel and plan again.
                handle.cancel()
                with contextlib.suppress(ActivityError, asyncio.CancelledError):
                    await handle
                self._drain_inbox_if_interrupting()
                continue
            self._out.forget_status()
            try:
                return handle.result()
            except Exception as exc:
                self._model_failed(exc)
                return None
            finally:
                self._inflight = None

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
        if reason is None and s.options.autonomous and self._last_call is not None:
            reason = budgets.next_call_exceeds(s.usage, self._last_call, s.options.budget)
        if reason is None:
            return True
        if s.options.autonomous:
            self._out.say(NoticeMessage(text=f"Stopped: {reason}.", level="warning"))
            self._end(f"stopped: {reason}", "budget_exhausted")
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

    # --------------------------------------------------------------- handlers

    @workflow.signal(name=SIGNAL_SEND_MESSAGE)
    def message(self, msg: SendMessage) -> None:
        """A user message by signal: durable on the server even while no worker runs."""
        s = self._s
        if not msg.text.strip():
            self.notice("An empty message was ignored.", "warning")
        elif s.ended:
            self._out.say(
                NoticeMessage(
                    text=f"Not processed, because the conversation has ended: {_quoted(msg.text)}",
                    level="warning",
                )
            )
        else:
            self._accept(msg)

    def _accept(self, msg: SendMessage) -> SendMessageResult:
        s = self._s
        mid = msg.message_id
        if mid is not None and (
            mid in s.seen_message_ids
            or any(isinstance(i, SendMessage) and i.message_id == mid for i in s.inbox)
        ):
            return SendMessageResult(queued=True, message_id=mid)  # a re-send: taken once
        if mid is not None:
            s.seen_message_ids = [*s.seen_message_ids, mid][-SEEN_MESSAGE_IDS:]
        idle = not self._in_turn and not s.inbox
        s.inbox.append(msg)
        if not idle:
            self._out.event("message_queued", detail=msg.text, message_id=mid)
            if s.options.message_policy == "interrupt":
                self._interrupt = True
        # When idle the loop takes it next, so its position is known now.
        return SendMessageResult(
            index=s.message_count if idle else None, queued=not idle, message_id=mid
        )

    @workflow.update(name=UPDATE_SEND_MESSAGE)
    async def send_message(self, msg: SendMessage) -> SendMessageResult:
        return self._accept(msg)

    @send_message.validator
    def _validate_send(self, msg: SendMessage) -> None:
        if self._s.ended:
            raise _reject("the conversation has ended")
        if not msg.text.strip():
            raise _reject("the message is empty")

    @workflow.update(name=UPDATE_DECIDE_APPROVAL)
    async def decide_approval(self, decision: DecideApproval) -> None:
        if decision.call_id not in self._plans.pending:
            # Validators of two decisions sent at once both pass before either handler
            # runs: the first handler wins, the second is refused with the winner.
            won = self._tools.decision_for(decision.call_id)
            if won is not None:
                raise _reject(f"already decided: {won}")
            self._tools.decide(decision)
            return
        try:
            await self._plans.forward(decision)
        except Exception as exc:
            # The sub-agent closed between listing the approval and this decision.
            raise _reject(f"the sub-agent that asked has already ended ({exc})") from exc

    @decide_approval.validator
    def _validate_decision(self, decision: DecideApproval) -> None:
        reason = refusal(self._all_pending(), decision, self._tools.closed)
        if reason is not None:
            raise _reject(reason)

    @workflow.signal(name=SIGNAL_CHILD_APPROVAL)
    def child_approval(self, change: ChildApproval) -> None:
        self._plans.child_approval(change)

    @workflow.signal(name=SIGNAL_APPROVAL_DECISION)
    async def approval_decision(self, decision: DecideApproval) -> None:
        """A decision the parent forwarded; checked again here, since it may be stale."""
        if decision.call_id in self._plans.pending:
            await self._plans.forward(decision)
            return
        reason = refusal(self._tools.pending, decision)
        if reason is None:
            self._tools.decide(decision)
        else:
            self._out.say(
                NoticeMessage(text=f"A forwarded approval was ignored: {reason}", level="warning")
            )

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

    @workflow.update(name=UPDATE_STOP)
    async def stop(self) -> bool:
        """Stop the turn in progress (the model call in flight is cancelled); False
        when there was nothing to stop."""
        if not self._in_turn:
            return False
        self._stop = True
        return True

    @workflow.update(name=UPDATE_END)
    async def end(self, request: EndConversation) -> None:
        self._end(request.reason)

    @end.validator
    def _validate_end(self, request: EndConversation) -> None:
        if self._s.ended:
            raise _reject("the conversation has already ended")

    @workflow.query(name=QUERY_FORK_SOURCE)
    def fork_source(self) -> ForkSource:
        s = self._s
        return ForkSource(
            goal=s.goal,
            options=s.options,
            owner=s.owner,
            turns=s.turns,
            transcript=s.transcript,
            window_start=s.window_start,
            messages=s.messages,
            pending_call_ids=list(self._all_pending()),
        )

    @workflow.query(name=QUERY_STATE)
    def state(self, query: StateQuery) -> ConversationSnapshot:
        s = self._s
        return ConversationSnapshot(
            conversation_id=s.conversation_id,
            owner=s.owner,
            goal=s.goal.name,
            status=self._status,
            status_detail=self._status_detail,
            pending_approvals=list(self._all_pending().values()),
            usage=s.usage,
            budget=s.options.budget,
            message_count=s.message_count,
            turns=s.turns,
            runs=s.runs,
            model_name=s.model_name,
            offset=query.offset,
            messages=s.messages[max(0, query.offset - s.window_start) :],
            answer=s.answer,
            messages_offset=max(query.offset, s.window_start),
            transcript=s.transcript,
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

    def _end(self, reason: str, outcome: Outcome = "ended") -> None:
        s = self._s
        if outcome == "ended" and s.answer is not None and self._v2:
            outcome = "finished"  # ended by the user (or idle) after reaching the goal
        if not s.ended:
            s.ended = True
            s.end_reason = reason
            s.outcome = outcome
        self._set_status("ended")
