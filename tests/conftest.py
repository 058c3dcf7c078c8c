"""Shared fixtures: real Temporal servers from the wheels, unique task queues per test,
and a guard that keeps real model providers out of the suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

import pytest
from temporalio.testing import WorkflowEnvironment

from onward.agent.contracts import ConversationResult
from onward.client.conversations import Conversations
from onward.config import Settings
from onward.goals import Goal, GoalCatalog
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


TEST_GOAL_MODULES = ["tests.workflows.toolbox", "tests.workflows.team_goals"]
"""The small goals many tests use (`test-math`, `test-planner`, ...), found the way
`onward up` finds a user's goal modules."""


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    suffix = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "data_dir": data_dir,
        "goal_modules": TEST_GOAL_MODULES,
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


@pytest.fixture
async def lone_ts_env(settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test's own, for tests that skip hours or days: on
    the shared one, every conversation an earlier test left open (its workers gone)
    wakes up when time jumps, and the jump waits on them."""
    env = await time_skipping_environment(settings)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env(session_data_dir: Path) -> AsyncIterator[WorkflowEnvironment]:
    env = await local_dev_environment(make_settings(session_data_dir))
    yield env
    await env.shutdown()


class AgentFactory(Protocol):
    """`async with factory(model) as convs:` runs workers; `goals` join the catalog."""

    def __call__(
        self, model: Model, goals: Sequence[Goal] = ()
    ) -> AbstractAsyncContextManager[Conversations]: ...


def catalog_for(settings: Settings, goals: Sequence[Goal] = ()) -> GoalCatalog:
    """The bundled examples, the test goal modules in `settings`, and `goals`."""
    return GoalCatalog.discover(settings.goal_modules, extra=goals)


def agent_factory(
    env: WorkflowEnvironment, settings: Settings, module_goals: Sequence[Goal] = ()
) -> AgentFactory:
    """Workers and conversations for `catalog_for(settings, ...)` with `module_goals`
    and the goals each run is given."""

    @asynccontextmanager
    async def run(model: Model, goals: Sequence[Goal] = ()) -> AsyncGenerator[Conversations]:
        catalog = catalog_for(settings, [*module_goals, *goals])
        workers = build_workers(env.client, settings, model, catalog=catalog)
        async with running_workers(workers):
            yield Conversations(env.client, settings, catalog)

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
