"""`EvalWorkflow`: replays recorded conversations against a candidate model or prompt.

For each case an activity prepares the replay (the recorded user messages, the recorded
tool results stored for the candidate), a child `ConversationWorkflow` in eval mode
plays it (nothing it calls runs: recorded calls get recorded results), and a second
activity compares the candidate's transcript with the recording. Being a workflow, an
eval of hundreds of conversations survives worker restarts and spreads over every
worker on the queue; the model calls go through the llm queue and its cap.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from onward.agent.contracts import (
        WORKFLOW_NAME,
        Budget,
        ConversationResult,
        StartConversation,
    )
    from onward.agent.eval_contracts import (
        ACTIVITY_EVAL_COMPARE,
        ACTIVITY_EVAL_PREPARE,
        EVAL_WORKFLOW_NAME,
        QUERY_EVAL_PROGRESS,
        CaseReport,
        CompareCase,
        EvalCarried,
        EvalProgress,
        EvalReport,
        EvalRun,
        EvalTotals,
        PrepareCase,
        PreparedCase,
    )
    from onward.agent.orchestration import activity_failure_reason

ACTIVITY_TIMEOUT = timedelta(minutes=2)
ACTIVITY_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=10))


def case_conversation_id(run_id: str, index: int) -> str:
    """The candidate conversation of case `index` (0-based) of `run_id`."""
    return f"{run_id}~case{index + 1}"


@workflow.defn(name=EVAL_WORKFLOW_NAME)
class EvalWorkflow:
    @workflow.init
    def __init__(self, run: EvalRun) -> None:
        carried = run.carried
        self._run = run
        self._done: dict[int, CaseReport] = {c.index: c for c in carried.done} if carried else {}
        self._next = carried.next_index if carried else 0
        self._runs = carried.runs if carried else 1
        self._running: set[int] = set()

    @workflow.run
    async def run(self, run: EvalRun) -> EvalReport:
        started_at = run.carried.started_at if run.carried else workflow.now()
        tasks: list[asyncio.Task[None]] = []
        started = 0
        while self._next < len(run.cases):
            await workflow.wait_condition(lambda: len(self._running) < run.concurrency)
            if started >= run.cases_per_run or workflow.info().is_continue_as_new_suggested():
                # Finish what runs (a child cannot be awaited from the next run), then
                # carry the reports and the position: history stays bounded.
                await workflow.wait_condition(lambda: not self._running)
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    run.model_copy(
                        update={
                            "carried": EvalCarried(
                                done=self._ordered(),
                                next_index=self._next,
                                started_at=started_at,
                                runs=self._runs + 1,
                            )
                        }
                    )
                )
            index = self._next
            self._next += 1
            started += 1
            self._running.add(index)
            tasks.append(asyncio.create_task(self._case(index)))
        await asyncio.gather(*tasks)
        cases = self._ordered()
        return EvalReport(
            run_id=run.run_id,
            candidate=run.candidate,
            cases=cases,
            totals=EvalTotals.of(cases),
            started_at=started_at,
            finished_at=workflow.now(),
            runs=self._runs,
        )

    def _ordered(self) -> list[CaseReport]:
        return [self._done[i] for i in sorted(self._done)]

    async def _case(self, index: int) -> None:
        try:
            self._done[index] = await self._evaluate(index)
        finally:
            self._running.discard(index)

    async def _evaluate(self, index: int) -> CaseReport:
        run = self._run
        case = run.cases[index]
        cid = case_conversation_id(run.run_id, index)
        try:
            prepared = await workflow.execute_activity(
                ACTIVITY_EVAL_PREPARE,
                PrepareCase(
                    run_id=run.run_id,
                    index=index,
                    case=case,
                    conversation_id=cid,
                    candidate=run.candidate,
                ),
                result_type=PreparedCase,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
        except ActivityError as exc:
            return CaseReport(
                index=index,
                case_id=case.label,
                conversation_id=cid,
                error=f"could not prepare the case: {activity_failure_reason(exc)}",
            )
        result, error = await self._replay(cid, prepared)
        compare = CompareCase(
            run_id=run.run_id,
            index=index,
            case=case,
            conversation_id=cid,
            result=result,
            error=error,
        )
        try:
            return await workflow.execute_activity(
                ACTIVITY_EVAL_COMPARE,
                compare,
                result_type=CaseReport,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
        except ActivityError as exc:
            return CaseReport(
                index=index,
                case_id=case.label,
                conversation_id=cid,
                goal=prepared.goal.name,
                error=f"could not compare: {activity_failure_reason(exc)}",
            )

    async def _replay(
        self, cid: str, prepared: PreparedCase
    ) -> tuple[ConversationResult | None, str | None]:
        """Run the candidate conversation; its result, or why it failed."""
        run = self._run
        options = run.options.model_copy(
            update={
                "eval": prepared.script,
                "model": run.candidate.model or run.options.model,
                # The recording's figures are what is compared: nothing stops the replay.
                "budget": Budget(),
                "autonomous": False,
            }
        )
        try:
            result = await workflow.execute_child_workflow(
                WORKFLOW_NAME,
                StartConversation(
                    conversation_id=cid,
                    owner=run.owner,
                    goal=prepared.goal,
                    options=options,
                    first_message=prepared.first_message,
                ),
                id=cid,
                task_queue=workflow.info().task_queue,
                task_timeout=workflow.info().task_timeout,
                result_type=ConversationResult,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            )
        except ChildWorkflowError as exc:
            return None, activity_failure_reason(exc)
        return result, None

    @workflow.query(name=QUERY_EVAL_PROGRESS)
    def progress(self) -> EvalProgress:
        done = list(self._done.values())
        return EvalProgress(
            run_id=self._run.run_id,
            total=len(self._run.cases),
            done=len(done),
            running=sorted(self._running),
            errors=sum(c.error is not None for c in done),
            diverged=sum(c.diverged for c in done),
        )
