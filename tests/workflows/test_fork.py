"""Forks: a new conversation from another's transcript up to a turn, by reference,
with nothing before the fork point run again (time-skipping server)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from onward.agent.decisions import AskUser, CallTools, ToolCall
from onward.agent.messages import Message, NoticeMessage, ToolResultMessage, UserMessage
from onward.client.conversations import Conversations
from onward.client.forking import fork
from onward.config import Settings
from onward.models.base import ModelRequest
from onward.testing import ScriptedModel, Step
from onward.worker import build_workers, running_workers
from tests.workflows import toolbox

assert toolbox.OPEN_MATH.name == "test-math-open"


def adder(request: ModelRequest) -> Step:
    """`n`: add n and 1 with the tool, then say the sum."""
    last = request.messages[-1]
    if isinstance(last, UserMessage):
        n = int(last.text)
        turn = sum(isinstance(m, UserMessage) for m in request.messages)
        return CallTools(calls=[ToolCall(call_id=f"add-{turn}", tool="add", args={"a": n, "b": 1})])
    assert isinstance(last, ToolResultMessage)
    return AskUser(text=f"= {last.content}")


async def activities(client: Client, cid: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    async for e in client.get_workflow_handle(cid).fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            counts[e.activity_task_scheduled_event_attributes.activity_type.name] += 1
        elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            name = e.marker_recorded_event_attributes.marker_name
            if name != "core_patch":  # local activities (tools) are markers too
                counts["marker:" + name] += 1
    return counts


async def talk(convs: Conversations, cid: str, texts: list[str], turns_before: int) -> None:
    for i, text in enumerate(texts, turns_before + 1):
        await convs.send(cid, text)
        await convs.wait_for(cid, lambda s, t=i: s.turns == t and s.status == "waiting_for_user")


def visible(messages: Sequence[Message]) -> list[tuple[str, str]]:
    """Each message but notices, as (kind, its text or content)."""
    out: list[tuple[str, str]] = []
    for m in messages:
        if isinstance(m, NoticeMessage):
            continue
        shown: object = getattr(m, "text", None) or getattr(m, "content", None)
        out.append((m.kind, str(shown)))
    return out


async def test_a_fork_at_turn_three_reruns_nothing_and_then_diverges(
    ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    model = ScriptedModel(adder)
    async with running_workers(build_workers(ts_env.client, settings, model)):
        convs = Conversations(ts_env.client, settings)
        cid = await convs.start("test-math-open", first_message="1")
        await convs.wait_for(cid, lambda s: s.turns == 1 and s.status == "waiting_for_user")
        await talk(convs, cid, ["2", "3", "4", "5", "6"], 1)
        original = (await convs.snapshot(cid)).messages
        calls_before = len(model.calls)

        forked = await fork(convs, cid, owner="local", turn=3)
        snap = await convs.wait_for(forked, lambda s: s.status == "waiting_for_user")
        # Nothing ran for turns 1-3: no model call, no tool call in the fork's history.
        assert len(model.calls) == calls_before
        assert await activities(ts_env.client, forked) == Counter()
        prefix = original[: 3 * 4]
        assert visible(snap.messages) == visible(prefix)
        notice = snap.messages[-1]
        assert isinstance(notice, NoticeMessage) and f"Forked from `{cid}`" in notice.text
        assert snap.turns == 3

        # The two diverge independently; the fork's model sees the shared prefix.
        await talk(convs, forked, ["40"], 3)
        fork_after = (await convs.snapshot(forked)).messages
        assert visible(fork_after)[-2:] == [("tool_result", "41"), ("assistant", "= 41")]
        seen = model.calls[-1].messages
        assert [m.text for m in seen if isinstance(m, UserMessage)] == ["1", "2", "3", "40"]
        await talk(convs, cid, ["7"], 6)
        original_after = (await convs.snapshot(cid)).messages
    assert visible(original_after)[: len(original)] == visible(original)
    assert visible(original_after)[-1] == ("assistant", "= 8")
    assert "40" not in [getattr(m, "text", "") for m in original_after]
    # The fork's own tool call got a fresh id and key: the prefix's ids are taken.
    assert [k for _, k in toolbox.CALLS if k.startswith(forked)] == [f"{forked}:add-4"]
