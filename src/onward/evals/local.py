"""A private onward for one eval (`onward eval run --local`): an embedded Temporal dev
server in a temporary data dir and in-process workers, so an eval needs nothing else
running. Everything it stored goes with the directory when the block ends."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.client import Client

from onward.client.connect import connect
from onward.config import Settings
from onward.models.factory import build_model
from onward.processes import free_port
from onward.server import EmbeddedServer
from onward.worker import build_workers, running_workers


@asynccontextmanager
async def local_onward(settings: Settings) -> AsyncGenerator[tuple[Client, Settings]]:
    """A client and the settings of a fresh embedded server with workers running
    `settings`' model (the candidate's model is built by those workers on demand).

    Raises:
        UserError: `settings.model` cannot be built (unknown id, missing key).
        ServerStartError: The embedded server did not come up.
    """
    with tempfile.TemporaryDirectory(prefix="onward-eval-") as tmp:
        local = settings.model_copy(
            update={"data_dir": Path(tmp), "temporal_address": None, "embedded_port": free_port()}
        )
        model = build_model(local)
        server = EmbeddedServer(local, headless=True)
        await asyncio.to_thread(server.start)
        try:
            client = await connect(local)
            async with running_workers(build_workers(client, local, model)):
                yield client, local
        finally:
            await asyncio.to_thread(server.stop)
