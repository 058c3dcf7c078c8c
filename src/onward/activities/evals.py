"""The eval workflow's activities: preparing a replay and comparing its outcome.

`onward.eval.prepare` reads a recorded case from the transcript store, stores its
recorded tool results as the candidate conversation's blobs (the replay hands them out
by reference, as a tool activity would) and returns the script of the replay.
`onward.eval.compare` reads the finished candidate conversation like any other (its
workflow, the store, its histories) and compares it with the recording.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_json
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from onward.agent.approvals import args_hash
from onward.agent.contracts import EvalScript, RecordedCall
from onward.agent.eval_contracts import (
    ACTIVITY_EVAL_COMPARE,
    ACTIVITY_EVAL_PREPARE,
    Candidate,
    CaseReport,
    CompareCase,
    EvalCaseRef,
    PrepareCase,
    PreparedCase,
)
from onward.agent.messages import ToolCallMessage, ToolResultMessage
from onward.agent.specs import GoalSpec
from onward.config import Settings
from onward.evals.compare import Side, compare_case
from onward.evals.format import EvalCase
from onward.evals.reading import read_conversation
from onward.exceptions import ERR_EVAL_CASE, TranscriptMissing, UnknownGoalError
from onward.goals.catalog import GoalCatalog
from onward.store.transcripts import TranscriptStore


def _unusable(message: str) -> ApplicationError:
    return ApplicationError(message, type=ERR_EVAL_CASE, non_retryable=True)


class EvalActivities:
    """Holds what the eval activities read: the store, and a client for reading the
    candidate conversations (queries and histories)."""

    def __init__(
        self, client: Client, settings: Settings, store: TranscriptStore, catalog: GoalCatalog
    ) -> None:
        self.client = client
        self.settings = settings
        self.store = store
        self.catalog = catalog

    async def _case(self, run_id: str, ref: EvalCaseRef) -> EvalCase:
        try:
            data = await self.store.get_blob(run_id, ref.ref)
        except TranscriptMissing as exc:
            raise _unusable(f"case `{ref.label}` is not in the transcript store: {exc}") from exc
        try:
            return EvalCase.model_validate_json(data)
        except ValidationError as exc:
            raise _unusable(f"case `{ref.label}` is not a recorded conversation: {exc}") from exc

    def _goal(self, case: EvalCase, candidate: Candidate) -> GoalSpec:
        goal = case.goal
        if candidate.goal is not None:
            try:
                goal = self.catalog.spec(candidate.goal)
            except UnknownGoalError as exc:
                raise _unusable(str(exc)) from exc
        if candidate.instructions is not None:
            goal = goal.model_copy(update={"instructions": candidate.instructions})
        return goal

    async def _recorded(self, case: EvalCase, conversation_id: str) -> list[RecordedCall]:
        results = {m.call_id: m for m in case.transcript if isinstance(m, ToolResultMessage)}
        recorded: list[RecordedCall] = []
        for m in case.transcript:
            result = results.get(m.call_id) if isinstance(m, ToolCallMessage) else None
            if not isinstance(m, ToolCallMessage) or result is None:
                continue  # not a call, or one that never came back (pending at the end)
            ref = None
            if result.content is not None:
                ref = await self.store.put_blob(conversation_id, to_json(result.content))
            recorded.append(
                RecordedCall(
                    tool=m.tool,
                    args_hash=args_hash(m.args),
                    ok=result.ok,
                    error=result.error,
                    content_ref=ref,
                )
            )
        return recorded

    @activity.defn(name=ACTIVITY_EVAL_PREPARE)
    async def prepare(self, request: PrepareCase) -> PreparedCase:
        """The replay of one case: its goal (or the candidate's), the first message and
        the script (the later messages, the recorded results by reference)."""
        case = await self._case(request.run_id, request.case)
        users = case.user_messages()
        if not users:
            raise _unusable(f"case `{case.id}` has no user message to replay")
        return PreparedCase(
            goal=self._goal(case, request.candidate),
            first_message=users[0],
            script=EvalScript(
                messages=users[1:],
                recorded=await self._recorded(case, request.conversation_id),
            ),
        )

    @activity.defn(name=ACTIVITY_EVAL_COMPARE)
    async def compare(self, request: CompareCase) -> CaseReport:
        """The finished candidate conversation against its recording."""
        case = await self._case(request.run_id, request.case)
        recorded = Side(
            transcript=case.transcript,
            decisions=case.decisions,
            reached=case.reached,
            answer=case.answer,
            usage=case.usage,
            model=case.model_name,
            model_s=case.model_seconds,
        )
        result = request.result
        if result is None:
            return CaseReport(
                index=request.index,
                case_id=case.id,
                conversation_id=request.conversation_id,
                goal=case.goal.name,
                error=f"the candidate conversation failed: {request.error or 'no result'}",
                recorded_reached=case.reached,
                recorded_answer=case.answer,
                recorded_usage=case.usage,
                recorded_model=case.model_name,
                recorded_model_s=case.model_seconds,
            )
        record = await read_conversation(self.client, self.settings, request.conversation_id)
        candidate = Side(
            transcript=record.transcript,
            decisions=record.facts.decisions,
            reached=result.outcome == "finished" or result.answer is not None,
            answer=result.answer,
            usage=result.usage,
            model=record.model_name,
            model_s=record.facts.model_seconds,
        )
        return compare_case(
            index=request.index,
            case_id=case.id,
            conversation_id=request.conversation_id,
            goal=record.source.goal.name,
            recorded=recorded,
            candidate=candidate,
            side_effects=record.facts.tool_activities,
            elapsed_s=record.facts.elapsed_seconds,
        )

    def all(self) -> list[Callable[..., Any]]:
        return [self.prepare, self.compare]
