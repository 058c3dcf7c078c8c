"""Running a decision's tool calls inside the workflow: policy, approvals, sagas.

Policy is enforced here, not in the prompt: a tool outside the goal, arguments that
fail the tool's schema, or a `deny` tool never reach an activity; a `confirm` tool
waits for a decision bound to its call id and argument hash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jsonschema
from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
)

from onward.agent.activity_contracts import (
    ACTIVITY_TOOL,
    Compensating,
    ToolInvocation,
    ToolOutcome,
)
from onward.agent.approvals import args_hash
from onward.agent.contracts import (
    ConversationState,
    DecideApproval,
    EvalScript,
    PendingApproval,
    Status,
    ToolCallRecord,
)
from onward.agent.decisions import ToolCall
from onward.agent.events import (
    ApprovalDecided,
    ApprovalRequested,
    ToolCallFinished,
    ToolCallProposed,
    ToolCallStarted,
)
from onward.agent.mcp import ORIGIN_PREFIX, execute_mcp_call
from onward.agent.messages import NoticeMessage, ToolCallMessage, ToolResultMessage
from onward.agent.publisher import Publisher
from onward.agent.retry import tool_retry_policy
from onward.agent.specs import ToolSpec
from onward.agent.transcript import TOOL_RECORDS_KEPT, taken_call_ids
from onward.observability import METRIC_APPROVALS_DECIDED, METRIC_APPROVALS_REQUESTED


def activity_failure_reason(exc: BaseException) -> str:
    """The innermost readable message of an activity or child workflow failure."""
    cause: BaseException = exc
    while isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause) or type(cause).__name__


def schema_errors(spec: ToolSpec, args: dict[str, Any]) -> str | None:
    """Why `args` fail the tool's JSON schema, or None when they pass."""
    validator = jsonschema.Draft202012Validator(spec.parameters)
    errors = sorted(validator.iter_errors(args), key=lambda e: list(e.path))
    if not errors:
        return None
    return "; ".join(
        f"{'.'.join(str(p) for p in e.path) or 'arguments'}: {e.message}" for e in errors[:5]
    )


CLOSED_APPROVALS_KEPT = 100


def replayed(script: EvalScript, call: ToolCall) -> ToolOutcome:
    """The recorded outcome of the same call (name and arguments), or why it did not run."""
    digest = args_hash(call.args)
    for recorded in script.recorded:
        if recorded.tool == call.tool and recorded.args_hash == digest:
            return ToolOutcome(
                ok=recorded.ok, error=recorded.error, content_ref=recorded.content_ref
            )
    return ToolOutcome(
        ok=False,
        error=f"not executed: this eval replays a recording, which has no call of "
        f"`{call.tool}` with these arguments",
    )


def _no_listener(approval: PendingApproval, decision: str | None) -> None:
    del approval, decision


class ToolRunner:
    """Executes tool calls for one conversation; owns its pending approvals."""

    def __init__(
        self,
        state: ConversationState,
        set_status: Callable[[Status], None],
        out: Publisher,
        on_pending: Callable[[PendingApproval, str | None], None] | None = None,
    ) -> None:
        """`on_pending(approval, None)` when an approval opens, `(approval, decision)`
        when it closes: a child conversation tells its parent through it."""
        self._s = state
        self._set_status = set_status
        self._out = out
        self._on_pending = on_pending or _no_listener
        self.pending: dict[str, PendingApproval] = {}
        self._decisions: dict[str, DecideApproval] = {}
        self.closed: dict[str, str] = {}
        """How recent approvals closed (approve, reject, expired), by call id: a late
        or contradictory decision is told which one won."""

    # ------------------------------------------------------------- approvals

    def decide(self, decision: DecideApproval) -> None:
        self._decisions[decision.call_id] = decision

    def decision_for(self, call_id: str) -> str | None:
        """The decision already taken on `call_id` (waiting to be acted on, or closed)."""
        taken = self._decisions.get(call_id)
        return taken.decision if taken is not None else self.closed.get(call_id)

    async def _approval(self, call: ToolCall, spec: ToolSpec) -> str | None:
        """Wait for a human decision. None = approved, else why it did not run."""
        s = self._s
        now = workflow.now()
        timeout = timedelta(seconds=s.options.approval_timeout_s)
        self.pending[call.call_id] = PendingApproval(
            call_id=call.call_id,
            tool=spec.name,
            args=call.args,
            args_hash=args_hash(call.args),
            requested_at=now,
            deadline=now + timeout,
        )
        self._out.emit(
            ApprovalRequested(
                call_id=call.call_id,
                tool=spec.name,
                args=call.args,
                args_hash=self.pending[call.call_id].args_hash,
            )
        )
        self._on_pending(self.pending[call.call_id], None)
        workflow.metric_meter().create_counter(METRIC_APPROVALS_REQUESTED, "Approvals asked").add(
            1, {"tool": spec.name}
        )
        self._set_status("waiting_for_approval")
        # No `finally`: when an evicted workflow's coroutine is closed (GeneratorExit)
        # there is no workflow to update, so tidying up happens on real outcomes only.
        try:
            await workflow.wait_condition(
                lambda: call.call_id in self._decisions or s.ended, timeout=timeout
            )
        except TimeoutError:
            self._close(call.call_id)
            return f"no decision within {timeout}; treated as rejected"
        except asyncio.CancelledError:
            self._close(call.call_id)
            raise
        self._close(call.call_id)
        decision = self._decisions.pop(call.call_id, None)
        workflow.metric_meter().create_counter(METRIC_APPROVALS_DECIDED, "Approvals closed").add(
            1, {"tool": spec.name, "decision": decision.decision if decision else "expired"}
        )
        self._out.emit(
            ApprovalDecided(
                call_id=call.call_id,
                tool=spec.name,
                decision=decision.decision if decision else "expired",
            )
        )
        if decision is None:
            return "the conversation ended before a decision"
        if decision.decision == "reject":
            feedback = f": {decision.feedback}" if decision.feedback else ""
            return f"rejected by the user{feedback}"
        return None

    def _close(self, call_id: str) -> None:
        closed = self.pending.pop(call_id)
        decided = self._decisions.get(call_id)
        self.closed[call_id] = decided.decision if decided else "expired"
        while len(self.closed) > CLOSED_APPROVALS_KEPT:
            del self.closed[next(iter(self.closed))]
        self._on_pending(closed, decided.decision if decided else "expired")
        if not self.pending:
            self._set_status("running_tools")

    # ------------------------------------------------------------ execution

    def claim_id(self, call_id: str) -> str:
        """`call_id`, or a fresh variant if the conversation already used it."""
        return self._unique_id(call_id, taken_call_ids(self._s))

    def _unique_id(self, call_id: str, taken: set[str]) -> str:
        # Idempotency keys are workflow id + call id, so ids must never repeat.
        if call_id not in taken:
            return call_id
        self._s.next_call_seq += 1
        return f"{call_id}~{self._s.next_call_seq}"

    async def run_all(self, calls: list[ToolCall]) -> None:
        s = self._s
        taken = taken_call_ids(s)
        unique: list[ToolCall] = []
        for call in calls:
            cid = self._unique_id(call.call_id, taken)
            taken.add(cid)
            unique.append(call.model_copy(update={"call_id": cid}))
            self._out.say(ToolCallMessage(call_id=cid, tool=call.tool, args=call.args))
            self._out.emit(
                ToolCallProposed(
                    call_id=cid, tool=call.tool, args=call.args, args_hash=args_hash(call.args)
                )
            )
        outcomes = await asyncio.gather(*(self._run_one(c) for c in unique))
        failed = False
        for call, (outcome, executed) in zip(unique, outcomes, strict=True):
            self._out.say(
                ToolResultMessage(
                    call_id=call.call_id,
                    tool=call.tool,
                    ok=outcome.ok,
                    content=outcome.content,
                    error=outcome.error,
                    content_ref=outcome.content_ref,
                )
            )
            if executed:
                s.tool_calls.append(
                    ToolCallRecord(
                        call_id=call.call_id,
                        tool=call.tool,
                        args=call.args,
                        ok=outcome.ok,
                        result=outcome.content,
                        result_ref=outcome.content_ref,
                    )
                )
                del s.tool_calls[:-TOOL_RECORDS_KEPT]
                failed = failed or not outcome.ok
        if failed and s.goal.saga:
            await self._compensate()

    async def _run_one(self, call: ToolCall) -> tuple[ToolOutcome, bool]:
        """The outcome, and whether an activity ran (policy refusals do not)."""
        s = self._s
        spec = s.goal.tool(call.tool)
        if spec is None:
            allowed = ", ".join(t.name for t in s.goal.tools)
            return ToolOutcome(
                ok=False,
                error=f"tool `{call.tool}` is not available for this goal; use one of: {allowed}",
            ), False
        problem = schema_errors(spec, call.args)
        if problem is not None:
            return ToolOutcome(ok=False, error=f"invalid arguments: {problem}"), False
        if spec.approval == "deny":
            return ToolOutcome(ok=False, error=f"tool `{spec.name}` is denied by policy"), False
        if s.options.eval is not None:
            # A replayed recording: nothing runs, so nothing needs a human's yes.
            return replayed(s.options.eval, call), False
        if spec.approval == "confirm":
            refused = await self._approval(call, spec)
            if refused is not None:
                return ToolOutcome(ok=False, error=f"not run: {refused}"), False
        invocation = ToolInvocation(
            conversation_id=s.conversation_id, call_id=call.call_id, tool=spec.name, args=call.args
        )
        return await self._execute(spec, invocation), True

    async def _execute(self, spec: ToolSpec, invocation: ToolInvocation) -> ToolOutcome:
        self._out.emit(ToolCallStarted(call_id=invocation.call_id, tool=spec.name))
        outcome = await self._execute_activity(spec, invocation)
        self._out.emit(ToolCallFinished(call_id=invocation.call_id, tool=spec.name, ok=outcome.ok))
        return outcome

    async def _execute_activity(self, spec: ToolSpec, invocation: ToolInvocation) -> ToolOutcome:
        if spec.origin.startswith(ORIGIN_PREFIX):
            return await execute_mcp_call(self._s.goal, spec, invocation)
        timeout = timedelta(seconds=spec.timeout_s)
        policy = tool_retry_policy(spec.retry)
        try:
            if spec.local:
                return await workflow.execute_local_activity(
                    ACTIVITY_TOOL,
                    invocation,
                    result_type=ToolOutcome,
                    start_to_close_timeout=timeout,
                    retry_policy=policy,
                )
            return await workflow.execute_activity(
                ACTIVITY_TOOL,
                invocation,
                result_type=ToolOutcome,
                task_queue=spec.task_queue,
                start_to_close_timeout=timeout,
                retry_policy=policy,
            )
        except (ActivityError, ApplicationError) as exc:
            return ToolOutcome(ok=False, error=activity_failure_reason(exc))
        except CancelledError:
            raise

    # ----------------------------------------------------------------- sagas

    async def _compensate(self) -> None:
        """Undo completed calls that have a compensation, newest first."""
        s = self._s
        undone: list[str] = []
        failed: list[str] = []
        for record in reversed(s.tool_calls):
            spec = s.goal.tool(record.tool)
            if not record.ok or record.compensated or spec is None or not spec.compensation:
                continue
            comp = s.goal.tool(spec.compensation)
            if comp is None:
                continue
            call_id = f"undo-{record.call_id}"
            outcome = await self._execute(
                comp,
                ToolInvocation(
                    conversation_id=s.conversation_id,
                    call_id=call_id,
                    tool=comp.name,
                    args={},
                    compensating=Compensating(
                        call_id=record.call_id,
                        tool=record.tool,
                        args=record.args,
                        result=record.result,
                        result_ref=record.result_ref if record.result is None else None,
                    ),
                ),
            )
            self._out.say(
                ToolResultMessage(
                    call_id=call_id,
                    tool=comp.name,
                    ok=outcome.ok,
                    content=outcome.content,
                    error=outcome.error,
                    content_ref=outcome.content_ref,
                )
            )
            if outcome.ok:
                record.compensated = True
                undone.append(f"{record.tool} ({comp.name})")
            else:
                failed.append(f"{record.tool}: {outcome.error}")
        if undone or failed:
            text = "A step failed, so earlier steps were undone: " + (", ".join(undone) or "none")
            if failed:
                text += ". Could NOT undo: " + "; ".join(failed)
            self._out.say(NoticeMessage(text=text, level="warning" if not failed else "error"))
