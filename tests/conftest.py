"""Shared fixtures: real Temporal servers from the wheels, unique task queues per test,
and a guard that keeps real model providers out of the suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from onward.agent.contracts import ConversationResult
from onward.config import Settings
from onward.conversations import Conversations
from onward.models.base import Model
from onward.testing import local_dev_environment, time_skipping_environment
from onward.worker import build_workers, running_workers

# No test may reach a real provider: drop any keys the developer has set.
for _var in list(os.environ):
    if _var.startswith("ONWARD_") or _var.endswith("_API_KEY"):
        del os.environ[_var]
os.environ["ONWARD_TESTING_FORBID_REAL_MODELS"] = "1"


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onward-data")


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "data_dir": data_dir,
        "task_queue": f"onward-{suffix}",
        "llm_task_queue": f"onward-llm-{suffix}",
        # The time-skipping test server has no custom search attributes.
        "search_attributes": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(session_data_dir: Path) -> Settings:
    """Settings with a unique task queue per test."""
    return make_settings(session_data_dir)


@pytest.fixture(scope="session")
async def ts_env(session_data_dir: Path) -> AsyncIterator[WorkflowEnvironment]:
    env = await time_skipping_environment(make_settings(session_data_dir))
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env(session_data_dir: Path) -> AsyncIterator[WorkflowEnvironment]:
    env = await local_dev_environment(make_settings(session_data_dir))
    yield env
    await env.shutdown()


AgentFactory = Callable[[Model], AbstractAsyncContextManager[Conversations]]


def agent_factory(env: WorkflowEnvironment, settings: Settings) -> AgentFactory:
    @asynccontextmanager
    async def run(model: Model) -> AsyncGenerator[Conversations]:
        workers = build_workers(env.client, settings, model)
        async with running_workers(workers):
            yield Conversations(env.client, settings)

    return run


@pytest.fixture
def ts_agent(ts_env: WorkflowEnvironment, settings: Settings) -> AgentFactory:
    """`async with ts_agent(model) as convs:` runs workers on the time-skipping server."""
    return agent_factory(ts_env, settings)


@pytest.fixture
def dev_agent(dev_env: WorkflowEnvironment, settings: Settings) -> AgentFactory:
    """`async with dev_agent(model) as convs:` runs workers on the real dev server."""
    return agent_factory(dev_env, settings)


async def answered(convs: Conversations, cid: str, timeout_s: float = 30.0) -> ConversationResult:
    """Wait until the agent has finished the goal and rests (a finished goal keeps the
    conversation open), end the conversation and return its result."""
    snap = await convs.wait_for(
        cid,
        lambda s: s.status == "ended" or (s.answer is not None and s.status == "waiting_for_user"),
        timeout_s=timeout_s,
    )
    if snap.status != "ended":
        await convs.end(cid)
    return await convs.result(cid)
