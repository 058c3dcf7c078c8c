"""Client-side facade over conversation workflows, used by the API, CLI and tests."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from onward.agent.contracts import (
    QUERY_STATE,
    SIGNAL_SEND_MESSAGE,
    UPDATE_DECIDE_APPROVAL,
    UPDATE_END,
    UPDATE_RAISE_BUDGET,
    WORKFLOW_NAME,
    ConversationOptions,
    ConversationResult,
    ConversationSnapshot,
    DecideApproval,
    EndConversation,
    RaiseBudget,
    SendMessage,
    StartConversation,
    StateQuery,
)
from onward.agent.messages import Message
from onward.config import Settings
from onward.exceptions import (
    ConversationBusy,
    ConversationNotFound,
    InputRejected,
)
from onward.goals.catalog import GoalCatalog
from onward.store.transcripts import transcript_store

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
        return InputRejected(cause.message, details=_details(cause))
    return InputRejected(str(cause or exc))


_ALREADY_DECIDED = re.compile(r"^already decided: (?P<decision>approve|reject|expired)\b")


def _details(error: ApplicationError) -> dict[str, str]:
    """What the workflow said besides the reason, e.g. the decision that won over a
    contradictory one (sent as a mapping in the details, or as `already decided: X`)."""
    found: dict[str, str] = {}
    for detail in error.details:
        if isinstance(detail, dict):
            found.update({str(k): str(v) for k, v in detail.items()})  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    if "decision" not in found and (match := _ALREADY_DECIDED.match(error.message)):
        found["decision"] = match.group("decision")
    return found


class MessageQueued(BaseModel):
    """A message the server holds for the conversation: the workflow takes it in
    arrival order (once per id); its position shows in the transcript, by id."""

    message_id: str
    queued: bool = True


def new_conversation_id() -> str:
    """A random conversation id (for a create without an idempotency key)."""
    return f"conv-{uuid.uuid4().hex[:12]}"


# The longest one query in `Conversations.wait_for` may take before it is asked again.
QUERY_TRY_S = 5.0


def _busy(exc: RPCError) -> ConversationBusy | None:
    """Temporal's refusal to take more work (per-workflow limits, rate limits), said as
    what it is rather than as Temporal being down."""
    if exc.status != RPCStatusCode.RESOURCE_EXHAUSTED:
        return None
    return ConversationBusy(
        f"the conversation is busy: Temporal refused more requests for it right now "
        f"({exc.message}); retry in a moment"
    )


class Conversations:
    """Start conversations and talk to them. Conversation id = workflow id."""

    def __init__(
        self, client: Client, settings: Settings, catalog: GoalCatalog | None = None
    ) -> None:
        """`catalog` holds the goals conversations may be started with; by default the
        goals `GoalCatalog.discover` finds (entry points and `settings.goal_modules`)."""
        self.client = client
        self.settings = settings
        self.catalog = catalog or GoalCatalog.discover(settings.goal_modules)

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
        existing_ok: bool = False,
    ) -> str:
        """Start a conversation with `goal`; returns its id.

        Args:
            existing_ok: A workflow with `conversation_id` that exists already (running
                or closed) is the one asked for, not an error: a retried start gets
                the first one, and nothing starts twice.

        Raises:
            UnknownGoalError: no such goal in the catalog, or it is not listed.
        """
        self.catalog.startable(goal)
        spec = self.catalog.spec(goal)
        cid = conversation_id or new_conversation_id()
        try:
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
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
                if existing_ok
                else WorkflowIDConflictPolicy.UNSPECIFIED,
                # Never a second run under an id that has one, even once it has closed.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            if not existing_ok:
                raise
        except RPCError as exc:
            raise _busy(exc) or exc from exc
        return cid

    async def exists(self, conversation_id: str) -> bool:
        """Whether Temporal has a workflow (running or closed) with this id."""
        try:
            await self._handle(conversation_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def is_open(self, conversation_id: str) -> bool:
        """Whether the conversation's workflow is still running (False when gone)."""
        try:
            desc = await self._handle(conversation_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return desc.status is not None and desc.status.name in ("RUNNING", "CONTINUED_AS_NEW")

    def _options(self, options: ConversationOptions | None) -> ConversationOptions:
        """Settings' defaults, overridden by the fields the caller set explicitly."""
        base = default_options(self.settings)
        if options is None:
            return base
        return base.model_copy(update={k: getattr(options, k) for k in options.model_fields_set})

    async def _update(
        self, conversation_id: str, name: str, arg: object, update_id: str | None
    ) -> object:
        """Run update `name`. The same `update_id` twice runs it once: Temporal answers
        the repeat with the first one's result."""
        try:
            return await self._handle(conversation_id).execute_update(name, arg, id=update_id)
        except WorkflowUpdateFailedError as exc:
            raise _rejection(exc) from exc
        except RPCError as exc:
            raise self._rpc(conversation_id, exc) from exc

    def _rpc(self, conversation_id: str, exc: RPCError) -> Exception:
        if exc.status == RPCStatusCode.NOT_FOUND:
            if "not found" in exc.message.lower() and "update" not in exc.message.lower():
                return ConversationNotFound(f"no conversation `{conversation_id}`")
            return InputRejected("the conversation has ended")
        return _busy(exc) or exc

    async def send(
        self, conversation_id: str, text: str, *, message_id: str | None = None
    ) -> MessageQueued:
        """Hand a user message to the conversation (a signal: the server keeps it even
        while no worker runs). The workflow takes each `message_id` once, so a retry
        with the same id is harmless; without one, a random id is chosen.

        Raises:
            InputRejected: the conversation has ended.
            ConversationNotFound: there is no such conversation.
        """
        mid = message_id or f"msg-{uuid.uuid4().hex}"
        try:
            await self._handle(conversation_id).signal(
                SIGNAL_SEND_MESSAGE, SendMessage(text=text, message_id=mid)
            )
        except RPCError as exc:
            raise self._rpc(conversation_id, exc) from exc
        return MessageQueued(message_id=mid)

    async def decide(
        self,
        conversation_id: str,
        call_id: str,
        decision: str,
        args_hash: str,
        feedback: str | None = None,
        *,
        update_id: str | None = None,
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
            update_id,
        )

    async def raise_budget(
        self,
        conversation_id: str,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        *,
        update_id: str | None = None,
    ) -> None:
        await self._update(
            conversation_id,
            UPDATE_RAISE_BUDGET,
            RaiseBudget(max_tokens=max_tokens, max_cost_usd=max_cost_usd),
            update_id,
        )

    async def end(
        self, conversation_id: str, reason: str = "ended by user", *, update_id: str | None = None
    ) -> None:
        await self._update(conversation_id, UPDATE_END, EndConversation(reason=reason), update_id)

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
        """The ended conversation's result; tool results of earlier turns, which the
        workflow keeps by reference only, read back from the transcript store."""
        result: ConversationResult = await self._handle(conversation_id).result()
        records = await transcript_store(self.settings).resolve_records(
            conversation_id, result.tool_calls
        )
        return result.model_copy(update={"tool_calls": records})

    async def wait_for(
        self,
        conversation_id: str,
        predicate: Callable[[ConversationSnapshot], bool],
        timeout_s: float = 30.0,
        interval_s: float = 0.05,
    ) -> ConversationSnapshot:
        """Query until `predicate` holds; TimeoutError with the last state otherwise.

        Each query is bounded by what is left of the deadline (at most `QUERY_TRY_S`),
        and one that times out is asked again: a query that reaches a run in the
        moment it continues as new can go unanswered (the time-skipping test server
        drops it), and a wait must not end on one lost answer."""
        deadline = time.monotonic() + timeout_s
        snap: ConversationSnapshot | None = None
        while True:
            left = deadline - time.monotonic()
            if snap is not None and predicate(snap):
                return snap
            if left <= 0:
                last = (
                    f"last status {snap.status!r}, {snap.message_count} messages"
                    if snap
                    else "no query was answered"
                )
                raise TimeoutError(
                    f"conversation {conversation_id} did not reach the expected state within "
                    f"{timeout_s}s; {last}"
                )
            if snap is not None:
                await asyncio.sleep(min(interval_s, left))
            try:
                snap = await self.snapshot(
                    conversation_id, rpc_timeout_s=max(0.5, min(QUERY_TRY_S, left))
                )
            except RPCError as exc:
                # The server says DEADLINE_EXCEEDED; the client's own timer, CANCELLED.
                if exc.status not in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                    raise
