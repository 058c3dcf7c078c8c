"""`Onward`: one deployment of the goals it is given: its workers, client and API.

Everything is passed in: the goals (a `GoalCatalog` is built from them), the model and
the settings. Nothing is looked up in a global registry or an environment variable, so
a script, a test or an application can run its own goals next to another `Onward` in
the same process. `onward up` builds the same objects from the `onward.goals` entry
points (`Onward.discover`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker

from onward.client.conversations import Conversations
from onward.config import Settings
from onward.goals.base import Goal
from onward.goals.catalog import GoalCatalog
from onward.models.base import Model

if TYPE_CHECKING:
    from fastapi import FastAPI

    from onward.api.settings import ApiSettings


class Onward:
    """The goals given, run durably on Temporal.

    Args:
        goals: The goals conversations may be started with (and the goals they
            delegate to, when named as objects). Their tools are the only tools the
            workers run.
        model: The model every conversation uses unless it names its own: a `Model`
            (e.g. `onward.testing.ScriptedModel`), a model id such as
            `"openai:gpt-4o-mini"`, or None for `settings.model` (the offline model
            by default).
        settings: Data dir, Temporal address, task queues, timeouts. Default:
            `Settings()` (its defaults, and `ONWARD_*` variables where set).

    Example:
        ```python
        app = Onward(goals=[WEATHER], model=ScriptedModel([...]))
        async with app.running(client) as conversations:
            cid = await conversations.start("weather", first_message="Oslo?")
        ```
    """

    def __init__(
        self,
        goals: Iterable[Goal] = (),
        *,
        model: Model | str | None = None,
        settings: Settings | None = None,
        catalog: GoalCatalog | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.catalog = (catalog or GoalCatalog()).with_goals(goals)
        self.model = model if isinstance(model, Model) else self._build_model(model)

    @classmethod
    def discover(
        cls, *, model: Model | str | None = None, settings: Settings | None = None
    ) -> Onward:
        """The deployment `onward up` runs: every `onward.goals` entry point's goals and
        those of the modules in `settings.goal_modules`."""
        settings = settings or Settings()
        return cls(
            model=model, settings=settings, catalog=GoalCatalog.discover(settings.goal_modules)
        )

    def _build_model(self, model_id: str | None) -> Model:
        from onward.models.factory import build_model  # provider SDKs load only here

        settings = self.settings
        if model_id is not None:
            settings = settings.model_copy(update={"model": model_id})
        return build_model(settings)

    async def connect(self) -> Client:
        """A client for the configured Temporal, with onward's data converter."""
        from onward.client.connect import connect

        return await connect(self.settings)

    def workers(
        self,
        client: Client,
        *,
        interceptors: Sequence[Interceptor] = (),
        max_cached_workflows: int = 1000,
    ) -> list[Worker]:
        """The workers that run these goals' conversations, model calls and tools."""
        from onward.worker import build_workers

        return build_workers(
            client,
            self.settings,
            self.model,
            catalog=self.catalog,
            interceptors=interceptors,
            max_cached_workflows=max_cached_workflows,
        )

    def conversations(self, client: Client) -> Conversations:
        """Start conversations with these goals and talk to them."""
        return Conversations(client, self.settings, self.catalog)

    def api(
        self, client: Client | None = None, *, api_settings: ApiSettings | None = None
    ) -> FastAPI:
        """The HTTP API and web UI for these goals (serve it with any ASGI server).

        Args:
            client: A connected client; None connects lazily to the configured Temporal.
            api_settings: Tokens, CORS, limits; default from the environment.
        """
        from onward.api.app import create_app

        return create_app(
            self.settings, client=client, api_settings=api_settings, catalog=self.catalog
        )

    @asynccontextmanager
    async def running(self, client: Client | None = None) -> AsyncGenerator[Conversations]:
        """Run the workers for the duration of the block; yields the conversations.

        Args:
            client: A connected client; None connects to the configured Temporal.
        """
        from onward.worker import running_workers

        client = client or await self.connect()
        async with running_workers(self.workers(client)):
            yield self.conversations(client)
