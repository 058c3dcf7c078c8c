"""Stopping the turn in progress: the workflow's `stop` update cancels the model call
in flight and ends the turn; the conversation waits for the next message."""

from __future__ import annotations

from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from onward.agent.contracts import UPDATE_STOP
from onward.api.schemas import TurnStopped
from onward.client.conversations import Conversations
from onward.exceptions import InputRejected

STOPPED = "The turn in progress was stopped (its model call cancelled); send a message to go on."
NOTHING = "Nothing was in progress: the agent is waiting for you."


async def stop_turn(
    convs: Conversations, conversation_id: str, *, update_id: str | None = None
) -> TurnStopped:
    """Run the conversation's `stop` update; the same `update_id` twice stops once.

    Raises:
        InputRejected: The conversation has ended.
        ConversationNotFound: No such conversation.
    """
    handle = convs.client.get_workflow_handle(conversation_id)
    try:
        stopped = await handle.execute_update(UPDATE_STOP, id=update_id, result_type=bool)
    except WorkflowUpdateFailedError as exc:
        raise InputRejected(str(exc.cause or exc)) from exc
    except RPCError as exc:
        raise convs._rpc(conversation_id, exc) from exc  # pyright: ignore[reportPrivateUsage]
    return TurnStopped(stopped=stopped, detail=STOPPED if stopped else NOTHING)
