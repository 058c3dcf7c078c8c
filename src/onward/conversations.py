"""Client-side facade over conversation workflows, used by the API, CLI and tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from onward.agent.contracts import (
    QUERY_STATE,
    UPDATE_DECIDE_APPROVAL,
    UPDATE_END,
    UPDATE_RAISE_BUDGET,
    UPDATE_SEND_MESSAGE,
    WORKFLOW_NAME,
    ConversationOptions,
    ConversationResult,
    ConversationSnapshot,
    DecideApproval,
    EndConversation,
    RaiseBudget,
    SendMessage,
    SendMessageResult,
    StartConversation,
    StateQuery,
)
from onward.agent.messages import Message
from onward.config import Settings
from onward.exceptions import InputRejected, OnwardError, UnknownGoalError
from onward.goals.registry import get_goal, load_goals
from onward.store.transcripts import transcript_store


class ConversationNotFound(OnwardError):
    """No conversation with that id exists."""


WORKFLOW_TASK_TIMEOUT = timedelta(seconds=5)


def default_options(settings: Settings) -> ConversationOptions:
    return ConversationOptions(
        approval_timeout_s=settings.approval_timeout.total_seconds(),
        idle_timeout_s=settings.idle_timeout.total_seconds(),
        turns_before_continue_as_new=settings.turns_before_continue_as_new,
        max_steps_per_turn=settings.max_steps_per_turn,
        guardrail=settings.guardrail,
        llm_task_queue=settings.llm_task_queue,
        search_attributes=settings.search_attributes,
        model_timeout_s=settings.model_timeout.total_seconds(),
        model_heartbeat_s=settings.model_heartbeat_timeout.total_seconds(),
    )


def _rejection(exc: WorkflowUpdateFailedError) -> InputRejected:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return InputRejected(cause.message)
    return InputRejected(str(cause or exc))


class Conversations:
    """Start conversations and talk to them. Conversation id = workflow id."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        load_goals(settings.goal_modules)

    def _handle(self, conversation_id: str) -> WorkflowHandle[object, ConversationResult]:
        return self.client.get_workflow_handle(conversation_id, result_type=ConversationResult)

    async def start(
        self,
        goal: str,
        *,
        owner: str = "local",
        first_message: str | None = None,
        options: ConversationOptions | None = None,
        conversation_id: str | None = None,
    ) -> str:
        """Start a conversation with `goal`; returns its id.

        Raises:
            UnknownGoalError: no such goal is registered, or it is not listed.
        """
        found = get_goal(goal)
        if not found.listed:
            raise UnknownGoalError(f"goal `{goal}` is only used by other goals' agents")
        spec = found.spec()
        cid = conversation_id or f"conv-{uuid.uuid4().hex[:12]}"
        await self.client.start_workflow(
            WORKFLOW_NAME,
            StartConversation(
                conversation_id=cid,
                owner=owner,
                goal=spec,
                options=self._options(options),
                first_message=first_message,
            ),
            id=cid,
            task_queue=self.settings.task_queue,
            # A task stuck on a killed worker is retried elsewhere after this.
            task_timeout=WORKFLOW_TASK_TIMEOUT,
        )
        return cid

    def _options(self, options: ConversationOptions | None) -> ConversationOptions:
        """Settings' defaults, overridden by the fields the caller set explicitly."""
        base = default_options(self.settings)
        if options is None:
            return base
        return base.model_copy(update={k: getattr(options, k) for k in options.model_fields_set})

    async def _update(self, conversation_id: str, name: str, arg: object) -> object:
        try:
            return await self._handle(conversation_id).execute_update(name, arg)
        except WorkflowUpdateFailedError as exc:
            raise _rejection(exc) from exc
        except RPCError as exc:
            raise self._rpc(conversation_id, exc) from exc

    def _rpc(self, conversation_id: str, exc: RPCError) -> Exception:
        if exc.status == RPCStatusCode.NOT_FOUND:
            if "not found" in exc.message.lower() and "update" not in exc.message.lower():
                return ConversationNotFound(f"no conversation `{conversation_id}`")
            return InputRejected("the conversation has ended")
        return exc

    async def send(self, conversation_id: str, text: str) -> SendMessageResult:
        try:
            return await self._handle(conversation_id).execute_update(
                UPDATE_SEND_MESSAGE, SendMessage(text=text), result_type=SendMessageResult
            )
        except WorkflowUpdateFailedError as exc:
            raise _rejection(exc) from exc
        except RPCError as exc:
            raise self._rpc(conversation_id, exc) from exc

    async def decide(
        self,
        conversation_id: str,
        call_id: str,
        decision: str,
        args_hash: str,
        feedback: str | None = None,
    ) -> None:
        await self._update(
            conversation_id,
            UPDATE_DECIDE_APPROVAL,
            DecideApproval(
                call_id=call_id,
                decision=decision,  # type: ignore[arg-type]
                args_hash=args_hash,
                feedback=feedback,
            ),
        )

    async def raise_budget(
        self, conversation_id: str, max_tokens: int | None = None, max_cost_usd: float | None = None
    ) -> None:
        await self._update(
            conversation_id,
            UPDATE_RAISE_BUDGET,
            RaiseBudget(max_tokens=max_tokens, max_cost_usd=max_cost_usd),
        )

    async def end(self, conversation_id: str, reason: str = "ended by user") -> None:
        await self._update(conversation_id, UPDATE_END, EndConversation(reason=reason))

    async def snapshot(
        self, conversation_id: str, offset: int = 0, *, rpc_timeout_s: float | None = None
    ) -> ConversationSnapshot:
        """The conversation's state. A query needs a live worker: while none is running
        it waits, up to `rpc_timeout_s` when given."""
        timeout = timedelta(seconds=rpc_timeout_s) if rpc_timeout_s else None
        try:
            snap = await self._handle(conversation_id).query(
                QUERY_STATE,
                StateQuery(offset=offset),
                result_type=ConversationSnapshot,
                rpc_timeout=timeout,
            )
        except RPCError as exc:
            raise self._rpc(conversation_id, exc) from exc
        return await self._with_stored(snap)

    async def _with_stored(self, snap: ConversationSnapshot) -> ConversationSnapshot:
        """The workflow holds recent messages only: the rest, and tool results held by
        reference, come from the transcript store."""
        store = transcript_store(self.settings)
        start = snap.messages_offset if snap.messages_offset is not None else snap.offset
        earlier: list[Message] = []
        if start > snap.offset and snap.transcript is not None:
            earlier = await store.read_range(snap.transcript, snap.offset, start)
        messages = await store.resolve_results(snap.conversation_id, [*earlier, *snap.messages])
        return snap.model_copy(update={"messages": messages, "messages_offset": snap.offset})

    async def result(self, conversation_id: str) -> ConversationResult:
        return await self._handle(conversation_id).result()

    async def wait_for(
        self,
        conversation_id: str,
        predicate: Callable[[ConversationSnapshot], bool],
        timeout_s: float = 30.0,
        interval_s: float = 0.05,
    ) -> ConversationSnapshot:
        """Query until `predicate` holds; TimeoutError with the last state otherwise."""
        deadline = time.monotonic() + timeout_s
        snap = await self.snapshot(conversation_id)
        while not predicate(snap):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"conversation {conversation_id} did not reach the expected state within "
                    f"{timeout_s}s; last status {snap.status!r}, {snap.message_count} messages"
                )
            await asyncio.sleep(interval_s)
            snap = await self.snapshot(conversation_id)
        return snap
