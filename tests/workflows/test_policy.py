"""Policy enforced by the workflow: approvals, allow-list, schema, budgets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from onward.agent.approvals import args_hash
from onward.agent.contracts import Budget, ConversationOptions
from onward.agent.decisions import CallTools, Finish, ToolCall
from onward.agent.messages import NoticeMessage, ToolResultMessage
from onward.config import Settings
from onward.exceptions import InputRejected
from onward.testing import ScriptedModel
from tests.conftest import AgentFactory, agent_factory
from tests.workflows import toolbox

TRANSFER = CallTools(
    calls=[ToolCall(call_id="t1", tool="transfer", args={"amount": 5, "to": "bo"})]
)


def ran(cid: str, tool: str) -> int:
    return sum(1 for name, key in toolbox.CALLS if name == tool and key.startswith(cid + ":"))


def tool_results(messages: list[object]) -> list[ToolResultMessage]:
    return [m for m in messages if isinstance(m, ToolResultMessage)]


async def test_confirm_tool_runs_once_when_approved(ts_agent: AgentFactory) -> None:
    model = ScriptedModel([TRANSFER, Finish(answer="sent")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="send 5 to bo")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        assert snap.status == "waiting_for_approval"
        pending = snap.pending_approvals[0]
        assert pending.args_hash == args_hash({"amount": 5, "to": "bo"})
        assert ran(cid, "transfer") == 0
        await convs.decide(cid, "t1", "approve", pending.args_hash)
        result = await convs.result(cid)
    assert result.answer == "sent"
    assert ran(cid, "transfer") == 1


async def test_rejected_tool_does_not_run_and_model_is_told(ts_agent: AgentFactory) -> None:
    model = ScriptedModel([TRANSFER, Finish(answer="ok, not sent")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="send 5 to bo")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        await convs.decide(
            cid, "t1", "reject", snap.pending_approvals[0].args_hash, feedback="wrong person"
        )
        await convs.result(cid)
    assert ran(cid, "transfer") == 0
    told = tool_results(list(model.calls[-1].messages))
    assert told[-1].ok is False
    assert told[-1].error is not None and "rejected by the user: wrong person" in told[-1].error


async def test_no_decision_for_24h_counts_as_rejected(
    lone_ts_env: WorkflowEnvironment, settings: Settings
) -> None:
    model = ScriptedModel([TRANSFER, Finish(answer="timed out")])
    async with agent_factory(lone_ts_env, settings)(model) as convs:
        cid = await convs.start("test-math", first_message="send 5 to bo")
        await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        await lone_ts_env.sleep(timedelta(hours=24, minutes=1))
        result = await convs.result(cid)
    assert result.answer == "timed out"
    assert ran(cid, "transfer") == 0
    told = tool_results(list(model.calls[-1].messages))
    assert told[-1].error is not None and "treated as rejected" in told[-1].error


async def test_stale_call_id_and_hash_mismatch_are_refused(ts_agent: AgentFactory) -> None:
    model = ScriptedModel([TRANSFER, Finish(answer="sent")])
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="send 5 to bo")
        snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
        with pytest.raises(InputRejected, match="no approval is pending for call `nope`"):
            await convs.decide(cid, "nope", "approve", snap.pending_approvals[0].args_hash)
        with pytest.raises(InputRejected, match="args hash mismatch"):
            await convs.decide(cid, "t1", "approve", args_hash({"amount": 500, "to": "bo"}))
        assert ran(cid, "transfer") == 0
        await convs.decide(cid, "t1", "approve", snap.pending_approvals[0].args_hash)
        await convs.result(cid)
        # Deciding again after the fact is stale too.
    assert ran(cid, "transfer") == 1


async def test_unknown_tool_and_invalid_args_never_reach_an_activity(
    ts_agent: AgentFactory,
) -> None:
    model = ScriptedModel(
        [
            CallTools(
                calls=[
                    ToolCall(call_id="u1", tool="launch_missiles", args={}),
                    ToolCall(call_id="u2", tool="add", args={"a": "two", "b": 3}),
                    ToolCall(call_id="u3", tool="add", args={"a": 1}),
                    ToolCall(call_id="u4", tool="delete_everything", args={}),
                ]
            ),
            Finish(answer="could not"),
        ]
    )
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="do things")
        result = await convs.result(cid)
    assert result.tool_calls == []
    assert ran(cid, "add") == 0 and ran(cid, "delete_everything") == 0
    errors = [r.error or "" for r in tool_results(list(model.calls[-1].messages))]
    assert "not available for this goal" in errors[0]
    assert "invalid arguments" in errors[1] and "a:" in errors[1]
    assert "'b' is a required property" in errors[2]
    assert "denied by policy" in errors[3]


async def test_budget_stops_model_calls_until_raised(ts_agent: AgentFactory) -> None:
    step = CallTools(calls=[ToolCall(call_id="b", tool="add", args={"a": 1, "b": 1})])
    model = ScriptedModel([step, step, step, Finish(answer="done")])
    options = ConversationOptions(budget=Budget(max_tokens=240))  # 120 tokens per call
    async with ts_agent(model) as convs:
        cid = await convs.start("test-math", first_message="count", options=options)
        snap = await convs.wait_for(cid, lambda s: s.status == "budget_exhausted")
        assert len(model.calls) == 2
        assert snap.usage.total_tokens == 240
        assert isinstance(snap.messages[-1], NoticeMessage)
        assert "token budget reached" in snap.messages[-1].text
        with pytest.raises(InputRejected, match="lower than the current"):
            await convs.raise_budget(cid, max_tokens=100)
        assert len(model.calls) == 2
        await convs.raise_budget(cid, max_tokens=10_000)
        result = await convs.result(cid)
    assert result.answer == "done"
    assert len(model.calls) == 4
