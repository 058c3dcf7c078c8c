"""Resolving a decide request's references against the transcript store.

The workflow sends a ref to the stored transcript, the messages added since, and the
goal by ref (inline once per run). Here, in the activity, the new messages are stored
first (content-addressed, so a retry stores nothing new) and the model gets the whole
transcript: a crash at any point loses nothing and replays identically.
"""

from __future__ import annotations

from pydantic_core import to_json

from onward.agent.activity_contracts import DecideRequest
from onward.agent.contracts import TranscriptRef
from onward.agent.messages import Message
from onward.agent.specs import GoalSpec
from onward.exceptions import TranscriptMissing, UserError
from onward.models.base import ModelRequest
from onward.store.transcripts import TranscriptStore

INLINE_RESULT_BYTES = 16_384
"""Tool results up to this size also travel inline in the tool activity's result (the
workflow and its graphs may read them); larger ones only by reference."""


async def resolve_request(
    store: TranscriptStore, request: DecideRequest
) -> tuple[ModelRequest, TranscriptRef | None]:
    """The model's view of `request` (whole transcript, goal resolved) and the stored
    transcript's ref after `request.messages` were appended."""
    cid = request.conversation_id
    goal = await _goal(store, request)
    new = await store.resolve_results(cid, request.messages)
    head = await store.append(cid, request.transcript, new) if new else request.transcript
    earlier = await store.read(request.transcript)
    messages: list[Message] = [*earlier, *new, *await store.resolve_results(cid, request.extra)]
    model_request = ModelRequest(
        conversation_id=cid,
        goal=goal,
        messages=messages,
        repair_hint=request.repair_hint,
        review=request.review,
        check_topic=request.check_topic,
        max_attempts=request.max_attempts,
    )
    return model_request, head


async def _goal(store: TranscriptStore, request: DecideRequest) -> GoalSpec:
    cid = request.conversation_id
    if request.goal is not None:
        ref = await store.put_blob(cid, request.goal.model_dump_json().encode())
        if request.goal_ref is not None and ref != request.goal_ref:
            raise UserError(
                f"goal spec ref mismatch ({request.goal_ref} vs {ref}): the workflow and "
                "this worker serialise goals differently; run the same onward version"
            )
        return request.goal
    if request.goal_ref is None:
        raise UserError("a decide request carries neither a goal nor a goal ref")
    try:
        data = await store.get_blob(cid, request.goal_ref)
    except TranscriptMissing as exc:
        raise UserError(f"the goal spec of `{cid}` is not in the transcript store: {exc}") from exc
    return GoalSpec.model_validate_json(data)


async def store_result(store: TranscriptStore, conversation_id: str, content: object) -> str:
    """Keep a tool result in the store; its ref goes into history instead of it."""
    return await store.put_blob(conversation_id, to_json(content))


def inline(content: object) -> bool:
    return len(to_json(content)) <= INLINE_RESULT_BYTES
