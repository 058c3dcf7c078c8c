"""Metrics endpoint and tracing on the real dev server."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment

from onward.agent.approvals import args_hash
from onward.agent.decisions import CallTools, Finish, ToolCall
from onward.client.connect import data_converter
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.observability import metrics_runtime
from onward.processes import free_port
from onward.testing import ScriptedModel
from onward.worker import build_workers, running_workers
from tests.workflows import toolbox

pytestmark = pytest.mark.integration


def _script() -> ScriptedModel:
    return ScriptedModel(
        [
            CallTools(
                calls=[
                    ToolCall(call_id="a", tool="add", args={"a": 1, "b": 2}),
                    ToolCall(call_id="m", tool="multiply", args={"a": 3, "b": 4}),
                ]
            ),
            CallTools(
                calls=[ToolCall(call_id="t", tool="transfer", args={"amount": 1, "to": "x"})]
            ),
            Finish(answer="done"),
        ]
    )


async def _converse(convs: Conversations) -> str:
    cid = await convs.start(toolbox.MATH.name, first_message="go")
    snap = await convs.wait_for(cid, lambda s: bool(s.pending_approvals))
    assert snap.pending_approvals[0].args_hash == args_hash({"amount": 1, "to": "x"})
    await convs.decide(cid, "t", "approve", snap.pending_approvals[0].args_hash)
    assert (await convs.result(cid)).answer == "done"
    return cid


def _metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


async def test_metrics_endpoint_has_worker_and_onward_metrics(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    bind = f"127.0.0.1:{free_port()}"
    runtime = metrics_runtime(settings.model_copy(update={"metrics_bind": bind}))
    assert runtime is not None
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        runtime=runtime,
        data_converter=data_converter(settings),
    )
    async with running_workers(build_workers(client, settings, _script())):
        await _converse(Conversations(client, settings))
        deadline = time.monotonic() + 20
        async with httpx.AsyncClient() as http:
            while True:
                text = (await http.get(f"http://{bind}/metrics")).text
                if (
                    _metric(text, "onward_approvals_decided_total") >= 1
                    or time.monotonic() > deadline
                ):
                    break
                await asyncio.sleep(0.1)
    assert _metric(text, "onward_model_calls_total") == 3
    assert _metric(text, "onward_tool_calls_total") == 3
    assert _metric(text, "onward_tokens_total") == 3 * 120
    assert _metric(text, "onward_cost_microusd_total") == 3000
    assert _metric(text, "onward_approvals_requested_total") == 1
    assert _metric(text, "onward_approvals_decided_total") == 1
    assert _metric(text, "temporal_activity_execution_latency_count") >= 6  # SDK's own


async def test_one_span_per_activity_even_when_every_task_replays(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = TracingInterceptor(provider.get_tracer("test"), always_create_workflow_spans=True)
    workers = build_workers(
        dev_env.client, settings, _script(), interceptors=[tracing], max_cached_workflows=0
    )
    async with running_workers(workers):
        await _converse(Conversations(dev_env.client, settings))
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.count("RunActivity:onward.tool") == 3
    assert names.count("RunActivity:onward.decide") == 3
    assert names.count("RunActivity:onward.guardrail") == 0  # judged within the decision
    assert names.count("RunWorkflow:ConversationWorkflow") == 1


async def test_conversations_are_searchable_in_temporal(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    indexed = settings.model_copy(update={"search_attributes": True})
    model = ScriptedModel([Finish(answer="bye")])
    async with running_workers(build_workers(dev_env.client, indexed, model)):
        convs = Conversations(dev_env.client, indexed)
        cid = await convs.start(toolbox.MATH.name, owner="alice", first_message="hi")
        await convs.result(cid)
    query = (
        f"WorkflowId = '{cid}' AND OnwardGoal = 'test-math' AND OnwardOwner = 'alice' "
        "AND OnwardStatus = 'ended' AND OnwardCostUsd > 0"
    )
    deadline = time.monotonic() + 20
    found: list[str] = []
    while not found and time.monotonic() < deadline:
        found = [w.id async for w in dev_env.client.list_workflows(query)]
        if not found:
            await asyncio.sleep(0.2)
    assert found == [cid]
