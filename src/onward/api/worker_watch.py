"""Whether a worker is running a conversation, for the `worker` event of its stream.

A stream read is a long-poll Temporal update that only a worker can answer; with no
worker polling it hangs, and without this the user would see nothing at all. When a
read has gone unanswered for a few seconds the stream hub asks with `worker_answers`.

Why a query, not the two descriptions Temporal offers (measured on the dev server):
`describe_task_queue` lists a live but idle worker's pollers with a last-access time
up to a minute old (a long poll lasts that long), so a worker that died seconds ago
looks the same as one that is waiting; the workflow's pending workflow task from
`describe()` exists only once something new happened, so a conversation whose model
call is being retried, or that rests, shows none while no worker runs. A query is
answered in milliseconds by any worker that can run the workflow and by nothing
else; it holds no update slot and writes nothing to history.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

WORKER_DOWN_DETAIL = (
    "No worker is running for this conversation; your messages are kept and will be "
    "answered when one starts."
)
_PROBE_QUERY = "__temporal_workflow_metadata"
"""Built into every Python workflow: cheap, and it needs no handler of ours."""
NO_WORKER_STATUSES = frozenset(
    {
        RPCStatusCode.DEADLINE_EXCEEDED,
        # The SDK's own `rpc_timeout` surfaces as CANCELLED ("Timeout expired").
        RPCStatusCode.CANCELLED,
        # "no poller seen for task queue recently, worker may be down".
        RPCStatusCode.FAILED_PRECONDITION,
    }
)


@dataclass(frozen=True)
class WorkerStatus:
    """A change in whether a worker answers the conversation's stream reads."""

    polling: bool

    def payload(self) -> dict[str, Any]:
        """The `worker` SSE event's data."""
        if self.polling:
            return {"polling": True}
        return {"polling": False, "detail": WORKER_DOWN_DETAIL}


WorkerProbe = Callable[[Client, str, float], Awaitable[bool | None]]
"""(client, conversation id, timeout) -> a worker answered, none did, or unknown."""


async def worker_answers(client: Client, conversation_id: str, timeout_s: float) -> bool | None:
    """Whether a worker answers a query on the conversation within `timeout_s`; None
    when the question could not be put (the workflow is gone, Temporal is down: the
    stream read reports those itself)."""
    handle = client.get_workflow_handle(conversation_id)
    try:
        await handle.query(_PROBE_QUERY, rpc_timeout=timedelta(seconds=timeout_s))
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError):
        return True  # a worker ran the query, even if it refused it
    except RPCError as exc:
        return False if exc.status in NO_WORKER_STATUSES else None
    return True
