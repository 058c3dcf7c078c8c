"""`ConversationWorkflow`: one durable workflow per conversation, owning the agent loop.

Loop (DESIGN section 2): wait for input -> decide -> run tools (with approvals) ->
account usage -> repeat. Every model and tool call is an activity, so history records
each decision and a crash resumes without repeating one.

The class keeps the loop and the handlers; the parts it drives live beside it:
`ModelRunner` (model calls, budget gate), `ToolRunner` (tool calls, approvals),
`PlanRunner` and `Teamwork` (plans, handoffs, review), `Inbox` (user messages),
`StatusBoard` (status and search attributes) and `run_state` (starting, carrying over
and reading the state).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from onward.agent import budget as budgets
    from onward.agent import plans, run_state
    from onward.agent import transcript as window
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
        Outcome,
        PendingApproval,
        RaiseBudget,
        SendMessage,
        SendMessageResult,
        StartConversation,
        StateQuery,
    )
    from onward.agent.decisions import (
        AskUser,
        CallTools,
        Decision,
        Finish,
        Handoff,
        Refuse,
        RunPlan,
        ToolCall,
    )
    from onward.agent.delegation import ParentNotifier, PlanRunner
    from onward.agent.graphs import run_graph_turn
    from onward.agent.inbox import Inbox, quoted
    from onward.agent.mcp import McpCatalog
    from onward.agent.messages import (
        AssistantMessage,
        NoticeLevel,
        NoticeMessage,
        UserMessage,
    )
    from onward.agent.model_runner import ModelRunner, TurnControl
    from onward.agent.orchestration import ToolRunner
    from onward.agent.publisher import Publisher
    from onward.agent.status import StatusBoard
    from onward.agent.teamwork import Teamwork
    from onward.exceptions import INPUT_REJECTED

LOOP_V2 = "onward-loop-v2"
"""Patch marking runs with the guardrail inside the decision and a finish that rests:
histories recorded before it replay the older loop (separate guardrail call, a
finish ends the conversation)."""


def _reject(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=INPUT_REJECTED, non_retryable=True)


@workflow.defn(name=WORKFLOW_NAME)
class ConversationWorkflow:
    @workflow.init
    def __init__(self, start: StartConversation) -> None:
        self._s = run_state.initial_state(start)
        self._in_turn = False
        self._stop = False
        """Set by the `stop` update: the model call in flight is cancelled and the turn
        ends; the next message starts a new one."""
        self._turns_this_run = 0
        stream_state = self._s.stream
        self._s.stream = None  # lives in the stream object until continue-as-new
        self._out = Publisher(self._s, WorkflowStream(prior_state=stream_state))
        self._status = StatusBoard(self._s, self._out)
        self._set_status = self._status.set
        self._inbox = Inbox(self._s, self._out)
        self._parent = ParentNotifier(self._s.parent)
        changed = self._parent.approval_changed
        self._tools = ToolRunner(self._s, self._set_status, self._out, changed)
        self._plans = PlanRunner(self._s, self._out, changed, self._waiting_on_children)
        self._mcp = McpCatalog(self._s, self.notice, self._set_status)
        control = TurnControl(
            stopped=lambda: self._stop,
            interrupted=lambda: self._inbox.interrupt,
            take_interrupting=self._inbox.take_interrupting,
        )
        self._model = ModelRunner(self._s, self._out, self._status, control)
        self._team = Teamwork(
            self._s, self._out, self._set_status, self._tools, self._plans, self._model
        )
        self._v2 = False

    # ----------------------------------------------------------------- the loop

    @workflow.run
    async def run(self, start: StartConversation) -> ConversationResult:
        s = self._s
        self._v2 = workflow.patched(LOOP_V2)
        if start.fork is not None and start.carried is None:
            self._out.say(NoticeMessage(text=run_state.fork_notice(start.fork)))
        try:
            await self._loop()
        except asyncio.CancelledError:
            # Cancelled through Temporal or by a parent: end with what was done, so a
            # parent can report it and the transcript stays readable.
            self._model.cancel_inflight()
            self._end("cancelled", "cancelled")
        self._inbox.report_unread()
        self._set_status("ended")
        self._out.stream.detach_pollers()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._parent.sent()
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
            if run_state.should_continue_as_new(s, self._turns_this_run):
                await run_state.continue_as_new(s, self._out.stream)
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
                await self._turn(self._inbox.take())
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

    async def _turn(self, message: SendMessage) -> None:
        s = self._s
        text = message.text
        # A sub-agent's input is its parent's instruction, not a user's message.
        if s.parent is None and not self._v2 and not await self._model.guardrail(text):
            return
        self._model.check_topic = (
            self._v2 and s.parent is None and s.options.guardrail and s.goal.guardrail
        )
        window.trim(s)
        self._out.say(UserMessage(text=text, id=message.message_id))
        s.turns += 1
        self._team.new_turn()
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
        if self._stop or not await self._model.within_budget(self._end):
            return None
        await self._mcp.ensure_listed()  # once per run: MCP tools join the goal's tools
        self._inbox.take_interrupting()
        decision = await self._model.decide()
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
            if not await self._team.approved(decision.answer):
                return True
            self.finish(decision.answer)
            return False
        if isinstance(decision, RunPlan):
            await self._team.run_plan(decision)
        elif isinstance(decision, Handoff):
            self._team.hand_off(decision)
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

    def _waiting_on_children(self, waiting: bool) -> None:
        if self._status.status in ("delegating", "waiting_for_approval"):
            self._set_status("waiting_for_approval" if waiting else "delegating")

    def _all_pending(self) -> dict[str, PendingApproval]:
        return {**self._tools.pending, **{a.call_id: a for a in self._plans.surfaced()}}

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
                    text=f"Not processed, because the conversation has ended: {quoted(msg.text)}",
                    level="warning",
                )
            )
        else:
            self._inbox.accept(msg, self._in_turn)

    @workflow.update(name=UPDATE_SEND_MESSAGE)
    async def send_message(self, msg: SendMessage) -> SendMessageResult:
        return self._inbox.accept(msg, self._in_turn)

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
        return run_state.fork_source(self._s, self._all_pending())

    @workflow.query(name=QUERY_STATE)
    def state(self, query: StateQuery) -> ConversationSnapshot:
        return run_state.snapshot(
            self._s, self._status, self._all_pending(), query, self._out.last_offset()
        )

    # ---------------------------------------------------------------- helpers

    def _end(self, reason: str, outcome: Outcome = "ended") -> None:
        s = self._s
        if outcome == "ended" and s.answer is not None and self._v2:
            outcome = "finished"  # ended by the user (or idle) after reaching the goal
        if not s.ended:
            s.ended = True
            s.end_reason = reason
            s.outcome = outcome
        self._set_status("ended")
