"""Erasing a conversation from Temporal: every run of it and of its sub-agents.

Ending a conversation keeps its history on the server until the namespace's retention
runs out. Deleting one through the API erases it: the conversation is ended (so what
it does on ending, such as cancelling its sub-agents, still happens), given a moment
to finish, and then each of its runs (a continue-as-new chain) and each run of every
child workflow it started is deleted; a run still open by then is terminated by the
deletion. Runs are found through the histories themselves, so no visibility (list)
API is needed: a run's first event names the run it continued from, and a parent's
history names the children it started.
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from onward.client.conversations import Conversations
from onward.exceptions import ConversationNotFound, InputRejected
from onward.store.transcripts import transcript_store

Run = tuple[str, str]
"""(workflow id, run id)."""


async def runs_of(client: Client, workflow_id: str) -> list[Run]:
    """Every run of `workflow_id` and of the child workflows they started (recursively)
    that the server still has, in a safe order to delete them: oldest run first, each
    run after its children. Deleting in this order and stopping anywhere leaves what is
    left findable from the current run: the walk back along the chain stops at the
    first run already gone, and everything before it went first."""
    found: list[Run] = []
    await _collect(client, workflow_id, found, set())
    return found


async def _collect(client: Client, workflow_id: str, found: list[Run], seen: set[str]) -> None:
    if workflow_id in seen:
        return
    seen.add(workflow_id)
    chain: list[tuple[Run, list[str]]] = []  # newest first: (run, its children's ids)
    try:
        run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
        while run_id:
            children: list[str] = []
            previous = ""
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            async for event in handle.fetch_history_events():
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                    previous = (
                        event.workflow_execution_started_event_attributes.continued_execution_run_id
                    )
                elif (
                    event.event_type
                    == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
                ):
                    attrs = event.start_child_workflow_execution_initiated_event_attributes
                    children.append(attrs.workflow_id)
            chain.append(((workflow_id, run_id), children))
            run_id = previous
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        # This run (and so every earlier one) is gone already.
    for run, children in reversed(chain):
        for child in children:
            await _collect(client, child, found, seen)
        found.append(run)


async def erase(convs: Conversations, conversation_id: str, *, wait_s: float = 30.0) -> int:
    """End `conversation_id`, wait up to `wait_s` for it to close, then delete every
    run of it and of its sub-agents. Returns the number of runs deleted; 0 when it is
    already gone, so erasing twice is harmless."""
    with contextlib.suppress(InputRejected, ConversationNotFound):
        await convs.end(conversation_id, "deleted by its owner")
    # Ended, failed or still running after `wait_s`: each is fine to delete now.
    with contextlib.suppress(TimeoutError, WorkflowFailureError, RPCError):
        await asyncio.wait_for(convs.result(conversation_id), wait_s)
    client = convs.client
    runs = await runs_of(client, conversation_id)
    for workflow_id, run_id in runs:
        try:
            await client.workflow_service.delete_workflow_execution(
                DeleteWorkflowExecutionRequest(
                    namespace=client.namespace,
                    workflow_execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                )
            )
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # deleted meanwhile: fine
                raise
    # Last, once no run can write more: its transcript, results and goal specs.
    await transcript_store(convs.settings).erase(conversation_id)
    return len(runs)
